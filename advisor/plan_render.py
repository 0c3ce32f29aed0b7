"""Human output of a Plan (`advisor advise`): the recommendation, the stages with what each was priced at, the time
and cost, in English or Korean. Renders the same Plan data `--json` prints."""

from __future__ import annotations

from .names import ADAPTATIONS, PIPELINE_TITLE

UI = {
    "recommend": ("Recommendation", "추천"),
    "with": ("with", "+"),
    "on": ("on", "하드웨어"),
    "stages": ("stages (GiB: on each card)", "단계 (GiB: 카드당 사용량)"),
    "stages_legend": (
        "batch: micro-batch × gradient accumulation · inputs: start model, reward model",
        "배치: 마이크로 배치 × 그래디언트 누적 · 입력: 시작 모델, 보상 모델",
    ),
    "stage": ("stage", "단계"),
    "data": ("data", "데이터"),
    "inputs": ("inputs", "입력"),
    "batch": ("batch", "배치"),
    "seq": ("tokens", "토큰"),
    "lr": ("lr", "학습률"),
    "epochs": ("epochs", "에폭"),
    "card": ("GiB", "GiB"),
    "fits": ("fits", "들어감"),
    "yes": ("yes", "예"),
    "no": ("no", "아니오"),
    "reasons": ("Why", "이유"),
    "alternatives": ("Alternatives considered", "검토한 대안"),
    "option": ("option", "대안"),
    "why_not": ("why not", "선택하지 않은 이유"),
    "rule": ("rule", "규칙"),
    "comparison": ("RLHF vs DPO (§6)", "RLHF vs DPO 선택 (§6)"),
    "criterion": ("criterion", "기준"),
    "estimate": ("Memory estimate of the largest stage", "가장 큰 단계의 메모리 추정"),
    "thumb": ("Rule of thumb", "경험칙"),
    "warnings": ("Warnings", "경고"),
    "time": ("Expected time and cost", "예상 시간과 비용"),
    "tps": ("tokens/s per GPU", "GPU당 토큰/s"),
    "hours": ("time", "시간"),
    "range": ("range", "범위"),
    "cost": ("cost", "비용"),
    "total": ("total", "합계"),
    "user_price": ("your price", "입력한 가격"),  # TimeSummary.price_source USER_PRICE (advisor/advice/timecost.py)
    "no_time": (
        "time not predicted: the card has no speed figures in rules/gpus.toml (give a GPU by name)",
        "시간 예측 없음: 이 카드는 rules/gpus.toml에 속도 정보가 없습니다 (GPU 이름으로 지정하세요)",
    ),
}


def _t(key: str, lang: str) -> str:
    en, ko = UI[key]
    return ko if lang == "ko" else en


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "ko" else pair[0]


def plan_blocks(plan, answers, lang: str = "en") -> list:
    """What `advisor advise` prints: markup strings, TableSpecs and CompactSpecs (advisor/render.py print_blocks)."""
    from estimators import estimate
    from estimators.report import estimate_dict

    from . import rules
    from .advice.rows import comparison_close
    from .plan_priced import in_lang
    from .planning import stage_models
    from .render import TableSpec, estimate_blocks

    out: list = []
    pipeline = _pick(PIPELINE_TITLE.get(plan.pipeline, (plan.pipeline, plan.pipeline)), lang)
    adaptation = _pick(ADAPTATIONS[plan.adaptation], lang)
    hw = plan.hardware
    out.append(f"[bold]{_t('recommend', lang)}: {pipeline} {_t('with', lang)} {adaptation}[/bold]")
    out.append(f"[dim]{plan.model.name} ({plan.model.resolved_from}) · {hw.count}× {hw.gpu_name} ({hw.memory_gib:g} GiB)[/dim]")

    stage_rows = []
    for stage in plan.stages:
        memory = stage.memory or _priced(plan, stage)  # as advise priced it; a plan from before re-priced here
        fits, device_gib = memory.fits, memory.device_gib
        mark = f"[green]{_t('yes', lang)}[/green]" if fits else f"[red]{_t('no', lang)}[/red]"
        s = stage.setup
        name = stage.name if s.train == stage.name else f"{stage.name} ({s.train})"
        # the model it starts from (a smaller reward model: its own), then (PPO) the model that scores it
        inputs = stage.base_from or (stage.reward_value_model.name if stage.reward_value_model and s.train == "reward" else "-")
        if stage.reward_from:
            inputs += f", {stage.reward_from}"
        stage_rows.append(
            (
                name,
                stage.data_format,
                inputs,
                f"{s.micro_batch}×{s.grad_accum}",
                str(s.seq_len),
                _lr(stage.hyper.learning_rate),
                f"{stage.hyper.epochs:g}",
                f"{device_gib:.1f}",
                mark,
            )
        )
    out.append(_stage_table(lang, stage_rows))
    out.append(f"[dim]{_t('stages_legend', lang)}[/dim]")  # below, not a caption: a caption wraps at the table's width

    out.append(f"[bold]{_t('reasons', lang)}[/bold]")
    for r in plan.reasons:
        out.append(f"  • {_escape(in_lang(r.en, r.ko, lang))} [dim]\\[{r.rule}][/dim]")

    if plan.alternatives:
        alt_rows = []
        for a in plan.alternatives:
            label = _pick(PIPELINE_TITLE.get(a.method) or ADAPTATIONS.get(a.method) or (a.method, a.method), lang)
            alt_rows.append((label, _escape(in_lang(a.why_not_en, a.why_not_ko, lang)), a.rule))
        out.append(TableSpec(_t("alternatives", lang), (_t("option", lang), _t("why_not", lang), _t("rule", lang)), alt_rows))

    if comparison_close(plan):
        cmp_rows = [
            (rules.text(row, "label", lang), rules.text(row, "rlhf", lang), rules.text(row, "dpo", lang), row["id"]) for row in rules.rlhf_vs_dpo()
        ]
        out.append(TableSpec(_t("comparison", lang), (_t("criterion", lang), "RLHF", "DPO", _t("rule", lang)), cmp_rows))

    if plan.estimate:
        peak_stage = plan.estimate.peak_phase.split(":", 1)[0]
        names = [s.name for s in plan.stages]
        peak = plan.stage(peak_stage if peak_stage in names else names[0])
        spec, reward = stage_models(plan, peak)
        est = estimate(spec, peak.setup, reward)  # its terms, once
        data = estimate_dict(est, plan.model.resolved_from, plan.model.key, None)  # the verdict below keeps the margin
        out.append(f"[bold]{_t('estimate', lang)} ({peak_stage})[/bold]")
        out += [
            item
            for item in estimate_blocks(data)
            if not (isinstance(item, TableSpec) and item.title.startswith("fits on one of"))
            and not (isinstance(item, str) and item.startswith("[dim]paged optimizer states"))
        ]  # said with its placement below
        margin_note, paged_note, thumb_note = (plan.estimate.note(name, lang) for name in ("margin_note", "paged_note", "rule_of_thumb_note"))
        if margin_note:
            colour = "green" if plan.estimate.fits else "red"
            out.append(f"[{colour}]{_escape(margin_note)}[/{colour}] ({hw.gpu_name}, {hw.memory_gib:g} GiB)")
        if paged_note:
            out.append(f"[yellow]{_escape(paged_note)}[/yellow]")
        if thumb_note:
            out.append(f"[bold]{_t('thumb', lang)}[/bold]: {_escape(thumb_note)}")

    out += time_blocks(plan, lang)  # after the memory estimate: the stages' hours and dollars
    if plan.warnings:
        out.append(f"[bold yellow]{_t('warnings', lang)}[/bold yellow]")
        out += [f"  [yellow]![/yellow] {_escape(w.text(lang))}" for w in plan.warnings]
    return out


