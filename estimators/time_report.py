"""The time estimate as plain data (the `time` block of `advisor estimate --json`) and as lines for the terminal.

A run's time is the time of one optimizer step (estimators/timing.py) times the number of steps the data set
needs: training tokens x epochs / (tokens per step per GPU x GPUs). Cost is GPU-hours x the on-demand price per
GPU-hour (rules/gpus.toml, or the user's --price). The band is how far published runs were from the model: the
10th-90th percentile of measured / predicted tokens per second over every published row the model expresses
(estimators/time_accuracy.py; tests/test_time_report.py recomputes it, so the two cannot drift apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import EstimateError
from .gpus import Gpu
from .model import ModelSpec
from .setup import Setup
from .timing import StepTime, step_time

# measured / predicted tokens/s, 10th and 90th percentile over the 72 expressible published rows
# (estimators/time_accuracy_report.py throughput_band; bench/results/time_accuracy.txt). The wide upper end is mostly the
# fms L40 rows, which ran faster than the L40's datasheet peak allows (see that file).
BAND_ROWS, BAND_LOW, BAND_HIGH = 72, 0.92, 1.49
BAND_SOURCE = f"10th-90th percentile of measured / predicted tokens/s over {BAND_ROWS} published runs (bench/results/time_accuracy.txt)"
TOP_TERMS = 8  # terms shown in the terminal table (all are in --json)


@dataclass(frozen=True)
class Dataset:
    """How much the run trains on: `examples` x `mean_tokens`, or `tokens` directly, for `epochs` passes."""

    examples: int | None = None
    mean_tokens: float | None = None
    tokens: int | None = None
    epochs: float = 1.0

    def total_tokens(self, setup: Setup) -> float | None:
        """Training tokens over all epochs. Packed data fills every sequence, so the count is the real tokens;
        unpacked, each example is a sequence of its own of min(mean_tokens, seq_len) tokens (padding to the
        longest in the batch is not modelled)."""
        if self.tokens is not None:
            return self.tokens * self.epochs
        if self.examples is None:
            return None
        mean = self.mean_tokens or setup.seq_len
        per = mean if setup.packed else min(mean, setup.seq_len)
        # sequences per example: chosen and rejected (dpo, reward), the G completions of a prompt (grpo)
        pair = 2 if setup.train in ("dpo", "reward") else setup.num_generations if setup.train == "grpo" else 1
        return self.examples * per * pair * self.epochs


def check_dataset(d: Dataset) -> None:
    if d.examples is not None and d.tokens is not None:
        raise EstimateError("give --examples (with --mean-tokens) or --tokens, not both")
    for name, value in (("--examples", d.examples), ("--tokens", d.tokens), ("--mean-tokens", d.mean_tokens), ("--epochs", d.epochs)):
        if value is not None and value <= 0:
            raise EstimateError(f"{name} must be positive, got {value:g}")
    if d.mean_tokens is not None and d.examples is None:
        raise EstimateError("--mean-tokens needs --examples (the number of training examples)")


def _hours(seconds: float) -> float:
    return seconds / 3600.0


def time_dict(
    model: ModelSpec,
    setup: Setup,
    gpu: Gpu,
    dataset: Dataset | None = None,
    price: float | None = None,
    st: StepTime | None = None,
    reward_model: ModelSpec | None = None,
) -> dict:
    """The `time` block: one step term by term, throughput, and (with a data set) hours and cost, each with a band.
    `reward_model`: the reward/value architecture when it is not the policy's (estimators/timing.py step_time)."""
    dataset = dataset or Dataset()
    check_dataset(dataset)
    if price is not None and price < 0:
        raise EstimateError(f"--price: must be at least 0, got {price:g}")  # the wording of the advise question's bound
    st = st or step_time(model, setup, gpu, reward_model=reward_model)
    world = st.setup.world_size
    tps = st.tokens_per_s
    out: dict = {
        "gpu": gpu.id,
        "gpus": world,
        "units": {"seconds": "s", "throughput": "tokens/s", "hours": "h (wall clock)", "cost": "USD", "price": "USD per GPU-hour"},
        "step_seconds": round(st.seconds, 4),
        "tokens_per_step_per_gpu": st.tokens,
        "examples_per_step_per_gpu": st.sequences,
        "tokens_per_s_per_gpu": round(tps, 1),
        "tokens_per_s_total": round(tps * world, 1),
        "hfu": round(st.hfu, 3),  # hardware FLOPs utilisation (recompute counted) of the training passes
        "band": {
            "tokens_per_s_per_gpu": {"low": round(tps * BAND_LOW, 1), "high": round(tps * BAND_HIGH, 1)},
            "ratio": {"low": BAND_LOW, "high": BAND_HIGH},
            "source": BAND_SOURCE,
        },
        "terms": [{"name": x.name, "seconds": round(x.seconds, 5), "bound": x.bound, "note": x.note} for x in st.terms],
        "model": "roofline per term (estimators/timing.py, constants in estimators/roofline.py)",
    }
    total = dataset.total_tokens(st.setup)
    if total is None:
        return out
    steps = total / (st.tokens * world)
    seconds = steps * st.seconds
    hours = _hours(seconds)
    out["dataset"] = {
        "examples": dataset.examples,
        "mean_tokens": dataset.mean_tokens,
        "tokens": dataset.tokens,
        "epochs": dataset.epochs,
        "training_tokens": int(total),
        "optimizer_steps": round(steps, 1),
    }
    epoch_hours = hours / dataset.epochs
    # A faster-than-predicted run (high tokens/s) is the short end of the time band.
    out["hours"] = {
        "total": round(hours, 3),
        "per_epoch": round(epoch_hours, 3),
        "low": round(hours / BAND_HIGH, 3),
        "high": round(hours / BAND_LOW, 3),
    }
    rate = gpu.price_usd_per_hour if price is None else price
    if rate is None:
        out["cost"] = {"usd": None, "why": gpu.price_source or "no price for this GPU: pass --price USD_PER_GPU_HOUR"}
        return out
    gpu_hours = hours * world
    out["cost"] = {
        "usd": round(gpu_hours * rate, 2),
        "low": round(gpu_hours * rate / BAND_HIGH, 2),
        "high": round(gpu_hours * rate / BAND_LOW, 2),
        "gpu_hours": round(gpu_hours, 2),
        "price_usd_per_gpu_hour": rate,
        "price_source": "given with --price" if price is not None else gpu.price_source,
        "price_date": "" if price is not None else gpu.price_date,
    }
    return out


