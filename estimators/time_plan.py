"""Time and cost for the advice commands: what a change to the set-up costs in time (`advisor fit`), the fitting
set-ups ranked by predicted time (`advisor fit --goal fastest`), hours and dollars per stage of a plan
(`advisor advise`, the run README). Pure functions over estimators/timing.py; the callers own the wording.

Time is compared per training token of the whole run (step seconds / tokens per step / GPUs): two set-ups with
different micro-batches, accumulation or GPU counts then compare on the same data set.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EstimateError
from .gpus import Gpu
from .model import ModelSpec
from .setup import Setup
from .time_report import BAND_HIGH, BAND_LOW, Dataset, time_dict
from .timing import StepTime, step_time

# Why a change costs time, named after the terms that grow (estimators/timing.py term names).
REASONS = (
    ("checkpoint recompute", "checkpointing recomputes the forward"),
    ("offload", "offload crosses PCIe"),
    ("kernel launch", "a smaller micro-batch leaves the GPU waiting on kernel launches"),
    ("all-gather", "sharded weights are gathered over the GPU link"),
    ("reduce-scatter", "gradients cross the GPU link"),
    ("all-reduce", "gradients cross the GPU link"),
    ("optimizer", "the optimizer step moves more bytes"),
    ("matmuls", "smaller matmuls reach less of the GPU's peak"),
    ("elementwise", "more bytes move through memory"),
)


def seconds_per_token(st: StepTime) -> float:
    """Wall seconds per training token of the whole run."""
    return st.seconds / (st.tokens * st.setup.world_size)


def time_or_none(model: ModelSpec, setup: Setup, gpu: Gpu, reward_model: ModelSpec | None = None) -> StepTime | None:
    """The step time, or None when the card has no speed figures or the set-up cannot be timed. `reward_model`: the
    reward/value architecture when it is not the policy's (estimators/timing.py step_time)."""
    if not gpu.timed:
        return None
    try:
        return step_time(model, setup, gpu, reward_model=reward_model)
    except EstimateError:
        return None


def _why(base: StepTime, new: StepTime) -> str:
    """The term whose growth (per token) explains most of a slow-down, in words."""

    def per_token(st: StepTime) -> dict[str, float]:
        n = st.tokens * st.setup.world_size
        return {x.name: x.seconds / n for x in st.terms}

    b, n = base.setup, new.setup
    if n.adaptation == "qlora" and b.adaptation != "qlora":
        return "4-bit weights are dequantised on every use"
    if n.checkpointing and not b.checkpointing:
        return "checkpointing recomputes the forward"
    if (n.offload_optimizer and not b.offload_optimizer) or (n.offload_params and not b.offload_params):
        return "offload crosses PCIe"
    if n.micro_batch < b.micro_batch:
        return "a smaller micro-batch reaches less of the GPU's peak"
    old, now = per_token(base), per_token(new)
    growth = sorted(((now[k] - old.get(k, 0.0), k) for k in now), reverse=True)
    for delta, name in growth:
        if delta <= 0:
            break
        for key, words in REASONS:
            if key in name:
                return words
    return ""


def change_time(model: ModelSpec, base: Setup, changed: Setup, gpu: Gpu, reward_model: ModelSpec | None = None) -> dict | None:
    """What a change costs in time: tokens/s per GPU before and after, the ratio of run time (after / before) and
    a one-line text ("+24 % time: checkpointing recomputes the forward"). None when either cannot be timed."""
    before, after = time_or_none(model, base, gpu, reward_model), time_or_none(model, changed, gpu, reward_model)
    if before is None or after is None:
        return None
    ratio = seconds_per_token(after) / seconds_per_token(before)
    pct = 100 * (ratio - 1)
    why = _why(before, after) if ratio > 1.005 else ""
    text = "about the same time" if abs(pct) < 0.5 else f"{pct:+.0f} % time" + (f" ({why})" if why else "")
    return {
        "tokens_per_s_per_gpu": round(after.tokens_per_s, 1),
        "before_tokens_per_s_per_gpu": round(before.tokens_per_s, 1),
        "time_ratio": round(ratio, 3),
        "text": text,
    }


def rank_by_time(model: ModelSpec, setups: list[Setup], gpu: Gpu, reward_model: ModelSpec | None = None) -> list[tuple[Setup, float | None]]:
    """`setups` sorted fastest first by seconds per training token (untimable ones last, order kept)."""
    timed = [(s, time_or_none(model, s, gpu, reward_model)) for s in setups]
    keyed = [(s, seconds_per_token(st) if st else None) for s, st in timed]
    return sorted(keyed, key=lambda item: (item[1] is None, item[1] or 0.0))


@dataclass(frozen=True)
class Stage:
    """One stage of a plan (SFT, reward model, PPO, DPO, ...) and the data it trains on."""

    name: str
    model: ModelSpec
    setup: Setup
    dataset: Dataset
    reward_model: ModelSpec | None = None  # the reward/value architecture when it is not the policy's (reward, PPO)


