"""What to train (§6): decide_method maps goal, data, priority and resources onto the selection rows, RLHF vs DPO
judged by whether RLHF's three stages fit and finish within the stated budget. Its Decision carries the pipeline,
the reasons, the alternatives, the warnings and the adaptations a row names."""

from __future__ import annotations

from dataclasses import dataclass, field

from estimators.model import ModelSpec

from ..messages import Pair, both, join
from ..plan import Alternative, ModelRef, Reason
from ..rules import recommended
from .context import Context
from .fitting import COST_ORDER, QUALITY_ORDER, Search, search
from .reward_size import family_reward_models, smaller_reward_rlhf
from .rows import (
    adaptation_name,
    alternative,
    choose_when,
    comparison_text,
    goal_row,
    method_rows,
    reason,
    row_cite,
    row_reason,
    row_text,
    table_goal_row,
)
from .timecost import budget_words, candidate_time, data_size

# "Resources ample" (§6) is judged by the memory model, and a stated time or money budget by the time model
# (estimators/time_plan.py: RLHF's predicted hours and dollars on the user's GPUs against the budget). Only when
# the card has no speed figures (a size like "24GB") or no price do these fallbacks apply, the advisor's own
# judgement (the document gives none): three RLHF stages rarely finish in less than a day.
AMPLE_HOURS = 24.0
AMPLE_USD = 1000.0
# The §6 rows RLHF and DPO are chosen by: ample resources and the best quality -> RLHF, limited -> DPO.
AMPLE_ROW, LIMITED_ROW = "sel.best_quality_resources", "sel.limited_simple"
RLHF_ORDER = ("full", "lora")  # "ample" means RLHF fits without 4-bit weights


@dataclass
class Decision:
    pipeline: str  # a PIPELINES key
    reasons: list[Reason] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    warnings: list[Pair] = field(default_factory=list)
    adapt_pref: tuple[str, ...] = ()  # adaptations a §6 row names, in the order to try
    adapt_rule: str = ""
    data_formats: dict[str, str] = field(default_factory=dict)
    # RLHF's reward/value model when it is smaller than the policy (advisor/advice/reward_size.py); None: the policy's
    reward_value: tuple[ModelSpec, ModelRef] | None = None


def _personal(ctx: Context, d: Decision, with_method: bool) -> None:
    """§6 'personal GPU → QLoRA + SFT': QLoRA first on one consumer card when cost is the priority. The row says
    what is feasible on such a card (§5 QLoRA: "개인 GPU로 가능"); with quality as the priority the wizard promises
    full > LoRA > QLoRA, so the memory model decides and QLoRA is the fallback when LoRA does not fit."""
    if not ctx.hw.personal:
        return
    if ctx.answers.priority == "quality":
        d.reasons.append(row_reason("sel.personal_gpu", both("part.personal_gpu_quality", gpu=ctx.hw.label)))
        return
    d.reasons.append(row_reason("sel.personal_gpu", both("part.personal_gpu" if with_method else "part.personal_gpu_qlora", gpu=ctx.hw.label)))
    d.adapt_pref, d.adapt_rule = ("qlora", *(a for a in d.adapt_pref if a != "qlora")), "sel.personal_gpu"


def _sft_data(ctx: Context, d: Decision, stage: str = "sft") -> None:
    """SFT trains on instruction pairs (§2); say what happens when there are none."""
    data = ctx.data
    if "instruction_pairs" in data:
        return
    if "raw_text" in data:
        d.data_formats[stage] = "text"
        d.warnings.append(both("warn.raw_text_sft"))
    elif "preference_pairs" in data:
        d.warnings.append(both("warn.sft_from_preferences", stage=stage))
    else:
        d.warnings.append(both("warn.no_instruction_pairs", stage=stage))


