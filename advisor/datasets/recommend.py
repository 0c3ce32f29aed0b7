"""From the lengths to the plan: the sequence length to train at, packing on or off, and the memory the run
needs at the longest batch the data can produce."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from .stats import percentile_of_counts

# Sequence lengths are rounded up to a multiple kernels tile well: FlashAttention's blocks are 64 or 128 tokens
# (flash-attn 2 forward tiles of 64/128 rows) and tensor-core GEMMs want multiples of 64; above 1,024 tokens the
# coarser 128 wastes under 12.5 % and keeps the choices few.
ROUNDING = ((1024, 64), (math.inf, 128))
PACKING_MIN_PADDING = 0.10  # pack when at least this share of unpacked tokens would be padding
PACKING_MIN_FILL = 0.5  # or when the mean row fills less than half a sequence (many short steps)
PACKS = ("sft",)  # trl 1.16 packs SFT only; DPO/reward/GRPO/PPO batches are padded


def round_len(tokens: int) -> int:
    step = next(s for limit, s in ROUNDING if tokens <= limit)
    return max(step, math.ceil(tokens / step) * step)


def seq_len_for(totals: Sequence[int], keep: float, max_positions: int = 0) -> dict:
    """The shortest kernel-friendly length that keeps `keep` of the rows whole."""
    counts = Counter(totals)  # distinct lengths only: a few thousand entries for millions of rows
    n = sum(counts.values())
    need = percentile_of_counts(counts, keep * 100)
    chosen = round_len(need)
    capped = bool(max_positions) and chosen > max_positions
    if capped:
        chosen = max_positions
    whole = sum(c for t, c in counts.items() if t <= chosen) / n if n else 1.0
    return {
        "seq_len": chosen,
        "keep": keep,
        "needed": need,
        "rows_whole": whole,
        "capped_at_model": capped,
        "max_positions": max_positions or None,
        "rounding": "multiple of 64 up to 1,024 tokens, of 128 above",
    }


def packing_for(kind: str, at: dict) -> tuple[bool, str]:
    if kind not in PACKS:
        return False, f"trl packs SFT only; {kind} batches are padded to their longest row"
    pad = at["unpacked"]["padding_share"]
    fill = at["tokens_per_epoch"] / (at["unpacked"]["sequences"] * at["seq_len"]) if at["unpacked"]["sequences"] else 1.0
    steps = f"{at['unpacked']['steps']:,} steps per epoch unpacked, {at['packed']['steps']:,} packed"
    if pad >= PACKING_MIN_PADDING:
        return True, f"unpacked batches of {at['micro_batch']} would be {pad:.0%} padding; packing removes it ({steps})"
    if fill < PACKING_MIN_FILL:
        return True, f"the mean row fills {fill:.0%} of a {at['seq_len']}-token sequence; packing fills them ({steps})"
    return (
        False,
        f"rows already fill {fill:.0%} of a sequence and padding is {pad:.0%}: packing gains little, and unpacked rows keep their own attention",
    )


def memory_at(spec, setup, longest: int, capacity_bytes: float | None) -> dict:
    """The estimate at the longest batch the data can produce unpacked (every row of the batch padded to the
    longest, cut at seq_len), and at seq_len packed (every sequence full): the first is what dies mid-epoch."""
    from estimators import estimate
    from estimators.dtypes import GIB

    out = {}
    for name, seq, packed in (("longest_unpacked", min(longest, setup.seq_len), False), ("packed", setup.seq_len, True)):
        est = estimate(spec, setup.with_(seq_len=seq, packed=packed))
        entry = {"seq_len": seq, "packed": packed, "device_bytes": est.device_bytes, "gib": round(est.device_bytes / GIB, 2)}
        band = getattr(est, "band", None)  # the range published runs of this class measured (fits uses its top)
        if band is not None:
            entry["band_gib"] = [round(band.low_bytes / GIB, 2), round(band.high_bytes / GIB, 2)]
        if capacity_bytes:
            entry["fits"] = est.fits(capacity_bytes)
            entry["headroom_gib"] = round(est.headroom(capacity_bytes) / GIB, 2)
        out[name] = entry
    return out
