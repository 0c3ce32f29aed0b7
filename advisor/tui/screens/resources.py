"""Step 3: the resource questions and the live quote of their plan (screens/questions.py has what the question
steps share)."""

from __future__ import annotations

from textual.app import ComposeResult

from ..state import questions_for
from ..widgets.fields import field_for
from ..widgets.question import AnswerChanged
from .questions import QuestionsScreen


class ResourcesScreen(QuestionsScreen):
    """The resource questions, with the live quote of the plan they give (widgets.plan_quote) under the GPU count:
    in view with the GPU and just above the time and money budgets it is weighed against."""

    STEP = "resources"
    QUOTE_AFTER = "gpu_count"

    def body(self) -> ComposeResult:
        from ..widgets.plan_quote import PlanQuote

        for q in questions_for(self.STEP):
            yield field_for(q, self.state)
            if q.id == self.QUOTE_AFTER:
                yield PlanQuote(self.state, self.lang, self.STEP, id="quote")

    def on_answer_changed(self, message: AnswerChanged) -> None:
        super().on_answer_changed(message)
        from ..widgets.plan_quote import PlanQuote

        self.query_one("#quote", PlanQuote).refresh_soon()