def _duration(hours: float) -> str:
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def time_lines(block: dict) -> list[str]:
    """The time block for the terminal (rich markup): the largest terms, throughput, hours and cost with bands."""
    terms = sorted(block["terms"], key=lambda x: -x["seconds"])
    step = block["step_seconds"]
    lines = [
        f"[bold]time on {block['gpus']}x {block['gpu']}[/bold] (per optimizer step, per GPU; "
        f"largest {min(TOP_TERMS, len(terms))} of {len(terms)} terms)"
    ]
    for x in terms[:TOP_TERMS]:
        note = f"  [dim]{x['note']}[/dim]" if x["note"] else ""
        lines.append(f"  {x['name']:<40} {x['seconds']:9.3f} s  {100 * x['seconds'] / step:5.1f} %  {x['bound']}{note}")
    band = block["band"]["tokens_per_s_per_gpu"]
    lines.append(
        f"  step {step:.3f} s, {block['tokens_per_step_per_gpu']:,} tokens per GPU: "
        f"[bold]{block['tokens_per_s_per_gpu']:,.0f} tokens/s per GPU[/bold] "
        f"({band['low']:,.0f}-{band['high']:,.0f}), {100 * block['hfu']:.0f} % of peak"
    )
    if "hours" in block:
        h, d = block["hours"], block["dataset"]
        lines.append(
            f"  {d['training_tokens']:,} training tokens ({d['epochs']:g} epoch{'s' if d['epochs'] != 1 else ''}, "
            f"{d['optimizer_steps']:,.0f} optimizer steps): [bold]{_duration(h['total'])}[/bold] "
            f"({_duration(h['low'])}-{_duration(h['high'])}), {_duration(h['per_epoch'])} per epoch"
        )
        cost = block["cost"]
        if cost.get("usd") is None:
            lines.append(f"  cost: not priced ({cost['why']})")
        else:
            when = f", {cost['price_date']}" if cost["price_date"] else ""
            lines.append(
                f"  cost: [bold]${cost['usd']:,.2f}[/bold] (${cost['low']:,.2f}-${cost['high']:,.2f}) for "
                f"{cost['gpu_hours']:,.1f} GPU-hours at ${cost['price_usd_per_gpu_hour']:g}/GPU-hour "
                f"[dim]({cost['price_source']}{when})[/dim]"
            )
    else:
        lines.append("  [dim]give --examples N (with --mean-tokens) or --tokens N for hours and cost[/dim]")
    lines.append(f"  [dim]band: {block['band']['source']}[/dim]")
    return lines
