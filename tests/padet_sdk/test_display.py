"""The tiled view of several sources: every frame lands in its cell, scaled, in order."""
import numpy as np
import pytest

from padet_sdk.display import tile


def test_tile_places_each_frame_in_its_cell():
    frames = [np.full((100, 200, 3), v, np.uint8) for v in (10, 20, 30)]
    sheet = tile(frames, width=400)  # 3 frames: a 2x2 grid of 200x100 cells, the last one empty
    assert sheet.shape == (200, 400, 3)
    assert sheet[50, 100, 0] == 10 and sheet[50, 300, 0] == 20 and sheet[150, 100, 0] == 30 and sheet[150, 300, 0] == 0
    assert tile(frames, cols=3, width=600).shape == (100, 600, 3)
    with pytest.raises(ValueError):
        tile([])
