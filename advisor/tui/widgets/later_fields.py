"""The question controls the first step does not show (widgets/question.py has the rest): the checkboxes of a
several-choice question (the data step) and the GPU field (the resources step). Imported when a later step composes
them: each Textual widget class costs its module a millisecond to create, and the first frame needs none of these."""

from __future__ import annotations

from typing import Any, Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Checkbox, Input, Select

from ..i18n import t
from . import compact
from .question import QuestionField, choice_prompt


class _Tall:
    """Toggle buttons keep one line of their label in Textual; these keep every line (and wrap them)."""

    # what the mixin reads from the ToggleButton it is mixed into (declared only: Textual's types are not read)
    label: Any
    styles: Any
    render: Callable[[], Any]

    def _make_label(self, label) -> Content:
        return Content.from_text(label).rstrip()

    _height_for: tuple = (None, None, 0)  # (width, label, height): layout asks several times per frame

    def get_content_height(self, container, viewport, width: int) -> int:
        seen_width, seen_label, height = self._height_for
        if seen_width != width or seen_label is not self.label:  # checked or not, the label wraps the same
            height = max(1, self.render().get_height(self.styles, width))
            self._height_for = (width, self.label, height)
        return height


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


class CheckListField(QuestionField):
    """A several-choice question (the data step): one checkbox per choice, the answer is the ones ticked."""

    def control(self) -> ComposeResult:
        q, cid = self.q, f"q-{self.q.id}"
        chosen = set(self.state.value(q) or ())
        with CheckList(id=cid):
            for c in q.choices:
                yield compact(ChoiceBox(choice_prompt(q, c.value, self.lang), value=c.value in chosen, id=f"{cid}-{c.value}"))

    def checked_answer(self, event: Checkbox.Changed) -> list[str]:
        boxes = self.query_one(CheckList).query(Checkbox)
        picked = {(box.id or "").removeprefix(f"q-{self.q.id}-") for box in boxes if box.value}
        return [c.value for c in self.q.choices if c.value in picked]


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
