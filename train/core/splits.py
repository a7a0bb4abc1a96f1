"""Deterministic train/val/test splits by group, so that variants of one item (a stamp's
mirror, a phrase's recordings) never straddle two splits."""

from __future__ import annotations

import random
from collections.abc import Iterable

from .errors import DataError

FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


def assign_splits(groups: Iterable[str], seed: int, fractions: dict[str, float] = FRACTIONS) -> dict[str, str]:
    """Seeded group -> split; val and test get round(fraction * groups), at least one each."""
    keys = sorted(set(groups))
    if len(keys) < 3:
        raise DataError(f"only {len(keys)} groups: need at least 3 for train/val/test, add data")
    random.Random(seed).shuffle(keys)
    n_test = max(1, round(len(keys) * fractions["test"]))
    n_val = max(1, round(len(keys) * fractions["val"]))
    out = {k: "test" for k in keys[:n_test]}
    out.update({k: "val" for k in keys[n_test : n_test + n_val]})
    out.update({k: "train" for k in keys[n_test + n_val :]})
    return out


def group_roots(keys: list[list[str]]) -> list[int]:
    """For each item, the index of the first item of its group, where items sharing any key are one group
    (union-find): data converters split by group, so near-duplicates never straddle train and test."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, ks in enumerate(keys):
        for key in ks:
            parent[find(i)] = find(first.setdefault(key, i))
    smallest: dict[int, int] = {}
    for i in range(len(keys)):
        smallest.setdefault(find(i), i)
    return [smallest[find(i)] for i in range(len(keys))]
