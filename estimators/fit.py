"""Make it fit: the largest micro-batch and sequence that fit a card, and the cheapest changes that make a
run fit when it does not.

Pure functions over `estimate()`; memory grows monotonically with batch, sequence and rank (a property test
holds the estimator to that), so the limits are found by binary search.
"""

from __future__ import annotations

from dataclasses import dataclass

from .checks import PROMPT_ROOM
from .errors import EstimateError
from .fit_options import Option, accum_for, fix_options
from .kind_rollout import grpo_divides_well
from .margin import Margin
from .model import ModelSpec
from .pricing import estimate
from .result import Estimate
from .setup import Setup

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
    """The longest sequence (a multiple of SEQ_STEP) that fits, at most the model's positions (no position to read
    beyond them: GPT-2's table ends there, a rotary model was trained to that context); 0 when not even the shortest
    does."""
    low = shortest_seq(setup) // SEQ_STEP
    top = max(low, min(MAX_SEQ, model.max_positions) // SEQ_STEP)
    steps = largest(lambda n: _fits(model, setup.with_(seq_len=n * SEQ_STEP), capacity, margin, reward_model), low, top)
    return steps * SEQ_STEP if steps >= low else 0


def _combinations(dims: list[list[Option]]):
    combos: list[tuple[Option, ...]] = [()]
    for dim in dims:
        combos = [c + (o,) for c in combos for o in dim]
    return [tuple(o for o in c if o.key) for c in combos]


def _cut_micro_batch(model: ModelSpec, new: Setup, capacity: float, margin: Margin | None, target: int, reward_model: ModelSpec | None = None) -> int:
    """The largest micro-batch that fits and divides the effective batch (so accumulation restores it exactly:
    5 x 4 would make 16 into 20); for GRPO also one whose generation round divides well (kind_rollout.grpo_divides_well),
    since a round of lcm(G, batch) completions can cost more than the cut saves."""
    best = max(1, min(new.micro_batch - 1, max_micro_batch(model, new, capacity, margin, reward_model)))
    world = new.world_size
    for b in range(best, 0, -1):
        if target % (b * world) and b > 1:
            continue
        if new.train != "grpo" or grpo_divides_well(new.with_(micro_batch=b, grad_accum=accum_for(target, b, world))):
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
        accum = accum_for(target, new.micro_batch, new.world_size)
        if accum != new.grad_accum:
            changes |= {"grad_accum": accum}
            new = new.with_(grad_accum=accum)
    est = estimate(model, new, reward_model)
    if not _judge(est, capacity, margin) and new.micro_batch > 1:
        best = _cut_micro_batch(model, new, capacity, margin, target, reward_model)
        accum = accum_for(target, best, new.world_size)
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
    for combo in _combinations(fix_options(model, setup)):
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
