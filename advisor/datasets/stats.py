"""Summaries of a length distribution: percentiles, a log2 histogram, truncation and packing at a sequence length."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

PERCENTILES = (50, 90, 99)
# histogram edges: powers of two, the sizes sequence lengths are chosen from
EDGES = tuple(2**k for k in range(5, 21))  # 32 .. 1,048,576 tokens


def percentile(sorted_values: Sequence[int], q: float) -> int:
    """Nearest rank: the smallest value with at least q % of the values at or below it."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentile_of_counts(counts: Counter, q: float) -> int:
    """percentile() over a Counter of value -> rows, without expanding it."""
    n = sum(counts.values())
    rank, seen = max(1, math.ceil(q / 100 * n)), 0
    for k in sorted(counts):
        seen += counts[k]
        if seen >= rank:
            return k
    return 0


def summary(values: Sequence[int] | Counter) -> dict:
    """p50/p90/p99, min, max, mean and count of lengths given one per row or as a Counter of length -> rows."""
    counts = values if isinstance(values, Counter) else Counter(values)
    n = sum(counts.values())
    if not n:
        return {**{f"p{q}": 0 for q in PERCENTILES}, "max": 0, "min": 0, "mean": 0.0, "rows": 0}
    keys = sorted(counts)
    out, seen, want = {}, 0, [(q, max(1, math.ceil(q / 100 * n))) for q in PERCENTILES]
    for k in keys:  # nearest rank, walking the distinct lengths once
        seen += counts[k]
        while want and seen >= want[0][1]:
            out[f"p{want.pop(0)[0]}"] = k
    total = sum(k * c for k, c in counts.items())
    out.update(max=keys[-1], min=keys[0], mean=round(total / n, 1), rows=n)
    return out


def histogram(values: Sequence[int]) -> list[dict]:
    """Rows per bucket (lo, hi] with power-of-two edges, only the buckets from the first to the last non-empty."""
    counts = [0] * (len(EDGES) + 1)
    for v in values:
        i = next((i for i, e in enumerate(EDGES) if v <= e), len(EDGES))
        counts[i] += 1
    nonzero = [i for i, c in enumerate(counts) if c]
    if not nonzero:
        return []
    out = []
    for i in range(nonzero[0], nonzero[-1] + 1):
        lo = 0 if i == 0 else EDGES[i - 1]
        hi = EDGES[i] if i < len(EDGES) else None
        out.append({"from": lo, "to": hi, "rows": counts[i]})
    return out


def at_seq_len(totals: Sequence[int], supervised: int, seq_len: int, micro_batch: int) -> dict:
    """What a run at `seq_len` sees: rows cut, tokens kept, and padded vs packed batches (`supervised`: the tokens
    the loss covers before truncation, summed over the rows).

    Unpacked batches are `micro_batch` rows in file order (a shuffled run differs a little), each padded to its
    longest row; packed sequences hold rows end to end up to seq_len (TRL's best-fit-decreasing packing needs at
    least ceil(tokens / seq_len) of them, the figure given)."""
    n = len(totals)
    truncated = sum(1 for t in totals if t > seq_len)
    kept = [min(t, seq_len) for t in totals]
    tokens = sum(kept)
    padded = 0
    for i in range(0, n, micro_batch):
        batch = kept[i : i + micro_batch]
        padded += max(batch) * len(batch) - sum(batch)
    # supervised tokens lost to truncation are not known per row without the split; scale by the kept share
    total_raw = sum(totals)
    sup = supervised
    sup_kept = round(sup * tokens / total_raw) if total_raw else 0
    packed_sequences = math.ceil(tokens / seq_len) if seq_len else 0
    return {
        "seq_len": seq_len,
        "micro_batch": micro_batch,
        "truncated_rows": truncated,
        "truncated_share": truncated / n if n else 0.0,
        "tokens_per_epoch": tokens,
        "supervised_tokens_per_epoch": sup_kept,
        "unpacked": {
            "sequences": n,
            "steps": math.ceil(n / micro_batch),
            "padding_tokens": padded,
            "padding_share": padded / (padded + tokens) if tokens else 0.0,
        },
        "packed": {
            "sequences": packed_sequences,
            "steps": math.ceil(packed_sequences / micro_batch),
            "padding_tokens": packed_sequences * seq_len - tokens,
            "fill": tokens / (packed_sequences * seq_len) if packed_sequences else 0.0,
        },
    }
