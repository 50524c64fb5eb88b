"""Shared fixtures: one small synthetic COCO set per test session (generated, never downloaded)."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.data.synth import generate_dataset

SYNTH_ARGS = dict(num_train=40, num_val=6, size=160, seed=7, num_classes=6, progress=False)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("synth"), **SYNTH_ARGS)
