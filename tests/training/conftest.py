"""Shared fixtures of the training tests: one tiny synthetic COCO set (generated, never
downloaded) and the options of a tiny, fast training run on it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from training.data.synth import generate_dataset


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 train + 4 val images of 128 px, 6 classes."""
    return generate_dataset(tmp_path_factory.mktemp("tiny_synth"), 16, 4, size=128, seed=1, progress=False)


@pytest.fixture
def tiny_args(tiny_synth: Path) -> Callable[..., list[str]]:
    """``tiny_args(out, *extra)``: options of a short, deterministic CPU run (narrow network at
    input 128, 4 steps per epoch of 4 images, ~0.1 s per step on one core)."""

    def make(out: Path, *extra: str) -> list[str]:
        return ["--data", str(tiny_synth), "--out", str(out), "--width", "0.125", "--input-size", "128",
                "--batch-size", "4", "--epochs", "3", "--warmup-epochs", "0.5", "--lr", "0.01", "--workers", "0",
                "--eval-every", "0", "--log-every", "1", "--quiet", *extra]  # fmt: skip

    return make
