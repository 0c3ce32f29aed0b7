"""The README's "## Expected time and cost" section: each stage's tokens/s, hours and dollars from the time model
(estimators/time_plan.py). Its own module because it is the one section that prices the plan again rather than
putting it in words."""

from __future__ import annotations

from ..planning import plan_spec, stage_models

# Examples each stage is priced for when neither the plan nor its answers give a data size: the low end of the
# source document's §2 SFT scale ("수만~수십만 개"), as advisor/advice/timecost.py assumes (SFT_SCALE).
ASSUMED_EXAMPLES = 10_000


def time_lines(plan) -> list[str]:
    """'## Expected time and cost': each stage's tokens/s, hours and dollars on the plan's GPU (estimators/time_plan
    .readme_lines), for the data size the plan was advised for (plan.time) or its answers, else an assumption said
    as one. Nothing when the GPU has no speed figures (a size like "24GB") or the model cannot be priced."""
    from estimators.catalog import TINY
    from estimators.errors import EstimateError
    from estimators.gpus import find_gpu
    from estimators.time_plan import Stage, readme_lines
    from estimators.time_report import Dataset

    from ..advice.timecost import plan_price
    from ..errors import AdvisorError

    if plan.model.key == TINY:  # a 2-layer random smoke-test model: its seconds say nothing about a real run
        return []
    try:
        gpu = find_gpu(plan.hardware.gpu)
        if not gpu.timed:
            return []
        spec = plan_spec(plan)
    except (EstimateError, AdvisorError, OSError, ValueError):
        return []
    t = getattr(plan, "time", None)
    count = (t.examples if t is not None else None) or (plan.answers or {}).get("data_count")
    n = int(count) if count else ASSUMED_EXAMPLES
    means = [float(t.mean_tokens if t is not None else stage.setup.seq_len) for stage in plan.stages]  # tokens per example
    stages = [
        Stage(stage.name, spec, stage.setup, Dataset(examples=n, mean_tokens=mean, epochs=stage.hyper.epochs), stage_models(plan, stage)[1])
        for stage, mean in zip(plan.stages, means, strict=True)
    ]
    try:
        table = readme_lines(stages, gpu, plan_price(plan))  # the user's price when the plan was advised with one
    except EstimateError:
        return []
    assumed = "" if count else f" (assumed: {n:,} is the low end of the source document's §2 scale; give `--data-count`)"
    size = (
        f"Priced for {n:,} examples per stage{assumed}, each up to {int(means[0]):,} tokens "
        "(an upper bound when examples are shorter), for the epochs of the plan. `advisor launch` prints the measured "
        "tokens/s next to this prediction."
    )
    return ["", "## Expected time and cost", "", *table, "", size]
