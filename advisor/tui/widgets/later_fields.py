"""The question controls the first step does not show (widgets/question.py has the rest): the checkboxes of a
several-choice question (the data step) and the GPU field (the resources step). Imported when a later step composes
them: each Textual widget class costs its module a millisecond to create, and the first frame needs none of these."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Checkbox, Input, Select

from ..i18n import t
from . import compact
from .question import QuestionField, _Tall


class ChoiceBox(_Tall, Checkbox):
    pass


class CheckList(Vertical):
    """Several choices: one checkbox per choice (label and explanation wrap), Up/Down move, Space toggles."""

    BINDINGS = [Binding("down", "move(1)", show=False), Binding("up", "move(-1)", show=False)]

    def action_move(self, step: int) -> None:
        boxes = list(self.query(Checkbox))
        focused = self.screen.focused
        i = boxes.index(focused) if focused in boxes else -1
        boxes[(i + step) % len(boxes)].focus()



class GpuField(QuestionField):
    """`gpu`: pick a card from the GPU table, or type its memory (e.g. 24GB)."""

    def control(self) -> ComposeResult:
        from estimators.gpus import gpus

        table = gpus()
        value = self.state.raw.get("gpu") or ""
        options = [(f"{g.name} ({g.memory_gib:g} GiB)", g.id) for g in table.values()]
        in_table = value in table
        yield Select(options, prompt=t("gpu_pick", self.lang), value=value if in_table else Select.NULL, id="q-gpu", compact=True)
        yield compact(Input(value="" if in_table else value, placeholder=t("gpu_typed", self.lang), id="q-gpu-memory"))

    @on(Select.Changed, "#q-gpu")
    def _picked(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is Select.NULL:
            return
        memory = self.query_one("#q-gpu-memory", Input)
        if memory.value:
            with memory.prevent(Input.Changed):
                memory.value = ""
        self.store(event.value)

    @on(Input.Changed, "#q-gpu-memory")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value != event.input.value or not event.value.strip():
            return
        select = self.query_one("#q-gpu", Select)
        if select.value is not Select.NULL:
            with select.prevent(Select.Changed):
                select.clear()
        self.store(event.value)
