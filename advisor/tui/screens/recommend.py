"""Step 4: what advise() recommends, why (each reason cites its rule), the alternatives and why not, and the
document's RLHF-vs-DPO table when the advice says the choice was close. The plan is computed in a worker."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static

from ...errors import AdvisorError
from ..i18n import t
from ..plan_calls import plan_or_error
from ..state import cite
from .base import StepScreen


def method_label(pipeline: str, adaptation: str, lang: str) -> tuple[str, str]:
    """The pipeline's and the adaptation's names as `lang` shows them: ("SFT", "QLoRA")."""
    from ...names import ADAPTATION_NAME, ADAPTATION_NAME_KO, PIPELINE_NAME

    adapt = (ADAPTATION_NAME_KO if lang == "ko" else ADAPTATION_NAME).get(adaptation, adaptation)
    return PIPELINE_NAME.get(pipeline, pipeline.upper()), adapt


def _say(item, lang: str, field: str = "") -> str:
    """The lang text of a Reason (en/ko) or Alternative (why_not_en/why_not_ko); English when Korean is empty."""
    from ...plan_priced import in_lang

    return in_lang(getattr(item, f"{field}en"), getattr(item, f"{field}ko"), lang)


def advice_renderable(plan, lang: str):
    from ... import rules
    from ...advice.rows import comparison_close

    pipeline, adapt = method_label(plan.pipeline, plan.adaptation, lang)
    parts: list = []
    head = Text(t("recommend_head", lang, pipeline=pipeline, adaptation=adapt), style="bold")
    parts.append(head)
    stages = " → ".join(
        t("stage_brief", lang, name=s.name, mb=s.setup.micro_batch, accum=s.setup.grad_accum, seq=s.setup.seq_len) for s in plan.stages
    )
    parts.append(Text(f"{t('stages', lang)}: {stages}", style="dim"))
    est = plan.estimate
    if est is not None:
        line = Text(t("estimate_line", lang, gib=est.device_gib, cap=plan.hardware.memory_gib))
        line.append("  ")
        if est.fits:
            line.append("✓ " + t("fits", lang, gpu=plan.hardware.gpu_name or plan.hardware.gpu, gib=est.headroom_gib), style="green")
        else:
            line.append("✗ " + t("no_fit", lang, gpu=plan.hardware.gpu_name or plan.hardware.gpu, gib=-est.headroom_gib), style="bold red")
        parts.append(line)
        if est.margin_note:  # what the verdict kept free (estimate error, the display, --margin)
            parts.append(Text(est.note("margin_note", lang), style="dim"))
        if est.paged_note:  # paged optimizer states: outside the figure above, in unified memory
            parts.append(Text(est.note("paged_note", lang), style="yellow"))
    if getattr(plan, "time", None) is not None:  # issue 16: the time model's hours and dollars on the user's GPUs
        from ...advice.timecost import time_words
        from ...plan_priced import in_lang

        parts.append(Text(t("time_line", lang, text=time_words(plan.time, lang))))
        parts.append(Text(in_lang(plan.time.assumption, plan.time.assumption_ko, lang), style="dim"))
    parts.append(Text(""))
    parts.append(Text(t("why", lang), style="bold underline"))
    for r in plan.reasons:
        item = Text("• ")
        item.append(_say(r, lang))
        item.append(f"  [{cite(r.rule)}]", style="dim cyan")
        parts.append(item)
    if plan.alternatives:
        parts.append(Text(""))
        parts.append(Text(t("alternatives", lang), style="bold underline"))
        for a in plan.alternatives:
            name = method_label(a.method, "", lang)[0] if a.method not in ("full", "lora", "qlora") else method_label("", a.method, lang)[1]
            item = Text("✗ ", style="red")
            item.append(name, style="bold")
            item.append(" — " + _say(a, lang, "why_not_"))
            if a.rule:
                item.append(f"  [{cite(a.rule)}]", style="dim cyan")
            parts.append(item)
    if comparison_close(plan):
        parts.append(Text(""))
        table = Table(t("compare_item", lang), "RLHF", "DPO", title=t("compare", lang), title_justify="left", expand=True)
        for row in rules.rlhf_vs_dpo():
            table.add_row(rules.text(row, "label", lang), rules.text(row, "rlhf", lang), rules.text(row, "dpo", lang))
        parts.append(table)
    if plan.warnings:
        parts.append(Text(""))
        parts.append(Text(t("warnings", lang), style="bold underline"))
        for w in plan.warnings:
            parts.append(Text(f"⚠ {w.text(lang)}", style="yellow"))
    if est is not None and est.rule_of_thumb_note:
        parts.append(Text(""))
        parts.append(Text(est.note("rule_of_thumb_note", lang), style="dim"))
    parts.append(Text(""))
    parts.append(Text(t("glossary_hint", lang), style="dim italic"))
    return Group(*parts)


class RecommendScreen(StepScreen):
    STEP = "recommend"

    class Planned(Message):
        def __init__(self, plan, key: tuple, error: str = "") -> None:
            super().__init__()
            self.plan, self.key, self.error = plan, key, error

    def body(self) -> ComposeResult:
        yield Static(t("thinking", self.lang), id="advice")

    AUTO_FOCUS = "#body"  # arrow keys and Page Up/Down scroll the advice

    def on_mount(self) -> None:
        if self.state.plan_is_current():
            self.show(self.state.plan)
            return
        try:
            key = self.state.answers_key()
        except AdvisorError as exc:
            self.show_error(str(exc))
            return
        self.advise(self.state.clean_answers(), key)

    @work(thread=True, exclusive=True, group="advise")
    def advise(self, raw: dict, key: tuple) -> None:
        plan, error = plan_or_error(raw)
        self.post_message(self.Planned(plan, key, error))

    def on_recommend_screen_planned(self, message: Planned) -> None:
        if message.plan is None:
            self.show_error(message.error)
            return
        self.state.take_plan(message.plan, message.key)
        self.show(message.plan)

    def show(self, plan) -> None:
        self.query_one("#advice", Static).update(advice_renderable(plan, self.lang))
        self.set_status("")

    def show_error(self, error: str) -> None:
        self.query_one("#advice", Static).update(Text(error, style="bold red"))
        self.set_status(error, error=True)

    def problems(self) -> list[str]:
        if not self.state.plan_is_current():
            return [t("thinking", self.lang)]
        return []