def plan_time(stages: list[Stage], gpu: Gpu, price: float | None = None) -> dict:
    """Hours and dollars per stage and in total on `gpu` x each stage's setup.world_size, with the band.

    Returns {"stages": [{"name", "hours", "hours_low", "hours_high", "usd", "tokens_per_s_per_gpu", "gpus"}...],
    "total": {"hours", "hours_low", "hours_high", "usd"}, "price_usd_per_gpu_hour", "price_source"}; a stage that
    cannot be timed has hours None and a "why". usd is None without a price (pass `price`)."""
    out, hours, usd, unpriced = [], 0.0, 0.0, False
    rate = gpu.price_usd_per_hour if price is None else price
    for stage in stages:
        try:
            block = time_dict(stage.model, stage.setup, gpu, stage.dataset, price, reward_model=stage.reward_model)
        except EstimateError as exc:
            out.append({"name": stage.name, "hours": None, "usd": None, "why": str(exc)})
            unpriced = True
            continue
        h = block.get("hours", {}).get("total")
        cost = block.get("cost", {}).get("usd")
        out.append(
            {
                "name": stage.name,
                "gpus": block["gpus"],
                "tokens_per_s_per_gpu": block["tokens_per_s_per_gpu"],
                "hours": h,
                "hours_low": block.get("hours", {}).get("low"),
                "hours_high": block.get("hours", {}).get("high"),
                "usd": cost,
            }
        )
        hours += h or 0.0
        if cost is None:
            unpriced = True
        else:
            usd += cost
    return {
        "stages": out,
        "total": {
            "hours": round(hours, 3),
            "hours_low": round(hours / BAND_HIGH, 3),
            "hours_high": round(hours / BAND_LOW, 3),
            "usd": None if unpriced else round(usd, 2),
        },
        "price_usd_per_gpu_hour": rate,
        "price_source": "given" if price is not None else gpu.price_source,
        "units": {"hours": "h (wall clock)", "usd": "USD"},
    }


def plan_line(plan: dict, gpu: Gpu) -> str:
    """ "3 stages, ~41 h, ~$330 on 1x NVIDIA A100 80GB" (the issue's wording), from plan_time's result."""
    total = plan["total"]
    gpus = max((s.get("gpus") or 1) for s in plan["stages"]) if plan["stages"] else 1
    n = len(plan["stages"])
    cost = f", ~${total['usd']:,.0f}" if total["usd"] is not None else ""
    return f"{n} stage{'s' if n != 1 else ''}, ~{total['hours']:.1f} h{cost} on {gpus}x {gpu.name}"


def readme_lines(stages: list[Stage], gpu: Gpu, price: float | None = None) -> list[str]:
    """Markdown lines for a generated run's README: expected time and cost per stage, with the band and sources."""
    plan = plan_time(stages, gpu, price)
    lines = ["| stage | GPUs | tokens/s per GPU | expected time | range | cost |", "|---|---|---|---|---|---|"]
    for s in plan["stages"]:
        if s["hours"] is None:
            lines.append(f"| {s['name']} | | | not timed: {s.get('why', 'no data-set size')} | | |")
            continue
        cost = "" if s["usd"] is None else f"${s['usd']:,.2f}"
        lines.append(
            f"| {s['name']} | {s['gpus']} | {s['tokens_per_s_per_gpu']:,.0f} | {s['hours']:.1f} h | "
            f"{s['hours_low']:.1f}-{s['hours_high']:.1f} h | {cost} |"
        )
    rate = plan["price_usd_per_gpu_hour"]
    lines.append("")
    lines.append(
        f"Predicted by the advisor's time model (estimators/timing.py) on {gpu.name}; the range is the 10th-90th "
        f"percentile of published runs against the model. Price: "
        + (f"${rate:g} per GPU-hour ({plan['price_source']})." if rate is not None else "none (pass --price).")
    )
    return lines


def fastest_fixes(model: ModelSpec, setup: Setup, gpu: Gpu, margin=None, limit: int = 5, pool: int = 12, reward_model: ModelSpec | None = None):
    """`advisor fit --goal fastest`: the fitting set-ups (the set-up as given, if it fits, and up to `pool` of
    estimators/fit.py's cheapest fixes) ranked by predicted seconds per training token, fastest first, `limit`
    kept. Each is an estimators.fit.Fix; the one for the set-up as given has key "" and no changes. `reward_model`: the
    reward/value architecture when it is not the policy's (--reward-value-model)."""
    from .fit import Fix, _judge, suggest_fixes
    from .pricing import estimate

    capacity = gpu.memory_bytes
    est = estimate(model, setup, reward_model)
    fixes = [f for f in suggest_fixes(model, setup, capacity, limit=pool, margin=margin, reward_model=reward_model) if f.changes]
    candidates = [Fix("", "the set-up as given", "", {}, est.setup, est, capacity, margin)] if _judge(est, capacity, margin) else []
    for fix in fixes:  # one entry per distinct run
        if all(fix.setup != c.setup for c in candidates):
            candidates.append(fix)
    ranked = rank_by_time(model, [f.setup for f in candidates], gpu, reward_model)
    order = {id(s): i for i, (s, _) in enumerate(ranked)}
    return tuple(sorted(candidates, key=lambda f: order[id(f.setup)])[:limit])