def _priced(plan, stage):
    """A stage's memory for a plan that did not keep it (saved before plans kept StageMemory): priced again."""
    from estimators import estimate

    from .advice.summary import judged_memory
    from .planning import stage_models

    spec, reward = stage_models(plan, stage)
    return judged_memory(plan, estimate(spec, stage.setup, reward))


def time_blocks(plan, lang: str = "en") -> list:
    """Each stage's predicted hours and dollars on the plan's GPUs (plan.time, estimators/time_plan.py), the total,
    and what the figures assume (data size, price)."""
    from .compact_table import CompactSpec
    from .plan_priced import in_lang

    t = plan.time
    if t is None:
        return [f"[dim]{_t('no_time', lang)}[/dim]"] if plan.estimate is not None and plan.estimate.fits else []

    def usd(v):
        return "-" if v is None else f"${v:,.2f}"

    rows: list[tuple[str, ...]] = [
        (s.name, f"{s.tokens_per_s_per_gpu:,.0f}", f"{s.hours:.1f} h", f"{s.hours_low:.1f}-{s.hours_high:.1f} h", usd(s.usd)) for s in t.stages
    ]
    if len(t.stages) > 1:
        rows.append((f"[bold]{_t('total', lang)}[/bold]", "", f"[bold]{t.hours:.1f} h[/bold]", f"{t.hours_low:.1f}-{t.hours_high:.1f} h", usd(t.usd)))
    keys = ("stage", "tps", "hours", "range", "cost")
    table = CompactSpec(_t("time", lang), tuple(_t(key, lang) for key in keys), tuple(key != "stage" for key in keys), rows)
    from .advice.timecost import USER_PRICE, time_words

    source = _t("user_price", lang) if t.price_source == USER_PRICE else t.price_source
    price = (
        f"${t.price_usd_per_gpu_hour:g}/GPU-hour ({source})"
        if t.price_usd_per_gpu_hour is not None
        else ("가격 없음" if lang == "ko" else "no price")
    )
    return [table, f"[dim]{_escape(time_words(t, lang))}; {_escape(in_lang(t.assumption, t.assumption_ko, lang))}; {_escape(price)}[/dim]"]


def _stage_table(lang: str, rows: list):
    """The stages table, compact enough for an 80-column terminal in both languages: a header rule and no
    vertical lines, two spaces between columns (UI["stages_legend"] explains the short headers); if the terminal
    is narrower still, cells fold instead of ending in an ellipsis."""
    from .compact_table import CompactSpec

    keys = ("stage", "data", "inputs", "batch", "seq", "lr", "epochs", "card", "fits")
    return CompactSpec(
        _t("stages", lang), tuple(_t(key, lang) for key in keys), tuple(key in ("batch", "seq", "epochs", "card") for key in keys), rows
    )


def _lr(value: float) -> str:
    """A learning rate in short exponent form: 2e-04, 1.41e-05 (up to six significant digits, as :g)."""
    mantissa, exponent = f"{value:.5e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def _escape(text: str) -> str:
    from .plaintext import escape  # rich.markup.escape, without importing rich

    return escape(text)


def print_plan(plan, answers, lang: str = "en", console=None) -> None:
    """The plan on `console`, else on stdout: there, when it is not a terminal, as plain text without rich
    (advisor/plaintext.py; what only rich can lay out, Korean text for one, still goes to rich)."""
    from .render import print_blocks

    print_blocks(plan_blocks(plan, answers, lang), console)