def _resources(ctx: Context, wants_rlhf: bool) -> tuple[bool, list[Pair], Search, Pair, tuple[ModelSpec, ModelRef] | None]:
    """§6 'resources ample': RLHF's three stages fit with full fine-tuning or LoRA on hardware that is not a
    personal GPU, within the stated time and money, as the time model predicts them on the user's GPUs for the
    user's data size. When RLHF is wanted and a reward and value model the size of the policy do not fit, RLHF with
    the largest smaller reward/value model of the policy's family that does is judged instead (the InstructGPT
    practice, advisor/advice/reward_size.py). Returns the verdict, what limits it, the RLHF search, the time quote
    (en, ko): "RLHF: 3 stages, ~41.0 h, ~$330 on 1x NVIDIA A100 80GB; DPO: ~9.0 h, ~$72" ("" when it cannot be
    timed), and that smaller reward/value model (None: the policy's)."""
    a = ctx.answers
    rlhf = search(ctx.spec, "rlhf", RLHF_ORDER, ctx.hw, ctx.seq_len)
    limits: list[Pair] = []
    smaller = None
    if ctx.hw.personal:
        limits.append(both("part.personal_gpu", gpu=ctx.hw.label))
    if not (rlhf.chosen.fits and not rlhf.shortened):
        found = smaller_reward_rlhf(ctx, RLHF_ORDER, rlhf) if wants_rlhf and not ctx.hw.personal else None
        if found:
            rlhf, smaller = found[0], found[1:]
        else:
            family = family_reward_models(ctx.spec) if wants_rlhf and not ctx.hw.personal else []
            limits.append(
                join(
                    [both("part.rlhf_does_not_fit", gpu=ctx.hw.label), both("part.no_smaller_reward_fits", smallest=family[-1]) if family else ""],
                    sep="",
                )
            )
    rt = candidate_time(ctx, rlhf.chosen) if rlhf.chosen.fits else None
    dpo_rt = None
    if rt is not None:
        dpo = search(
            ctx.spec,
            "sft+dpo" if "instruction_pairs" in ctx.data else "dpo",
            QUALITY_ORDER if a.priority == "quality" else COST_ORDER,
            ctx.hw,
            ctx.seq_len,
        )
        dpo_rt = candidate_time(ctx, dpo.chosen) if dpo.chosen.fits else None
    quote = ("", "")
    if rt is not None:
        quote = both(
            "part.rlhf_reward_quote" if smaller else "part.rlhf_quote",
            line=rt.words,
            dpo=join(["; DPO: ", dpo_rt.short], sep="") if dpo_rt else "",
            size=data_size(a)[1],
            reward=smaller[0].name if smaller else "",
        )
    if a.time_budget_hours is not None:
        if rt is not None:
            if rt.hours > a.time_budget_hours:
                limits.append(both("part.rlhf_over_time", quote=quote, hours=a.time_budget_hours))
        elif a.time_budget_hours < AMPLE_HOURS:
            limits.append(both("part.short_time_budget", hours=a.time_budget_hours, gpu=ctx.hw.gpu.name, ample=AMPLE_HOURS))
    if a.budget_usd is not None:
        if rt is not None and rt.usd is not None:
            if rt.usd > a.budget_usd:
                limits.append(both("part.rlhf_over_money", quote=quote, usd=a.budget_usd))
        elif a.budget_usd < AMPLE_USD:
            limits.append(both("part.small_money_budget", usd=a.budget_usd, gpu=ctx.hw.gpu.name, ample=AMPLE_USD))
    return not limits, limits, rlhf, quote, smaller


