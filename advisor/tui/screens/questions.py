"""Steps 1-3: the questions, rendered from their declarations (advisor.questions) by widgets.question. The goal
step's screen is here; the data and resources steps' screens, with more of their own, are in screens/data.py and
screens/resources.py, imported when they are first shown (the first frame creates none of their classes)."""

from __future__ import annotations

from textual.app import ComposeResult

from ..i18n import t
from ..state import questions_for
from ..widgets.fields import field_for
from ..widgets.question import AnswerChanged
from .base import StepScreen


class QuestionsScreen(StepScreen):
    def body(self) -> ComposeResult:
        for q in questions_for(self.STEP):
            yield field_for(q, self.state)

    # The first control has the focus as soon as the screen is mounted (before any key reaches it), without the
    # scroll Textual's auto-focus may make to centre it: that would hide the first question's label above it.
    FIRST_CONTROL = "#body ChoiceSet, #body CheckList Checkbox, #body Select, #body Input, #body Checkbox"
    AUTO_FOCUS = ""

    def on_mount(self) -> None:
        super().on_mount()
        first = next((w for w in self.query(self.FIRST_CONTROL) if w.focusable), None)
        if first is not None:
            self.set_focus(first, scroll_visible=False)

    def problems(self) -> list[str]:
        return self.state.problems(self.STEP)

    def on_answer_changed(self, message: AnswerChanged) -> None:
        problems = self.problems()
        if not problems:
            self.set_status("")

    def show_problems(self) -> None:
        self.set_status(t("fix_first", self.lang, items="; ".join(self.problems())), error=True)


class GoalScreen(QuestionsScreen):
    STEP = "goal"
