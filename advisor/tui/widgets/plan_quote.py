"""The Resources step's live quote (issue 16): what these answers would be advised, and how long and how much it
takes on the chosen GPUs, so the time and money budgets are typed next to the figures they are weighed against.
The plan is computed in a worker a moment after the last change (typing a price does not plan on every key); it
is the Advice step's plan (WizardState.take_plan), so Next shows the advice without planning again."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from ...errors import AdvisorError
from ..i18n import t
from ..plan_calls import plan_or_error
from ..state import WizardState


def quote_text(plan, lang: str) -> str:
    """The quote of `plan` in `lang`: "With these answers: RLHF with LoRA · 3 stages, ~70.4 h (...), ~$126 on 1x ..."."""
    from ...advice.timecost import time_words
    from ..screens.recommend import method_label

    pipeline, adaptation = method_label(plan.pipeline, plan.adaptation, lang)
    if plan.time is None:
        text = t("quote_no_time", lang, gpu=plan.hardware.gpu_name or plan.hardware.gpu)
    else:
        text = time_words(plan.time, lang)
    return t("quote_line", lang, pipeline=pipeline, adaptation=adaptation, text=text)


class PlanQuote(Static):
    DELAY_S = 0.4  # after the last answer change
    # The shortest timer: Textual 8's Timer divides by its interval when it fires late (textual/timer.py:163,
    # `int((now - start) / _interval + 1)`), so a 0-second set_timer raised ZeroDivisionError under load (the first
    # screen's quote, a step change while the loop was busy) and closed the wizard.
    SOON_S = 0.001

    class Quoted(Message):
        def __init__(self, plan, key: tuple, error: str = "") -> None:
            super().__init__()
            self.plan, self.key, self.error = plan, key, error

    def __init__(self, state: WizardState, lang: str, step: str, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.state, self.lang, self.step = state, lang, step
        self._timer: Timer | None = None

    def on_mount(self) -> None:
        self.refresh_soon(0.0)

    def refresh_soon(self, delay: float | None = None) -> None:
        """Plan again `delay` seconds from now, unless another change comes first."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(max(self.SOON_S, self.DELAY_S if delay is None else delay), self._start)

    def _start(self) -> None:
        if self.state.plan_is_current():
            self.show(self.state.plan)
            return
        try:
            key = self.state.answers_key()
        except AdvisorError:  # an answer that does not parse: the status line says which on Next
            self.update("")
            return
        if self.state.problems(self.step):
            self.update("")
            return
        self.update(Text(t("quote_wait", self.lang), style="dim"))
        self._plan(self.state.clean_answers(), key)

    @work(thread=True, exclusive=True, group="quote")
    def _plan(self, raw: dict, key: tuple) -> None:
        plan, error = plan_or_error(raw)
        self.post_message(self.Quoted(plan, key, error))

    def on_plan_quote_quoted(self, message: Quoted) -> None:
        try:
            current = message.key == self.state.answers_key()
        except AdvisorError:
            current = False
        if not current:  # answered again meanwhile: that change has planned (or will) on its own
            return
        if self.state.plan_is_current():  # the Advice step planned these answers first; later steps may have changed it
            self.show(self.state.plan)
            return
        if message.plan is None:
            self.update(Text(message.error, style="red"))
            return
        self.state.take_plan(message.plan, message.key)
        self.show(message.plan)

    def show(self, plan) -> None:
        self.update(Text(quote_text(plan, self.lang)))
