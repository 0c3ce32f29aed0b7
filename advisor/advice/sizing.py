"""How it fits, in words: the order adaptations are tried in (fit_order) and the reasons for the sizing: why this
adaptation and not the others, each stage's knobs and batch, and where the hyperparameters come from."""

from __future__ import annotations

from ..answers import Answers
from ..messages import Pair, both, join
from ..names import ADAPTATION_NAME_KO
from ..plan import Alternative, Plan, Reason
from ..planning import hyper_rule
from .context import Context
from .decision import Decision
from .fitting import COST_ORDER, QUALITY_ORDER, Candidate, Search
from .rows import adaptation_name, adaptation_rows, alternative, reason, row_text
from .summary import gib
from .timecost import RunTime, budget_words, candidate_time


def fit_order(answers: Answers, d: Decision) -> tuple[str, ...]:
    """The adaptations in the order they are tried; the first that fits (with its margin) wins.
    Quality: full > LoRA > QLoRA, as the priority question promises, unless a row names the adaptations for the
    goal itself (§6 domain → LoRA/QLoRA: those first, in the quality order). Cost: a row's adaptations first
    (the personal GPU's QLoRA, the domain's LoRA/QLoRA), then LoRA > QLoRA > full."""
    if answers.priority == "quality":
        named = tuple(a for a in QUALITY_ORDER if a in d.adapt_pref)
        return tuple(dict.fromkeys((*named, *QUALITY_ORDER)))
    return tuple(dict.fromkeys((*d.adapt_pref, *COST_ORDER)))


# Why the first adaptation of the order was the one tried first, by the §6 row that named it (else the priority).
NAMED_BY = {"sel.personal_gpu": "part.named_by_personal_row", "sel.domain": "part.named_by_domain_row"}


def adaptation_reasons(ctx: Context, d: Decision, found: Search) -> tuple[list[Reason], list[Alternative], list[Pair]]:
    reasons, alts, warns = [], [], []
    chosen = found.chosen
    cap = ctx.hw.gpu.memory_gib
    a = chosen.adaptation
    row = adaptation_rows()[a]
    first = found.order[0]
    if chosen.fits:
        peak_est = chosen.peak.estimate
        kept = ctx.hw.keep.kept(peak_est, ctx.hw.capacity)
        paged = max((s.estimate.paged_bytes for s in chosen.stages), default=0)
        fit = both(
            "part.fits",
            need=gib(chosen.device_bytes),
            stage=chosen.peak.name,
            cap=cap,
            spare=gib(ctx.hw.keep.spare(peak_est, ctx.hw.capacity)),
            kept=(kept.describe("en"), kept.describe("ko")),
            paged=both("part.fits_paged", gib=gib(paged)) if paged else "",
        )
        if a == first:
            why = both(NAMED_BY.get(d.adapt_rule) or ("part.quality_priority" if ctx.answers.priority == "quality" else "part.cost_priority"))
        else:
            skipped = join(
                [
                    both("part.also_needs", adaptation=adaptation_name(s), gib=gib(found.tried[s].base_bytes))
                    for s in found.order[1 : found.order.index(a)]
                ],
                sep="",
            )
            why = both(
                "part.first_needs",
                adaptation=adaptation_name(first),
                gib=gib(found.tried[first].base_bytes),
                skipped=skipped,
                chosen=adaptation_name(a),
            )
        reasons.append(reason(a, both("reason.adaptation", name=row["name"], feature=row_text(row, "feature"), why=why, fit=fit)))
        if found.shortened:
            warns.append(both("warn.shortened", asked=ctx.seq_len, seq=chosen.seq_len, adaptation=adaptation_name(a)))
    if not chosen.fits:
        reasons.append(reason("estimate", both("reason.nothing_fits", gpu=ctx.hw.label, adaptation=adaptation_name(a), gib=gib(chosen.base_bytes))))
    for other, cand in found.tried.items():
        if other == a:
            continue
        orow = adaptation_rows()[other]
        if not cand.fits:
            alts.append(alternative(other, "estimate", both("alt.does_not_fit", gib=gib(cand.base_bytes), stage=cand.peak.name, cap=cap)))
        elif found.order.index(other) > found.order.index(a):
            alts.append(
                alternative(
                    other,
                    other,
                    both(
                        "alt.fits_later",
                        gib=gib(cand.base_bytes),
                        time=_time_versus(ctx, cand, chosen),
                        order=_order_text(found.order),
                        feature=row_text(orow, "feature"),
                    ),
                )
            )
            warns += _faster_within_budget(ctx, cand, chosen)
        else:  # earlier in the order and fits: only when the chosen one was cut to a shorter sequence (not possible) or tied
            alts.append(alternative(other, other, both("alt.feature", feature=row_text(orow, "feature"))))
    return reasons, alts, warns


