"""MOTA/IDF1 of tracked boxes (py-motmetrics) and the clip's MOTChallenge ground truth."""
import numpy as np

from training.data.synth_clip import mot_gt_path, render_clip_objects, write_clip
from training.mot_metrics import mot_scores, read_mot_gt


def test_mot_gt_reads_back_the_considered_boxes(tmp_path):
    video, _ = write_clip(tmp_path / "c.mp4", num_frames=12, size=(200, 150), seed=4, progress=False)
    gt = read_mot_gt(mot_gt_path(video), num_frames=12)
    assert len(gt) == 12
    for (boxes, ids), (_, b, _, crowd, i, _) in zip(gt, render_clip_objects(12, (200, 150), seed=4)):
        assert np.array_equal(ids, i[~crowd]) and np.allclose(boxes, b[~crowd])


def test_perfect_tracks_score_one_and_a_swap_is_an_id_switch():
    a, b = np.array([[0, 0, 10, 10]], float), np.array([[50, 50, 60, 60]], float)
    truth = [(np.concatenate([a, b]), np.array([1, 2]))] * 4
    perfect = [(np.concatenate([a, b]), np.array([7, 8]))] * 4
    s = mot_scores(truth, perfect)
    assert s["mota"] == 1.0 and s["idf1"] == 1.0 and s["id_switches"] == 0
    swapped = perfect[:2] + [(np.concatenate([a, b]), np.array([8, 7]))] * 2
    s = mot_scores(truth, swapped)
    assert s["id_switches"] == 2 and s["idf1"] == 0.5 and s["mota"] == 0.75
    shifted = [(np.concatenate([a + 6, b]), np.array([7, 8]))] * 4  # IoU 0.09 < 0.5: a miss and a false positive
    s = mot_scores(truth, shifted)
    assert s["recall"] == 0.5 and s["precision"] == 0.5
