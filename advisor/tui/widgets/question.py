"""One widget per question declaration (advisor.questions): the wizard owns none of the question text.

kind -> widget:  choice -> ChoiceSet (one: widgets/choices.py, drawn as a compact RadioSet) or a CheckList of
Checkboxes (several), each choice with its one-line explanation;  int / float / text -> Input;  bool -> Checkbox.
Two questions get a richer control over the same declaration:
`gpu` (the GPU table as a Select, or a typed memory size) and `model` (the parameter count as soon as it resolves).
Every change is parsed by the declaration (`Question.parse`) and stored in the app's WizardState at once, so
going back and forth keeps every answer. The fields the first step does not show (the GpuField, the checkboxes of a
several-choice question) are in widgets/later_fields.py; widgets/fields.py picks a question's field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content, Span
from textual.markup import escape
from textual.message import Message
from textual.widgets import Input, Static

from ...question_types import Question
from ..i18n import model_source, t
from ..state import WizardState
from . import compact
from .choices import ChoiceSet

if TYPE_CHECKING:
    from textual.widgets import Checkbox  # imported where a yes/no question makes one (no first-step question does)


def _display(value: Any) -> str:
    return "" if value is None else str(value)


def choice_prompt(q: Question, value: str, lang: str) -> Content:
    """The choice's label in bold, and under it its one-line explanation, dim: the Content the markup
    `[b]label[/b]\n    [dim]explain[/dim]` parses to, built without parsing it (a first screen shows six of them)."""
    c = q.choice(value)
    label, explain = c.text("label", lang), c.text("explain", lang)
    text = f"{label}\n    {explain}"
    return Content(text, [Span(0, len(label), "b"), Span(len(label) + 5, len(text), "dim")])


def field_heading(q: Question, lang: str) -> Content:
    """The question's label (bold, `$text-accent`; ` *` when it is required) and under it its help: one widget, where
    a Label and a Static under it drew the same two lines (the help's colour, `$text-muted`, is an `auto` colour that
    only the stylesheet resolves: it is the widget's, `.q-label` in advisor.tcss; the label line's span sets its own)."""
    label = f"{q.text('label', lang)}{' *' if q.required else ''}"
    return Content(f"{label}\n{q.text('help', lang)}", [Span(0, len(label), "bold $text-accent")])


class QuestionField(Vertical):
    """Its heading (label and help), the control for the question's kind, and its error line."""

    def __init__(self, q: Question, state: WizardState) -> None:
        super().__init__(id=f"field-{q.id}", classes=f"question kind-{q.kind}")
        self.q, self.state = q, state

    @property
    def lang(self) -> str:
        return self.state.lang

    def compose(self) -> ComposeResult:
        yield Static(field_heading(self.q, self.lang), classes="q-label")
        yield from self.control()
        error = self.state.errors.get(self.q.id, "")
        if error:  # else the line is mounted with the first error (one widget less to style and lay out per question)
            yield Static(escape(error), classes="q-error")

    def control(self) -> ComposeResult:
        q, value = self.q, self.state.value(self.q)
        cid = f"q-{q.id}"
        if q.kind == "choice":  # one of several (several of several: later_fields.CheckListField)
            yield ChoiceSet([(c.value, choice_prompt(q, c.value, self.lang)) for c in q.choices], value=value, id=cid)
        elif q.kind == "bool":
            from textual.widgets import Checkbox

            yield compact(Checkbox(escape(q.text("label", self.lang)), value=bool(value), id=cid))
        else:
            input_type = {"int": "integer", "float": "number"}.get(q.kind, "text")
            raw = self.state.raw.get(q.id)
            # A text Input has no validator (Input gives the number types theirs): it marks its value `-valid` as
            # the value is given in its constructor, which restyles the Input and its four component styles on the
            # spot, before its mount styles it anyway; given the class, that mark finds nothing to change.
            valid = "-valid" if input_type == "text" else None
            yield compact(
                Input(
                    value=_display(raw),
                    placeholder=_display(q.default),
                    type=input_type,
                    id=cid,
                    classes=valid,
                    valid_empty=True,
                    select_on_focus=False,
                )
            )

    # ---- changes -> state ----------------------------------------------------------------------------
    def store(self, raw: Any) -> None:
        error = self.state.set_answer(self.q.id, raw)
        lines = self.query_children(".q-error")
        if lines:
            line = lines.first(Static)
            line.update(escape(error or ""))
            line.display = bool(error)
        elif error:
            self.mount(Static(escape(error), classes="q-error"))  # last, under the control, as compose puts it
        self.post_message(AnswerChanged(self.q.id))

    @on(ChoiceSet.Changed)
    def _radio(self, event: ChoiceSet.Changed) -> None:
        event.stop()
        self.store(self.q.choices[event.index].value)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.store(self.checked_answer(event))

    def checked_answer(self, event: Checkbox.Changed) -> Any:
        """The answer a checkbox change gives: a yes/no question's box is the answer (later_fields.CheckListField
        reads all of its boxes)."""
        return event.value

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        if event.value != event.input.value:  # stale (e.g. the pre-filled value's): keep what was typed since
            return
        self.store(event.value)


class AnswerChanged(Message):
    def __init__(self, qid: str) -> None:
        super().__init__()
        self.qid = qid


class ModelField(QuestionField):
    """`model`: as typed, then what it resolved to and its parameter count (looked up in a worker)."""

    class Resolved(Message):
        def __init__(self, text: str, line: str, ok: bool) -> None:
            super().__init__()
            self.text, self.line, self.ok = text, line, ok

    def control(self) -> ComposeResult:
        yield from super().control()
        yield Static("", id="model-resolved", classes="q-note")

    asked: str | None = None  # the text last sent to the lookup

    def on_mount(self) -> None:
        # The lookup imports the planner (pydantic): started after the first frame, it does not hold up the paint
        text = self.asked = str(self.state.value(self.q) or "")
        self.app.after_first_frame(lambda: self.resolve(text))

    def store(self, raw: Any) -> None:
        super().store(raw)
        text = str(raw or self.q.default or "")
        if text == self.asked:  # the Input reporting the value it was given when mounted: that lookup is asked for
            return
        self.asked = text
        self.query_one("#model-resolved", Static).update(t("model_resolving", self.lang))
        self.resolve(text)

    @work(thread=True, exclusive=True, group="model")
    def resolve(self, text: str) -> None:
        """Slow on a cold start (the catalog, a config.json on disk): never on the UI thread."""
        if not text.strip():
            self.post_message(self.Resolved(text, "", False))
            return
        try:
            from ...planning import model_spec

            spec, ref = model_spec(text.strip())
            line = t("model_params", self.lang, name=ref.name, params=f"{ref.params_total:,}" if ref.params_total else "?")
            line += "  ·  " + t("model_from", self.lang, how=model_source(ref.resolved_from, self.lang))
            self.post_message(self.Resolved(text, line, True))
        except Exception as exc:  # EstimateError / AdvisorError: a one-line message for the user
            self.post_message(self.Resolved(text, str(exc), False))

    @on(Resolved)
    def _resolved(self, message: Resolved) -> None:
        current = self.query_one("#q-model", Input).value or str(self.q.default or "")
        if message.text.strip() != current.strip():
            return  # an older lookup finished after a newer keystroke
        note = self.query_one("#model-resolved", Static)
        note.set_class(not message.ok, "-error")
        note.update(escape(message.line))
        if message.ok:
            self.state.errors.pop("model", None)
        elif message.text.strip():
            self.state.errors["model"] = message.line  # Next stays on this step and says why
        self.post_message(AnswerChanged(self.q.id))
