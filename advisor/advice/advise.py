"""`advise(answers) -> Plan`: the source document's tables applied to the user's answers, then sized to the GPU.

Pure and torch-free. Two steps:

1. *What* to train (§6): the situation rows picked from goal, data, priority and resources give the method
   (SFT, RLHF as SFT -> reward model -> PPO per §3, DPO, or GRPO as a marked addition) and, where a row names
   one, the adaptation (QLoRA on a personal GPU, LoRA/QLoRA for a domain).
2. *How*, so that it fits: each adaptation is tried in the preferred order (quality: full > LoRA > QLoRA, the
   domain row's LoRA/QLoRA first; cost: the row's, then LoRA > QLoRA > full) with memory-saving knobs, every
   stage priced by the memory model with its own training kind and judged with a margin kept free
   (estimators/margin.py). The first that fits everywhere wins; only when none fits at the asked sequence
   length is the sequence shortened; when nothing fits the plan says so and what would fit.

Every reason carries the rule id it follows (rules/*.toml) or "estimate" for memory-model reasoning.
"""

from __future__ import annotations

from ..answers import Answers
from ..messages import Pair, both
from ..plan import Plan
from ..plan_priced import Note, TimeSummary
from ..planning import PIPELINES, assign_reward, build_plan, rewarded_stages
from ..rewards import reward_parts
from .context import Context, build_context, capped_seq
from .decision import Decision, decide_method
from .fitting import search
from .nothing_fits import nothing_fits_warnings
from .rows import method_rows, row_text
from .sizing import adaptation_reasons, fit_order, hyper_reasons, knob_reasons
from .summary import estimate_summary, rule_of_thumb_note, stage_memory
from .timecost import SFT_SCALE, time_summary

FEW_EXAMPLES = 1000  # below this any fine-tuning run is likely to overfit (advisor's judgement)


def _data_warnings(ctx: Context, d: Decision) -> list[Pair]:
    n = ctx.answers.data_count
    if n is None:
        return []
    out: list[Pair] = []
    if n < FEW_EXAMPLES:
        out.append(both("warn.few_examples", n=n))
    if any(stage[1] == "sft" for stage in PIPELINES[d.pipeline]) and n < SFT_SCALE:
        out.append(both("warn.below_sft_scale", n=n, scale=row_text(method_rows()["sft"], "data_scale")))
    return out


def _over_budget(ctx: Context, t: TimeSummary | None) -> list[Pair]:
    """The planned run itself over the user's time or money (whatever method was chosen): say so with the figures."""
    if t is None:
        return []
    a = ctx.answers
    out: list[Pair] = []
    if a.time_budget_hours is not None and t.hours > a.time_budget_hours:
        out.append(both("warn.over_time", hours=t.hours, low=t.hours_low, high=t.hours_high, budget=a.time_budget_hours))
    if a.budget_usd is not None and t.usd is not None and t.usd > a.budget_usd:
        out.append(both("warn.over_money", usd=t.usd, budget=a.budget_usd))
    return out


def _reward(plan: Plan, text: str | None) -> list[Pair]:
    """GRPO's reward from the answers on the plan's GRPO stages; said loudly when the script falls back to its
    placeholder reward, and when a reward was given to a plan that trains no GRPO stage."""
    if text and not rewarded_stages(plan):
        return [both("warn.reward_unused", reward=text, pipeline=plan.pipeline)]
    return [both("warn.placeholder_reward", stage=name) for name in assign_reward(plan, reward_parts(text))]


def advise(answers: Answers, margin: str | None = None) -> Plan:
    """The plan for these answers. Every text in it is kept in English and Korean (rules/messages.toml); the
    renderers pick one. `margin` (`--margin`: "1.5GiB", "800MiB", "10%", "auto"/None) replaces the automatic margin
    a plan keeps free (estimators/margin.py)."""
    ctx, ref = build_context(answers, margin)
    capped = capped_seq(ctx.spec, answers.seq_len)[1]
    warns: list[Pair] = [capped] if capped else []
    d = decide_method(ctx)
    order = fit_order(answers, d)
    reward = d.reward_value[0] if d.reward_value else None  # RLHF's smaller reward/value model (decision.py), None: the policy's
    found = search(ctx.spec, d.pipeline, order, ctx.hw, ctx.seq_len, reward_model=reward)
    chosen = found.chosen
    a_reasons, a_alts, a_warns = adaptation_reasons(ctx, d, found)
    warns = warns + d.warnings + _data_warnings(ctx, d) + a_warns
    if not chosen.fits:
        warns += nothing_fits_warnings(ctx, d.pipeline, order, found)
    setups = {s.name: s.setup for s in chosen.stages}
    plan = build_plan(
        answers.model,
        chosen.stages[0].setup,
        pipeline=d.pipeline,
        gpu=answers.gpu,
        stage_setups=setups,
        data_formats=d.data_formats,
        resolved=(ctx.spec, ref),
        reward_value=d.reward_value,
    )
    priced = {fit.name: fit for fit in chosen.stages}
    for stage in plan.stages:
        stage.memory = stage_memory(priced[stage.name].estimate, priced[stage.name].fits)
    warns += _reward(plan, answers.reward)
    plan.reasons = d.reasons + a_reasons + knob_reasons(ctx, chosen) + hyper_reasons(plan)
    plan.alternatives = d.alternatives + a_alts
    rot_gib, note = rule_of_thumb_note(chosen.adaptation, ref.params_total, chosen.peak)
    plan.estimate = estimate_summary({st.name: st.estimate for st in chosen.stages}, ctx.hw.capacity, rot_gib, note, ctx.hw.keep, ctx.hw.gpu.pcie_gbs)
    plan.time = time_summary(ctx, chosen) if chosen.fits else None
    warns += _over_budget(ctx, plan.time)
    if answers.price is not None and plan.time is None:  # a card without speed figures, or a plan that does not fit
        warns.append(both("warn.price_unused", price=answers.price, gpu=ctx.hw.label))
    plan.warnings = [Note(en=en, ko=ko) for en, ko in dict.fromkeys(warns)]
    plan.answers = answers.to_data()
    return plan
