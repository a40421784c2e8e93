"""Sequences packed into fixed-length rows, so a batch holds no padding.

Examples are laid end to end in a seeded order and cut into rows of ``seq_len`` tokens.
Position ids restart at every example, which also tells transformers' attention to keep
examples apart within a row (its packed-sequence mask, built only when the forward pass
has no KV cache: call the model with ``use_cache=False``).  Labels are -100 where the loss
does not count (prompt tokens).  ``padded_rows`` is the one-example-per-row layout, kept
for the benchmark that measures what packing saves.
"""
from __future__ import annotations

import random
from typing import Sequence

IGNORE = -100


def packed_rows(examples: Sequence[tuple[list[int], list[bool]]], seq_len: int, min_rows: int = 1,
                seed: int = 0) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """(input_ids, labels, position_ids) rows; the examples repeat until there are ``min_rows``."""
    usable = [(ids[:seq_len], mask[:seq_len]) for ids, mask in examples if ids]
    if not usable:
        raise ValueError("no examples to pack")
    rng = random.Random(seed)
    ids_stream: list[int] = []
    label_stream: list[int] = []
    pos_stream: list[int] = []
    while len(ids_stream) < max(min_rows, 1) * seq_len:
        order = list(range(len(usable)))
        rng.shuffle(order)
        for index in order:
            ids, mask = usable[index]
            ids_stream += ids
            label_stream += [t if keep else IGNORE for t, keep in zip(ids, mask)]
            pos_stream += list(range(len(ids)))
    rows = len(ids_stream) // seq_len
    cut = lambda s: [s[i * seq_len:(i + 1) * seq_len] for i in range(rows)]  # noqa: E731
    positions = cut(pos_stream)
    labels = cut(label_stream)
    for row_pos, row_labels in zip(positions, labels):
        if row_pos[0] != 0:  # a row that starts mid-example has lost that example's prompt
            start = next((i for i, p in enumerate(row_pos) if p == 0), len(row_pos))
            row_labels[:start] = [IGNORE] * start
            row_pos[:start] = list(range(start))
    return cut(ids_stream), labels, positions


def padded_rows(examples: Sequence[tuple[list[int], list[bool]]], pad_id: int
                ) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """One example per row, right-padded to the longest; padding is ignored by the loss."""
    width = max(len(ids) for ids, _ in examples)
    inputs, labels, masks = [], [], []
    for ids, mask in examples:
        pad = width - len(ids)
        inputs.append(ids + [pad_id] * pad)
        labels.append([t if keep else IGNORE for t, keep in zip(ids, mask)] + [IGNORE] * pad)
        masks.append([1] * len(ids) + [0] * pad)
    return inputs, labels, masks
