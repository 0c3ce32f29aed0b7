"""Which field asks a question: the declaration's kind and id pick it (advisor/questions.py declares each question
once). The fields of later steps (widgets/later_fields.py) are imported when a step composes one, so the first frame
creates none of their widget classes."""

from __future__ import annotations

from ...question_types import Question
from ..state import WizardState
from .question import ModelField, QuestionField


def field_for(q: Question, state: WizardState) -> QuestionField:
    if q.id == "gpu":  # asked on the resources step
        from .later_fields import GpuField

        return GpuField(q, state)
    if q.kind == "choice" and q.multiple:  # the data step
        from .later_fields import CheckListField

        return CheckListField(q, state)
    return {"model": ModelField}.get(q.id, QuestionField)(q, state)