def _rlhf_or_dpo(ctx: Context, d: Decision, row: dict) -> None:
    """The §6 row recommends RLHF, DPO or either: the row's own method when it names one and its premise holds, else
    the tie-break the document leaves to judgement: RLHF when quality is wanted and resources are ample (§6 "RLHF vs
    DPO 선택"), DPO otherwise."""
    a = ctx.answers
    data = ctx.data
    methods = recommended(row)[0]
    offers_rlhf, only_rlhf = "rlhf" in methods, methods == ("rlhf",)
    wants_best = only_rlhf or (offers_rlhf and a.priority == "quality")
    ample, limits, rlhf, quote, smaller = _resources(ctx, wants_best)
    if row["id"] not in (AMPLE_ROW, LIMITED_ROW):  # cite the goal's row, then the §6 row the choice lands on
        d.reasons.append(row_reason(row["id"]))
    choose_rlhf = offers_rlhf and wants_best and ample
    close = offers_rlhf and (wants_best != ample or (only_rlhf and a.priority == "cost"))
    limited = join(limits)
    if choose_rlhf:
        d.pipeline = "rlhf"
        budget = budget_words(ctx)
        quoted = both("part.ample_quote", quote=quote, budget=both("part.within_budget", budget=budget) if budget[0] else "") if quote[0] else ""
        d.reasons.append(
            row_reason(
                AMPLE_ROW,
                both(
                    "part.ample",
                    gpu=ctx.hw.label,
                    adaptation=adaptation_name(rlhf.chosen.adaptation),
                    quality=both("part.and_quality_priority") if a.priority == "quality" else "",
                    quote=quoted,
                ),
            )
        )
        steps = method_rows()["rlhf"].get("steps", [])
        reward = row_text(steps[1], "name") if len(steps) > 1 else both("part.reward_model")
        d.reasons.append(reason("rlhf", both("reason.rlhf_stages", reward=reward)))
        if smaller:
            d.reward_value = smaller
            d.reasons.append(reason("rlhf", both("reason.rlhf_smaller_reward", policy=ctx.spec.name, reward=smaller[0].name, gpu=ctx.hw.label)))
        _sft_data(ctx, d)
        d.alternatives.append(
            alternative(
                "dpo",
                "cmp.choose_when",
                both(
                    "alt.dpo_simpler",
                    difficulty=comparison_text("cmp.difficulty", "dpo"),
                    cost=comparison_text("cmp.cost", "dpo"),
                    when=choose_when("rlhf"),
                    performance=comparison_text("cmp.performance", "dpo"),
                ),
            )
        )
    else:
        d.pipeline = "sft+dpo" if "instruction_pairs" in data else "dpo"
        why = both("part.keep_simple") if not offers_rlhf else (limited if limits else both("part.cost_priority"))
        d.reasons.append(row_reason(LIMITED_ROW, why))
        d.reasons.append(
            reason(
                "dpo",
                both(
                    "reason.dpo", concept=row_text(method_rows()["dpo"], "concept"), then=both("part.sft_then_dpo") if d.pipeline == "sft+dpo" else ""
                ),
            )
        )
        if only_rlhf:  # the row's premise, ample resources, does not hold
            d.warnings.append(both("warn.rlhf_needs_ample", why=why))
        rlhf_why = [comparison_text("cmp.cost", "rlhf"), comparison_text("cmp.difficulty", "rlhf"), comparison_text("cmp.stability", "rlhf"), limited]
        if quote[0] and quote[0] not in limited[0]:  # the predicted price of both, even when no budget was given
            rlhf_why.append(quote)
        d.alternatives.append(alternative("rlhf", "cmp.cost", join(rlhf_why)))
    if close:
        d.reasons.append(
            reason(
                "cmp.choose_when",
                both(
                    "reason.close_call",
                    want=both("part.close_wants_quality" if wants_best else "part.close_wants_cost"),
                    resources=both("part.close_ample" if ample else "part.close_limited"),
                    rlhf_when=choose_when("rlhf"),
                    dpo_when=choose_when("dpo"),
                    side="RLHF" if choose_rlhf else "DPO",
                ),
            )
        )
    _personal(ctx, d, with_method=False)  # never with RLHF: a personal GPU is not 'ample'


