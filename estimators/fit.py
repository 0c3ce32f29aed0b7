"""Make it fit: the largest micro-batch and sequence that fit a card, and the cheapest changes that make a
run fit when it does not.

Pure functions over `estimate()`; memory grows monotonically with batch, sequence and rank (a property test
holds the estimator to that), so the limits are found by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import PROMPT_ROOM
from .errors import EstimateError
from .kind_rollout import grpo_divides_well
from .layouts import offload_option
from .margin import Margin
from .model import ModelSpec
from .pricing import estimate
from .result import Estimate
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
    margin: Margin | None = None

    @property
    def fits(self) -> bool:
        return _judge(self.estimate, self.capacity, self.margin)

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
    margin: Margin | None = None

    @property
    def fits(self) -> bool:
        return _judge(self.estimate, self.capacity, self.margin)


def _judge(est: Estimate, capacity: float, margin: Margin | None) -> bool:
    """Fits with the margin (estimators/margin.py: estimate error, the display, or the user's --margin); without
    one, by the estimate's own rule (the upper end of its error band)."""
    return margin.fits(est, capacity) if margin is not None else est.fits(capacity)


def _fits(model: ModelSpec, setup: Setup, capacity: float, margin: Margin | None = None, reward_model: ModelSpec | None = None) -> bool:
    return _judge(estimate(model, setup, reward_model), capacity, margin)


def largest(ok, low: int, high: int) -> int:
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


def max_micro_batch(model: ModelSpec, setup: Setup, capacity: float, margin: Margin | None = None, reward_model: ModelSpec | None = None) -> int:
    """`reward_model`: the reward/value architecture when it is not the policy's (estimators/pricing.py estimate)."""
    return largest(lambda b: _fits(model, setup.with_(micro_batch=b), capacity, margin, reward_model), 1, MAX_BATCH)


def shortest_seq(setup: Setup) -> int:
    """The shortest sequence a set-up can have: PPO and GRPO sequences hold the response and a prompt of at
    least PROMPT_ROOM tokens (estimators/checks.py refuses less), rounded up to SEQ_STEP."""
    if setup.train not in ("ppo", "grpo"):
        return SEQ_STEP
    return -(-(setup.response_len + PROMPT_ROOM) // SEQ_STEP) * SEQ_STEP


def max_seq_len(model: ModelSpec, setup: Setup, capacity: float, margin: Margin | None = None, reward_model: ModelSpec | None = None) -> int:
    """The longest sequence (a multiple of SEQ_STEP) that fits; 0 when not even the shortest does."""
    low = shortest_seq(setup) // SEQ_STEP
    steps = largest(lambda n: _fits(model, setup.with_(seq_len=n * SEQ_STEP), capacity, margin, reward_model), low, MAX_SEQ // SEQ_STEP)
    return steps * SEQ_STEP if steps >= low else 0


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


# What a memory-saving knob costs in speed or quality, the one ranking `advisor fit` and advise's sizing search both
# use (advisor/advice/fitting.py knob_variants). Paged 8-bit states ranks above checkpointing: checkpointing costs
# a known 20-30 % of each step, while states paged out of a full card cross PCIe every step.
KNOB_WEIGHTS = {"adamw8bit": 1.0, "grad_ckpt": 2.0, "paged_adamw8bit": 2.5}


def knob_weight(setup: Setup, base: Setup) -> float:
    """The cost of `setup`'s optimizer and checkpointing against `base`'s (KNOB_WEIGHTS)."""
    weight = KNOB_WEIGHTS.get(setup.optimizer, 0.0) if setup.optimizer != base.optimizer else 0.0
    return weight + (KNOB_WEIGHTS["grad_ckpt"] if setup.checkpointing and not base.checkpointing else 0.0)


def _options(model: ModelSpec, setup: Setup) -> list[list[Option]]:
    keep = Option("", "", "", 0.0, {})
    dims: list[list[Option]] = []
    if setup.optimizer in ("adamw", "lion", "sgd_momentum"):
        dims.append(
            [
                keep,
                Option(
                    "adamw8bit",
                    "8-bit AdamW",
                    "optimizer states in 8 bits; quality on par in published runs",
                    KNOB_WEIGHTS["adamw8bit"],
                    {"optimizer": "adamw8bit"},
                ),
                Option(
                    "paged_adamw8bit",
                    "paged 8-bit AdamW",
                    "8-bit states that may page to host RAM; slower when they do",
                    KNOB_WEIGHTS["paged_adamw8bit"],
                    {"optimizer": "paged_adamw8bit"},
                ),
            ]
        )
    if setup.train == "grpo" and not grpo_divides_well(setup):
        # lcm(G, batch) completions per round: a micro-batch that divides well shrinks the KV cache first
        target = setup.micro_batch * setup.grad_accum * setup.world_size
        good = [
            b
            for b in range(setup.micro_batch, 0, -1)
            if grpo_divides_well(setup.with_(micro_batch=b, grad_accum=_accum_for(target, b, setup.world_size)))
        ]
        if good:
            b, accum = good[0], _accum_for(target, good[0], setup.world_size)
            dims.append(
                [
                    keep,
                    Option(
                        "grpo_round",
                        f"micro-batch {b} x gradient accumulation {accum} (its generation round divides num_generations {setup.num_generations})",
                        f"a generation round of fewer completions; effective batch {b * accum * setup.world_size}",
                        0.5,
                        {"micro_batch": b, "grad_accum": accum},
                    ),
                ]
            )
    precision = "fp16" if setup.precision.startswith("fp16") else "bf16"
    adaptations = [keep]
    if setup.adaptation == "full":
        adaptations.append(
            Option(
                "lora",
                "LoRA instead of full fine-tuning",
                "trains adapters only; slightly lower ceiling (§5)",
                4,
                {"adaptation": "lora", "precision": precision, "grad_ckpt": setup.checkpointing},
            )
        )
    if setup.adaptation in ("full", "lora"):
        weight = 6 if setup.adaptation == "full" else 3
        adaptations.append(
            Option(
                "qlora",
                "QLoRA (4-bit base weights)",
                "4-bit base; somewhat slower, small quality loss (§5)",
                weight,
                {"adaptation": "qlora", "precision": precision, "grad_ckpt": setup.checkpointing},
            )
        )
    if len(adaptations) > 1:
        dims.append(adaptations)
    if wrapped_parameters(model, setup):
        # LoRA on fused MoE experts builds a merged copy of each layer's experts (and of their gradient)
        dims.append(
            [
                keep,
                Option(
                    "lora_attention",
                    "LoRA on attention only (router and experts frozen)",
                    "adapts fewer weights; no merged expert copies",
                    2,
                    {"lora_targets": "attention"},
                ),
            ]
        )
    if setup.adaptation == "qlora" and setup.kbit_upcast and not setup.parallel.startswith("fsdp"):
        # peft's k-bit preparation upcasts every unquantised weight to fp32: little for a dense model, but
        # transformers 5 keeps MoE experts unquantised (raw parameters), so there it doubles most of the model
        dims.append(
            [
                keep,
                Option(
                    "no_kbit_upcast",
                    "keep unquantised weights in the compute dtype (no fp32 upcast)",
                    "skips peft's fp32 copies of norms, embeddings and unquantised experts; slightly less stable",
                    1,
                    {"kbit_upcast": False},
                ),
            ]
        )
    if not setup.offload_optimizer:
        label, cost, changes = offload_option(setup)  # estimators/parallel.py: a layout that can offload
        dims.append([keep, Option("offload_optimizer", label, cost, 5, changes)])
    if not setup.checkpointing:  # last: its change must win over the adaptation's "keep checkpointing as it is"
        dims.append(
            [
                keep,
                Option(
                    "grad_ckpt",
                    "gradient checkpointing on",
                    "about 20-30 % slower steps (the forward is recomputed)",
                    KNOB_WEIGHTS["grad_ckpt"],
                    {"grad_ckpt": True},
                ),
            ]
        )
    if setup.world_size == 1:
        dims.append(
            [keep, Option("more_gpus", "2 GPUs with FSDP full shard", "a second GPU; communication overhead", 6, {"gpus": 2, "parallel": "fsdp"})]
        )
    return dims


def _combinations(dims: list[list[Option]]):
    combos: list[tuple[Option, ...]] = [()]
    for dim in dims:
        combos = [c + (o,) for c in combos for o in dim]
    return [tuple(o for o in c if o.key) for c in combos]


def _accum_for(target: int, micro_batch: int, world: int) -> int:
    """Gradient accumulation that brings micro_batch x world up to the target effective batch (at least 1)."""
    return max(1, -(-target // (micro_batch * world)))


def _cut_micro_batch(model: ModelSpec, new: Setup, capacity: float, margin: Margin | None, target: int, reward_model: ModelSpec | None = None) -> int:
    """The largest micro-batch that fits and divides the effective batch (so accumulation restores it exactly:
    5 x 4 would make 16 into 20); for GRPO also one whose generation round divides well (kind_rollout.grpo_divides_well),
    since a round of lcm(G, batch) completions can cost more than the cut saves."""
    best = max(1, min(new.micro_batch - 1, max_micro_batch(model, new, capacity, margin, reward_model)))
    world = new.world_size
    for b in range(best, 0, -1):
        if target % (b * world) and b > 1:
            continue
        if new.train != "grpo" or grpo_divides_well(new.with_(micro_batch=b, grad_accum=_accum_for(target, b, world))):
            return b
    return best


def _fix_for(
    model: ModelSpec,
    setup: Setup,
    capacity: float,
    combo: tuple[Option, ...],
    margin: Margin | None = None,
    target: int | None = None,
    reward_model: ModelSpec | None = None,
) -> Fix | None:
    """The combination applied; if it still does not fit, with the micro-batch cut. The effective batch
    (micro-batch x accumulation x GPUs) stays at the set-up's own whenever the batch or the GPU count changes;
    a `target` from the caller (the wizard: what advise recommended) is restored by every fix."""
    explicit = target is not None  # the caller's effective batch (the wizard: what advise recommended)
    target = target or setup.micro_batch * setup.grad_accum * setup.world_size
    changes: dict = {}
    for option in combo:
        changes |= option.changes
    new = setup.with_(**changes)
    labels, costs = [o.label for o in combo], [o.cost for o in combo]
    keys = [o.key for o in combo]
    if explicit or new.world_size != setup.world_size or "micro_batch" in changes:
        accum = _accum_for(target, new.micro_batch, new.world_size)
        if accum != new.grad_accum:
            changes |= {"grad_accum": accum}
            new = new.with_(grad_accum=accum)
    est = estimate(model, new, reward_model)
    if not _judge(est, capacity, margin) and new.micro_batch > 1:
        best = _cut_micro_batch(model, new, capacity, margin, target, reward_model)
        accum = _accum_for(target, best, new.world_size)
        changes |= {"micro_batch": best, "grad_accum": accum}
        new = new.with_(micro_batch=best, grad_accum=accum)
        est = estimate(model, new, reward_model)
        keys.append("micro_batch")
        labels.append(f"micro-batch {best} x gradient accumulation {accum}")
        costs.append(f"effective batch {best * accum * new.world_size}; fewer tokens per step, slower")
    if explicit and new.grad_accum != setup.grad_accum and "micro_batch" not in keys:
        keys.append("grad_accum")
        labels.append(f"gradient accumulation {new.grad_accum}")
        costs.append(f"back to the effective batch of {new.micro_batch * new.grad_accum * new.world_size}")
    if not _judge(est, capacity, margin):
        longest = max_seq_len(model, new, capacity, margin, reward_model)
        if longest < MIN_USEFUL_SEQ:
            return None
        changes |= {"seq_len": longest}
        new = new.with_(seq_len=longest)
        est = estimate(model, new, reward_model)
        keys.append("seq_len")
        labels.append(f"sequences cut to {longest} tokens")
        costs.append(f"examples longer than {longest} tokens are truncated")
    return Fix("+".join(keys), " + ".join(labels), "; ".join(costs), changes, new, est, capacity, margin)


def _weight(fix: Fix, combo: tuple[Option, ...]) -> float:
    """Cutting the micro-batch costs 1; truncating sequences costs 3 (it changes what the model learns)."""
    cut = "micro_batch" in fix.key.split("+")
    return sum(o.weight for o in combo) + (1 if cut else 0) + (3 if "seq_len" in fix.changes else 0)


def suggest_fixes(
    model: ModelSpec,
    setup: Setup,
    capacity: float,
    limit: int = 5,
    margin: Margin | None = None,
    effective_batch: int | None = None,
    reward_model: ModelSpec | None = None,
) -> tuple[Fix, ...]:
    """The cheapest combinations of changes that make the run fit, ranked by cost then memory. A combination
    that contains a cheaper fitting one is left out (it costs more and adds nothing)."""
    ranked = []
    for combo in _combinations(_options(model, setup)):
        try:
            fix = _fix_for(model, setup, capacity, combo, margin, effective_batch, reward_model)
        except EstimateError:  # a combination the stack cannot run (layouts.check / kind_models.check)
            continue
        if fix is not None and fix.fits:
            ranked.append((_weight(fix, combo), fix.device_bytes, fix, set(fix.key.split("+"))))
    ranked.sort(key=lambda r: (r[0], r[1]))
    chosen: list[tuple[set, Fix]] = []
    for _, _, fix, keys in ranked:
        if any(prev <= keys or f.setup == fix.setup for prev, f in chosen):  # costs more, or the same run again
            continue
        chosen.append((keys, fix))
        if len(chosen) == limit:
            break
    return tuple(fix for _, fix in chosen)


def fit_report(
    model: ModelSpec,
    setup: Setup,
    capacity: float,
    margin: Margin | None = None,
    effective_batch: int | None = None,
    reward_model: ModelSpec | None = None,
) -> FitReport:
    """`margin`: what to keep free besides the estimate (estimators/margin.py; None: the estimate's own band).
    `effective_batch`: the micro-batch x accumulation x GPUs a fix keeps (default: the set-up's own).
    `reward_model`: the reward/value architecture when it is not the policy's (estimators/pricing.py estimate)."""
    est = estimate(model, setup, reward_model)
    fits = _judge(est, capacity, margin)
    fixes = () if fits else suggest_fixes(model, setup, capacity, margin=margin, effective_batch=effective_batch, reward_model=reward_model)
    return FitReport(
        est,
        capacity,
        max_micro_batch(model, setup, capacity, margin, reward_model),
        max_seq_len(model, setup, capacity, margin, reward_model),
        fixes,
        margin,
    )
