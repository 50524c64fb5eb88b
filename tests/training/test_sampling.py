"""Data order and augmentation seeds (training/sampling.py): what makes resuming and DDP exact."""
from __future__ import annotations

from training.distributed import Dist
from training.sampling import IndexSeededDataset, ResumableSampler


class _Items:
    num_classes = 1

    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int):
        return i, {}


def _draw(image, target, rng):
    return image, float(rng.random())


def test_the_shares_of_two_processes_split_one_permutation_and_resume_part_way():
    ds = IndexSeededDataset(_Items(), _draw, seed=3)
    one = ResumableSampler(ds, Dist(), seed=3)
    a, b = (ResumableSampler(ds, Dist(rank=r, world=2), seed=3) for r in (0, 1))
    for s in (one, a, b):
        s.set_epoch(1)
    assert len(a) == len(b) == 5 and sorted(list(a) + list(b)) == sorted(one)
    a.set_start(2)
    assert len(a) == 3
    ref = ResumableSampler(ds, Dist(rank=0, world=2), seed=3)
    ref.set_epoch(1)
    assert list(a) == list(ref)[2:]


def test_a_samples_augmentation_depends_on_seed_epoch_and_index_only():
    ds = IndexSeededDataset(_Items(), _draw, seed=3)
    first = [ds[i][1] for i in range(4)]
    assert [ds[i][1] for i in reversed(range(4))] == first[::-1]  # order of loading does not matter
    ds.set_epoch(1)
    assert [ds[i][1] for i in range(4)] != first
