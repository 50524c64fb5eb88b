"""Data order and augmentation that depend only on the seed, the epoch and the sample.

The order comes from a seeded sampler (``seed + epoch``) and every sample's augmentation from its
own generator seeded with ``(seed, epoch, sample index)``, so the images a step sees depend
neither on the number of processes nor on the data-loader workers, and a resumed run skips
exactly the batches it had done.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .distributed import Dist
from .evaluate import with_transform


class IndexSeededDataset(Dataset):
    """Applies ``transform`` to ``base[i]`` with a generator seeded by (seed, epoch, i): a sample's
    augmentation is the same whichever process or worker loads it, and a resumed run repeats
    it exactly."""

    def __init__(self, base: Any, transform: Any, seed: int) -> None:
        self.base = with_transform(base, None)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, target = self.base[index]
        return self.transform(image, target, rng=np.random.default_rng([self.seed, self.epoch, index]))


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (this process's share of a ``seed + epoch`` permutation) that can
    start part-way through an epoch, for resuming. ``drop_last`` keeps every process's share the
    same size, so the steps per epoch are those of one process with the global batch."""

    def __init__(self, dataset: Dataset, d: Dist, seed: int) -> None:
        super().__init__(dataset, num_replicas=d.world, rank=d.rank, shuffle=True, seed=seed, drop_last=True)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this process's share (this epoch only)."""
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


def make_loader(ds: IndexSeededDataset, sampler: ResumableSampler, batch: int, workers: int, seed: int, epoch: int) -> DataLoader:
    from training.data import detection_collate

    # own generator: creating the iterator must not draw from (and shift) the global torch RNG
    g = torch.Generator().manual_seed(seed * 100003 + epoch)
    return DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        collate_fn=detection_collate,
        drop_last=True,
        generator=g,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
