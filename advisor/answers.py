"""The user's answers to the questions declared in advisor/questions.py: flags in, validated `Answers` out.

Answers from flags (`add_question_flags`, `answers_from_args`), widgets or a TOML file (`load_answers`) all go
through `Answers.from_mapping`, so each front end gets the same validation and the same one-line errors. Kept apart
from the questions table, which the wizard's first screen reads without needing any of this.

Standard library only (the estimator's GPU table is pure Python): importing this never loads pydantic or torch.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import AdvisorError
from .question_types import Question
from .questions import QUESTIONS


@dataclass(frozen=True)
class Answers:
    """The user's answers, validated. Field names are the question ids (a test keeps them in step)."""

    goal: str
    data: tuple[str, ...]
    gpu: str
    data_count: int | None = None
    priority: str = "quality"
    gpu_count: int = 1
    time_budget_hours: float | None = None
    budget_usd: float | None = None
    price: float | None = None  # USD per GPU-hour; None: the GPU table's on-demand price (advisor/advice/timecost.py)
    reward: str | None = None  # GRPO's reward (advisor/planning.py reward_parts): check:FIELD, FILE.py:FUNCTION or a model
    model: str = "7b"
    seq_len: int = 2048
    extra: dict = field(default_factory=dict, compare=False)  # never set by from_mapping; room for front ends

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], origin: str = "answers") -> "Answers":
        """Validate a mapping of question id -> raw value (from flags, widgets or TOML); '-' in keys is accepted."""
        known = {q.id: q for q in QUESTIONS}
        given = given_answers(data, origin)
        values: dict[str, Any] = {}
        missing = []
        for qid, q in known.items():
            value = q.parse(given.get(qid))
            if value is None:
                value = q.default
            if value is None and q.required:
                hint = f" (one of {', '.join(q.values)})" if q.choices else ""
                missing.append(f"{q.flag}{hint}")
            values[qid] = value
        if missing:
            raise AdvisorError(f"{origin}: missing answer(s): {'; '.join(missing)}")
        _check_gpu(values["gpu"])
        _check_reward(values["reward"])
        return cls(**values)

    def to_data(self) -> dict:
        """Plain data for the Plan and TOML: unanswered (None) answers are left out."""
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def with_(self, **changes) -> "Answers":
        return Answers.from_mapping(self.to_data() | changes)


def given_answers(data: Mapping[str, Any], origin: str = "answers") -> dict[str, Any]:
    """`data` keyed by question id ('-' in keys accepted); an unknown id is an error naming the valid ones."""
    if not isinstance(data, Mapping):
        raise AdvisorError(f"{origin}: expected a table of answers, got {type(data).__name__}")
    given = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(given) - {q.id for q in QUESTIONS})
    if unknown:
        raise AdvisorError(f"{origin}: unknown answer(s) {', '.join(unknown)}; valid: {', '.join(q.id for q in QUESTIONS)}")
    return given


def _check_gpu(text: str) -> None:
    from estimators.errors import EstimateError
    from estimators.gpus import find_gpu

    try:
        find_gpu(text)
    except EstimateError as exc:
        raise AdvisorError(f"--gpu: {exc}") from None


def _check_reward(text: str | None) -> None:
    from .rewards import reward_parts  # one reading of the reward, here and when the plan is built

    try:
        reward_parts(text)
    except AdvisorError as exc:
        raise AdvisorError(f"--reward: {exc}") from None


def load_answers(path: Path) -> dict:
    """The raw answers of a TOML file (keys: question ids); validate with Answers.from_mapping."""
    from .tomlfile import read_toml

    data = read_toml(path, "answers file")
    nested = data.get("answers")  # `[answers]` table, or the answers at the top level
    return nested if isinstance(nested, dict) else data


def _flag_help(q: Question) -> str:
    text = q.help_en
    if q.choices:
        sep = "; several comma-separated" if q.multiple else ""
        text += f" One of: {', '.join(q.values)}{sep}."
    if q.default is not None:
        text += f" (default: {q.default})"
    elif q.required:
        text += " (required)"
    return text.replace("%", "%%")


def add_question_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per question. Values are validated by Answers.from_mapping, so errors list the valid choices."""
    group = parser.add_argument_group("answers (what the wizard asks)")
    for q in QUESTIONS:
        metavar = "{" + ",".join(q.values) + "}" if q.choices else q.metavar or q.id.upper()
        if q.kind == "bool":
            group.add_argument(q.flag, dest=q.id, action=argparse.BooleanOptionalAction, default=None, help=_flag_help(q))
        else:
            group.add_argument(q.flag, dest=q.id, default=None, metavar=metavar, help=_flag_help(q))


def answers_from_args(args: argparse.Namespace, base: Mapping[str, Any] | None = None, origin: str = "flags") -> Answers:
    """Answers from parsed flags; flags given override `base` (e.g. an answers file)."""
    raw = dict(base or {})
    for q in QUESTIONS:
        value = getattr(args, q.id, None)
        if value is not None:
            raw[q.id] = value
    return Answers.from_mapping(raw, origin=origin)
