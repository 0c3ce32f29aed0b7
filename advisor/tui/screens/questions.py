"""Steps 1-3: the questions, rendered from their declarations (advisor.questions) by widgets.question."""

from __future__ import annotations

from textual.app import ComposeResult

from ..i18n import t
from ..state import questions_for
from ..widgets.question import AnswerChanged, field_for
from .base import StepScreen


class QuestionsScreen(StepScreen):
    def body(self) -> ComposeResult:
        for q in questions_for(self.STEP):
            yield field_for(q, self.state)

    # The first control has the focus as soon as the screen is composed (before any key reaches it).
    AUTO_FOCUS = "#body RadioSet, #body CheckList Checkbox, #body Select, #body Input, #body Checkbox"

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


class DataScreen(QuestionsScreen):
    STEP = "data"


class ResourcesScreen(QuestionsScreen):
    STEP = "resources"