def _grpo(ctx: Context, d: Decision, row: dict | None) -> None:
    d.pipeline = "grpo"
    m = method_rows()["grpo"]
    if row is not None:
        d.reasons.append(row_reason(row["id"], both("part.grpo_needs_pairs")))
    d.reasons.append(reason("grpo", both("reason.grpo", paper=m["source"].removeprefix("paper: ").split(",")[0], concept=row_text(m, "concept"))))
    d.alternatives += [
        alternative("rlhf", "rlhf", both("alt.rlhf_needs_pairs")),
        alternative("dpo", "dpo", both("alt.dpo_needs_pairs", data=row_text(method_rows()["dpo"], "data"))),
    ]
    d.warnings.append(both("warn.grpo_addition"))
    _personal(ctx, d, with_method=False)


def _sft_instead(ctx: Context, d: Decision, row: dict | None) -> None:
    """Preference methods wanted, no preference data nor reward: SFT is what can be trained."""
    d.pipeline = "sft"
    if row is not None:
        d.reasons.append(row_reason(row["id"], both("part.no_pairs_sft")))
    d.reasons.append(reason("sft", both("reason.sft", concept=row_text(method_rows()["sft"], "concept"))))
    d.warnings.append(both("warn.no_preference_data"))
    for m in ("rlhf", "dpo"):
        d.alternatives.append(alternative(m, m, both("alt.needs_preference_pairs", data=row_text(method_rows()[m], "data"))))
    _sft_data(ctx, d)
    _personal(ctx, d, with_method=True)


# Why the preference methods are not planned where a row recommends SFT alone: (order, message id) by row id; a row
# without its own words (an edited or new table) gets the row's citation.
SFT_ONLY = {
    "sel.chat_format": (("dpo", "rlhf"), "alt.chat_format_sft_only"),
    "sel.domain": (("rlhf", "dpo"), "alt.domain_sft_only"),
}
RAW_TEXT_ROWS = ("sel.domain",)  # rows whose data is raw text: it trains the SFT stage as planned, no warning


def _sft_only(ctx: Context, d: Decision, row: dict) -> None:
    """A row that recommends SFT (with the adaptations it names, if any)."""
    rid, adaptations = row["id"], recommended(row)[1]
    d.reasons.append(row_reason(rid))
    if adaptations:
        d.adapt_pref, d.adapt_rule = adaptations, rid
    if rid in RAW_TEXT_ROWS and "instruction_pairs" not in ctx.data and "raw_text" in ctx.data:
        d.data_formats["sft"] = "text"
        d.reasons.append(reason("sft", both("reason.sft_raw_domain")))
    else:
        if rid not in RAW_TEXT_ROWS:
            d.reasons.append(reason("sft", both("reason.sft", concept=row_text(method_rows()["sft"], "concept"))))
        _sft_data(ctx, d)
    order, mid = SFT_ONLY.get(rid, (("rlhf", "dpo"), ""))
    why = both(mid) if mid else row_cite(row)
    for m in order:
        d.alternatives.append(alternative(m, rid, why))
    _personal(ctx, d, with_method=True)


def decide_method(ctx: Context) -> Decision:
    """The goal's §6 row decides (rules/selection.toml `recommend`); the data says which of its methods can train."""
    data = ctx.data
    d = Decision(pipeline="sft")
    row = goal_row(ctx.answers.goal)
    if row is None:  # checkable tasks: GRPO, a marked addition beyond the document's table
        if "reward_signal" in data:
            _grpo(ctx, d, None)
        elif "preference_pairs" in data:
            _rlhf_or_dpo(ctx, d, table_goal_row("quality_safety"))
        else:
            _sft_instead(ctx, d, None)
            d.warnings.append(both("warn.no_reward_signal"))
    elif set(recommended(row)[0]) <= {"sft"}:
        _sft_only(ctx, d, row)
    elif "preference_pairs" in data:
        _rlhf_or_dpo(ctx, d, row)
    elif "reward_signal" in data:
        _grpo(ctx, d, row)
    else:
        _sft_instead(ctx, d, row)
    return d
