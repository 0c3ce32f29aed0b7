"""Step 5: one stage's memory as a stacked bar against the card, fits or by how much not, what-if controls
(Setup knobs declared in advisor.knobs) that re-estimate at once, and "make it fit" (estimators.fit's cheapest
fix, searched in a worker)."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.markup import escape
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Select, Static

from ...knobs import KNOBS
from ..i18n import KNOB_LABELS, fix_text, pick, t
from ..plan_calls import capped_knob, cheapest_fix, knob_setup, memory_view, with_stage_setup
from ..state import WHATIF_KNOBS
from ..widgets.memory_bar import MemoryBar
from .base import StepScreen

KNOB_BY_FIELD = {k.field: k for k in KNOBS}


class MemoryScreen(StepScreen):
    STEP = "memory"
    BINDINGS = [Binding("ctrl+f", "make_fit", "Make it fit", priority=True)]
    AUTO_FOCUS = "#whatif Input"  # micro-batch: type a number and the bar follows

    class Fixed(Message):
        """The worker's answer: the fixed plan (None: nothing to fix / nothing helps) and what it changed."""

        def __init__(self, plan, labels: list[str], already: bool) -> None:
            super().__init__()
            self.plan, self.labels, self.already = plan, labels, already

    def body(self) -> ComposeResult:
        plan = self.state.planned()
        if len(plan.stages) > 1:
            with Horizontal(id="stage-row"):
                yield Label(f"{t('stage', self.lang)}:", classes="knob-label")
                with RadioSet(id="stage", compact=True):
                    for s in plan.stages:
                        yield RadioButton(s.name, value=s.name == self.state.stage, id=f"stage-{s.name}", compact=True)
        yield MemoryBar(self.lang, id="bar")
        yield Static("", id="margin-note")
        yield Static("", id="time-note")
        yield Label(t("whatif", self.lang), classes="section")
        with Grid(id="whatif"):
            for field_name in WHATIF_KNOBS:
                knob = KNOB_BY_FIELD[field_name]
                with Horizontal(classes="knob"):
                    yield Label(pick(KNOB_LABELS[field_name], self.lang), classes="knob-label")
                    yield self.knob_control(knob)
        with Horizontal(id="fix-row"):
            yield Button(f"{t('make_fit', self.lang)} (^f)", id="make-fit", compact=True, variant="warning")
            yield Static("", id="fix-note")

    def knob_control(self, knob):
        cid = f"knob-{knob.field}"
        setup = self.setup
        value = getattr(setup, knob.field)
        tip = knob.text(self.lang)
        if knob.kind is bool:
            current = setup.checkpointing if knob.field == "grad_ckpt" else bool(value)
            return Checkbox("", value=current, id=cid, compact=True, tooltip=tip)
        if knob.choices:
            return Select([(c, c) for c in knob.choices], value=value, allow_blank=False, id=cid, compact=True, tooltip=tip)
        return Input(str(value), type="integer" if knob.kind is int else "number", id=cid, compact=True, tooltip=tip, select_on_focus=False)

    @property
    def setup(self):
        return self.state.planned().stage(self.state.shown_stage()).setup

    def on_mount(self) -> None:
        self._status: bool | None = None  # the fits-verdict a make-it-fit status ("already fits", "nothing helps") was about
        self.refresh_view()
        if self.state.notes:
            self.query_one("#fix-note", Static).update(escape(self.state.notes[-1]))

    # ---- drawing ------------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        """Re-estimate the shown stage and redraw the bar and verdict (well under a millisecond of estimating)."""
        view = memory_view(self.state.planned(), self.state.shown_stage())
        bar = self.query_one("#bar", MemoryBar)
        bar.show(view)
        bar.set_class(view.fits, "-fits")
        bar.set_class(not view.fits, "-over")
        self.query_one("#margin-note", Static).update(escape(margin_words(view, self.lang)))
        self.query_one("#time-note", Static).update(escape(self.time_words()))
        if getattr(self, "_status", None) is not None and self._status != view.fits:
            # a status about the run as it was ("it already fits") must not outlive a what-if that changed it
            self._status = None
            note = self.query_one("#fix-note", Static)
            if view.fits:
                note.update("")
            else:
                over = t("no_fit", self.lang, gpu=view.gpu, gib=round(-view.headroom / 2**30, 2))
                note.update(escape(f"{over} · {t('make_fit', self.lang)} (^f)"))

    def time_words(self) -> str:
        """The shown stage's predicted time and cost as the what-ifs set it up (issue 16); "" when not predictable."""
        from ...advice.timecost import stage_time_words
        from ...errors import AdvisorError
        from ..plan_calls import model_spec_of

        plan = self.state.planned()
        try:
            words = stage_time_words(plan, model_spec_of(plan), self.state.shown_stage(), self.lang)
        except (ValueError, AdvisorError):  # a what-if the time model cannot price: the memory verdict still shows
            return ""
        return t("time_line", self.lang, text=words) if words else ""

    def sync_controls(self) -> None:
        """Show the stage's knobs (after a stage switch, a fix, or a knob that moved another one)."""
        setup = self.setup
        for field_name in WHATIF_KNOBS:
            widget = self.query_one(f"#knob-{field_name}")
            value = getattr(setup, field_name)
            with widget.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
                if isinstance(widget, Checkbox):
                    widget.value = setup.checkpointing if field_name == "grad_ckpt" else bool(value)
                elif isinstance(widget, Select):
                    widget.value = value
                elif widget.value.strip() != str(value):
                    widget.value = str(value)
            widget.set_class(False, "-invalid")

    # ---- what-if ------------------------------------------------------------------------------------
    def apply_knob(self, field_name: str, value: Any) -> None:
        knob = KNOB_BY_FIELD[field_name]
        widget = self.query_one(f"#knob-{field_name}")
        try:
            if knob.kind is int:
                value = int(value)
            elif knob.kind is float:
                value = float(value)
            value, capped = capped_knob(self.state.planned(), field_name, value, self.lang)  # as advise plans it
            if value == getattr(self.setup, field_name) and field_name != "grad_ckpt":
                self.set_status(capped)
                self.sync_controls()
                return
            new_setup = knob_setup(self.setup, field_name, value)
            self.state.plan = with_stage_setup(self.state.planned(), self.state.shown_stage(), new_setup)
        except (ValueError, TypeError) as exc:  # EstimateError is a ValueError: one line, the valid choices
            widget.set_class(True, "-invalid")
            self.set_status(f"{pick(KNOB_LABELS[field_name], self.lang)}: {exc}" if str(exc) else "", error=True)
            return
        widget.set_class(False, "-invalid")
        self.set_status(capped)
        self.sync_controls()
        self.refresh_view()

    @on(Input.Changed, "#whatif Input")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        # A Changed queued before the user's keys (e.g. the initial value's) must not undo what they typed since.
        if event.value != event.input.value:
            return
        if event.value.strip():
            self.apply_knob(event.input.id.removeprefix("knob-"), event.value)

    @on(Select.Changed, "#whatif Select")
    def _picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value != event.select.value:  # stale: the user picked again since
            return
        self.apply_knob(event.select.id.removeprefix("knob-"), event.value)

    @on(Checkbox.Changed, "#whatif Checkbox")
    def _toggled(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.apply_knob(event.checkbox.id.removeprefix("knob-"), event.value)

    @on(RadioSet.Changed, "#stage")
    def _stage(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.state.stage = self.state.planned().stages[event.index].name
        self.sync_controls()
        self.refresh_view()

    # ---- make it fit --------------------------------------------------------------------------------
    @on(Button.Pressed, "#make-fit")
    def _fit_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_make_fit()

    def action_make_fit(self) -> None:
        self.query_one("#fix-note", Static).update(t("fitting", self.lang))
        self.query_one("#make-fit", Button).disabled = True
        self.fix(self.state.planned(), self.state.shown_stage())

    @work(thread=True, exclusive=True, group="fit")
    def fix(self, plan, shown: str) -> None:
        """Every stage that does not fit gets the solver's cheapest fix, the shown stage first."""
        order = [shown] + [s.name for s in plan.stages if s.name != shown]
        labels: list[str] = []
        already = True
        for name in order:
            if memory_view(plan, name).fits:
                continue
            already = False
            fix = cheapest_fix(plan, name, self.state.batch_targets.get(name))
            if fix is None:
                self.post_message(self.Fixed(None, labels, False))
                return
            plan = with_stage_setup(plan, name, fix.setup)
            label, cost = fix_text(fix, self.lang)  # Korean built from the fix itself (advisor/tui/i18n.py)
            labels.append(t("fit_applied", self.lang, label=f"{name}: {label}", cost=cost))
        self.post_message(self.Fixed(plan if labels else None, labels, already))

    def on_memory_screen_fixed(self, message: Fixed) -> None:
        self.query_one("#make-fit", Button).disabled = False
        note = self.query_one("#fix-note", Static)
        if message.plan is not None:
            self.state.plan = message.plan
            self.state.notes.extend(message.labels)
            note.update(escape(" · ".join(message.labels)))
            self.sync_controls()
            self.refresh_view()
        elif message.already:
            note.update(t("fit_already", self.lang))
            self._status = True
        else:
            note.update(escape(t("fit_none", self.lang)))
            self._status = False


def margin_words(view, lang: str) -> str:
    """What the verdict keeps free besides the estimate, and where paged optimizer states live (both languages)."""
    parts = []
    if view.kept is not None and view.kept.total:
        parts.append(view.kept.describe(lang).removeprefix("after the ").removesuffix(" 후"))
    if view.paged is not None:
        parts.append(view.paged.describe(lang))
    return " · ".join(parts)
