"""Make it fit: the largest micro-batch and sequence that fit a card, and the cheapest changes that make a
run fit when it does not.

Pure functions over `estimate()`; memory grows monotonically with batch, sequence and rank (a property test
holds the estimator to that), so the limits are found by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EstimateError
from .estimate import Estimate, estimate
from .model import ModelSpec
from .parallel import offload_option
from .setup import Setup
from .terms import wrapped_parameters

MAX_BATCH = 1024
MAX_SEQ = 1 << 20
SEQ_STEP = 64  # sequence lengths are reported in multiples of 64 tokens (kernel-friendly)
MIN_USEFUL_SEQ = 256  # below this a truncated run is not worth suggesting


@dataclass(frozen=True)
class Fix:
    """One change to the set-up, what it costs in speed or quality, and the estimate after it."""

    key: str
    label: str
    cost: str
    changes: dict
    setup: Setup
    estimate: Estimate
    capacity: float

    @property
    def fits(self) -> bool:
        return self.estimate.fits(self.capacity)

    @property
    def device_bytes(self) -> int:
        return self.estimate.device_bytes


@dataclass(frozen=True)
class FitReport:
    estimate: Estimate
    capacity: float
    max_micro_batch: int  # 0: not even one sequence fits
    max_seq_len: int  # at the given micro-batch; 0: not even SEQ_STEP tokens fit
    fixes: tuple[Fix, ...]  # ranked: cheapest first; only those that fit, or the best tries when none does

    @property
    def fits(self) -> bool:
        return self.estimate.fits(self.capacity)


def _fits(model: ModelSpec, setup: Setup, capacity: float) -> bool:
    return estimate(model, setup).fits(capacity)


def _largest(ok, low: int, high: int) -> int:
    """Largest n in [low, high] with ok(n), assuming ok is monotone (true then false); low - 1 if none."""
    if not ok(low):
        return low - 1
    hi = low
    while hi < high and ok(min(hi * 2, high)):
        hi = min(hi * 2, high)
    if hi == high:
        return high
    lo, top = hi, min(hi * 2, high)  # ok(lo) is true, ok(top) is false
    while top - lo > 1:
        mid = (lo + top) // 2
        lo, top = (mid, top) if ok(mid) else (lo, mid)
    return lo


def max_micro_batch(model: ModelSpec, setup: Setup, capacity: float) -> int:
    return _largest(lambda b: _fits(model, setup.with_(micro_batch=b), capacity), 1, MAX_BATCH)


def max_seq_len(model: ModelSpec, setup: Setup, capacity: float) -> int:
    steps = _largest(lambda n: _fits(model, setup.with_(seq_len=n * SEQ_STEP), capacity), 1, MAX_SEQ // SEQ_STEP)
    return steps * SEQ_STEP


# The changes "make it fit" may combine, one option per dimension, each with its cost in speed or quality and
# a weight that ranks it (higher = more painful). Weights are judgement, stated here once: memory-only
# knobs first, then the adaptation (§5: quality), then hardware (money).
@dataclass(frozen=True)
class Option:
    key: str
    label: str
    cost: str
    weight: float
    changes: dict


def _options(model: ModelSpec, setup: Setup) -> list[list[Option]]:
    keep = Option("", "", "", 0.0, {})
    dims: list[list[Option]] = []
    if setup.optimizer in ("adamw", "lion", "sgd_momentum"):
        dims.append([
            keep,
            Option("adamw8bit", "8-bit AdamW", "optimizer states in 8 bits; quality on par in published runs", 1, {"optimizer": "adamw8bit"}),
            Option("paged_adamw8bit", "paged 8-bit AdamW", "8-bit states that may page to host RAM; slower when they do", 1.5, {"optimizer": "paged_adamw8bit"}),
        ])
    precision = "fp16" if setup.precision.startswith("fp16") else "bf16"
    adaptations = [keep]
    if setup.method == "full":
        adaptations.append(Option("lora", "LoRA instead of full fine-tuning", "trains adapters only; slightly lower ceiling (§5)", 4, {"method": "lora", "precision": precision, "grad_ckpt": setup.checkpointing}))
    if setup.method in ("full", "lora"):
        weight = 6 if setup.method == "full" else 3
        adaptations.append(Option("qlora", "QLoRA (4-bit base weights)", "4-bit base; somewhat slower, small quality loss (§5)", weight, {"method": "qlora", "precision": precision, "grad_ckpt": setup.checkpointing}))
    if len(adaptations) > 1:
        dims.append(adaptations)
    if wrapped_parameters(model, setup):
        # LoRA on fused MoE experts builds a merged copy of each layer's experts (and of their gradient)
        dims.append([keep, Option("lora_attention", "LoRA on attention only (router and experts frozen)",
                                  "adapts fewer weights; no merged expert copies", 2, {"lora_targets": "attention"})])
    if setup.method == "qlora" and setup.kbit_upcast and not setup.parallel.startswith("fsdp"):
        # peft's k-bit preparation upcasts every unquantised weight to fp32: little for a dense model, but
        # transformers 5 keeps MoE experts unquantised (raw parameters), so there it doubles most of the model
        dims.append([keep, Option("no_kbit_upcast", "keep unquantised weights in the compute dtype (no fp32 upcast)",
                                  "skips peft's fp32 copies of norms, embeddings and unquantised experts; slightly less stable",
                                  1, {"kbit_upcast": False})])
    if not setup.offload_optimizer:
        label, cost, changes = offload_option(setup)  # estimators/parallel.py: a layout that can offload
        dims.append([keep, Option("offload_optimizer", label, cost, 5, changes)])
    if not setup.checkpointing:  # last: its change must win over the adaptation's "keep checkpointing as it is"
        dims.append([keep, Option("grad_ckpt", "gradient checkpointing on", "about 20-30 % slower steps (the forward is recomputed)", 2, {"grad_ckpt": True})])
    if setup.world_size == 1:
        dims.append([keep, Option("more_gpus", "2 GPUs with FSDP full shard", "a second GPU; communication overhead", 6, {"gpus": 2, "parallel": "fsdp"})])
    return dims


def _combinations(dims: list[list[Option]]):
    combos: list[tuple[Option, ...]] = [()]
    for dim in dims:
        combos = [c + (o,) for c in combos for o in dim]
    return [tuple(o for o in c if o.key) for c in combos]


def _fix_for(model: ModelSpec, setup: Setup, capacity: float, combo: tuple[Option, ...]) -> Fix | None:
    """The combination applied; if it still does not fit, with the micro-batch cut (effective batch kept)."""
    changes: dict = {}
    for option in combo:
        changes |= option.changes
    new = setup.with_(**changes)
    labels, costs = [o.label for o in combo], [o.cost for o in combo]
    est = estimate(model, new)
    keys = [o.key for o in combo]
    if not est.fits(capacity) and new.micro_batch > 1:
        best = max(1, max_micro_batch(model, new, capacity))
        accum = new.grad_accum * -(-new.micro_batch // best)
        changes |= {"micro_batch": best, "grad_accum": accum}
        new = new.with_(micro_batch=best, grad_accum=accum)
        est = estimate(model, new)
        keys.append("micro_batch")
        labels.append(f"micro-batch {best} x gradient accumulation {accum}")
        costs.append("same effective batch; fewer tokens per step, slower")
    if not est.fits(capacity):
        longest = max_seq_len(model, new, capacity)
        if longest < MIN_USEFUL_SEQ:
            return None
        changes |= {"seq_len": longest}
        new = new.with_(seq_len=longest)
        est = estimate(model, new)
        keys.append("seq_len")
        labels.append(f"sequences cut to {longest} tokens")
        costs.append(f"examples longer than {longest} tokens are truncated")
    return Fix("+".join(keys), " + ".join(labels), "; ".join(costs), changes, new, est, capacity)


def _weight(fix: Fix, combo: tuple[Option, ...]) -> float:
    """Cutting the micro-batch costs 1; truncating sequences costs 3 (it changes what the model learns)."""
    return sum(o.weight for o in combo) + (1 if "micro_batch" in fix.changes else 0) + (3 if "seq_len" in fix.changes else 0)


def suggest_fixes(model: ModelSpec, setup: Setup, capacity: float, limit: int = 5) -> tuple[Fix, ...]:
    """The cheapest combinations of changes that make the run fit, ranked by cost then memory. A combination
    that contains a cheaper fitting one is left out (it costs more and adds nothing)."""
    ranked = []
    for combo in _combinations(_options(model, setup)):
        try:
            fix = _fix_for(model, setup, capacity, combo)
        except EstimateError:  # a combination the stack cannot run (parallel.check / kinds.check)
            continue
        if fix is not None and fix.fits:
            ranked.append((_weight(fix, combo), fix.device_bytes, fix, set(fix.key.split("+"))))
    ranked.sort(key=lambda r: (r[0], r[1]))
    chosen: list[tuple[set, Fix]] = []
    for _, _, fix, keys in ranked:
        if any(prev <= keys for prev, _ in chosen):
            continue
        chosen.append((keys, fix))
        if len(chosen) == limit:
            break
    return tuple(fix for _, fix in chosen)


def fit_report(model: ModelSpec, setup: Setup, capacity: float) -> FitReport:
    setup = setup.validated()
    est = estimate(model, setup)
    fixes = () if est.fits(capacity) else suggest_fixes(model, setup, capacity)
    return FitReport(est, capacity, max_micro_batch(model, setup, capacity), max_seq_len(model, setup, capacity), fixes)