def _time_versus(ctx: Context, other: Candidate, chosen: Candidate) -> Pair | str:
    """ ", ~2.1 h, ~$4 against ~3.0 h for full fine-tuning": an alternative adaptation's predicted time next to the
    chosen one's; empty when either cannot be timed."""
    o, c = candidate_time(ctx, other), candidate_time(ctx, chosen)
    if o is None or c is None:
        return ""
    return both("part.time_versus", other=o.short, chosen=c.short, adaptation=adaptation_name(chosen.adaptation))


def _faster_within_budget(ctx: Context, other: Candidate, chosen: Candidate) -> list[Pair]:
    """The chosen adaptation is predicted over the user's time or money while a later one that fits is within it:
    say so with both figures (the order the priority promised is kept; the user decides)."""
    a = ctx.answers
    if a.time_budget_hours is None and a.budget_usd is None:
        return []
    o, c = candidate_time(ctx, other), candidate_time(ctx, chosen)
    if o is None or c is None:
        return []

    def within(rt: RunTime) -> bool:
        ok_time = a.time_budget_hours is None or rt.hours <= a.time_budget_hours
        ok_money = a.budget_usd is None or rt.usd is None or rt.usd <= a.budget_usd
        return ok_time and ok_money

    if within(c) or not within(o):
        return []
    return [
        both(
            "warn.faster_within_budget",
            chosen=adaptation_name(chosen.adaptation),
            chosen_time=c.short,
            budget=budget_words(ctx),
            other=adaptation_name(other.adaptation),
            other_time=o.short,
        )
    ]


def _order_text(order: tuple[str, ...]) -> str:
    return " > ".join(ADAPTATION_NAME_KO[a] for a in order)


def knob_reasons(ctx: Context, chosen: Candidate) -> list[Reason]:
    out = []
    hw = ctx.hw
    prec = chosen.stages[0].setup.precision
    if prec == "bf16":
        out.append(reason("estimate", both("reason.bf16", gpu=hw.gpu.name)))
    else:
        out.append(reason("estimate", both("reason.no_bf16", precision=prec, gpu=hw.gpu.name)))
    for s in chosen.stages:
        st = s.setup
        knobs: list[Pair | str] = [st.optimizer] if st.optimizer != "adamw" else []
        knobs.append(both("part.checkpointing" if st.checkpointing else "part.no_checkpointing"))
        if st.world_size > 1:
            knobs.append(both("part.gpus_parallel", gpus=st.world_size, parallel=st.parallel))
        out.append(
            reason(
                "estimate",
                both(
                    "reason.stage_batch",
                    stage=s.name,
                    micro_batch=st.micro_batch,
                    accum=st.grad_accum,
                    gpus=st.world_size,
                    effective=st.micro_batch * st.grad_accum * st.world_size,
                    seq=st.seq_len,
                    knobs=join(knobs, ", "),
                    largest=both("part.largest_micro_batch", n=s.max_micro_batch) if s.fits else "",
                ),
            )
        )
    adaptation = chosen.adaptation
    if adaptation != "full":
        st = chosen.stages[0].setup
        double = " + double quant" if st.double_quant else ""
        quant = both("part.qlora_base", quant_type=st.quant_type, double=double) if adaptation == "qlora" else ""
        out.append(
            reason(adaptation, both("reason.lora", r=st.lora_r, alpha=st.lora_alpha, targets=st.lora_targets, dropout=st.lora_dropout, quant=quant))
        )
    return out


def hyper_reasons(plan: Plan) -> list[Reason]:
    out = []
    for stage in plan.stages:
        rid = hyper_rule(stage.setup.train, stage.setup.adaptation)
        h = stage.hyper
        beta = f", beta {h.beta:g}" if stage.setup.train in ("dpo", "ppo", "grpo") else ""
        out.append(reason(rid, both("reason.hyper", stage=stage.name, lr=h.learning_rate, epochs=h.epochs, beta=beta)))
    return out
