"""GRPO's reward as a user gives it (a flag, a wizard answer): which stage field it sets. Standard library only, so
checking an answer does not load the plan models (advisor/planning.py assign_reward puts it on the stages)."""

from __future__ import annotations

from .errors import AdvisorError
from .paths import absolute

REWARD_KINDS = ("reward_check", "reward_fn", "reward_model")  # the Stage fields (advisor/plan.py), at most one set


def reward_parts(text: str | None) -> dict[str, str]:
    """GRPO's reward as the user typed it, split into the stage field it sets: `check:FIELD` or a bare field name
    (exact match with that dataset column), `FILE.py:FUNCTION` (their Python function, TRL's signature), or
    `model:PATH` / a folder / a hub id (a reward model scoring the completions). Raises on a malformed function."""
    text = (text or "").strip()
    if not text:
        return {}
    kind, sep, rest = text.partition(":")
    if sep and kind in ("check", "fn", "model"):
        kind, value = {"check": "reward_check", "fn": "reward_fn", "model": "reward_model"}[kind], rest.strip()
    elif ".py:" in text:
        kind, value = "reward_fn", text
    elif text.isidentifier():
        kind, value = "reward_check", text
    else:
        kind, value = "reward_model", text
    if kind == "reward_fn":
        path, sep, name = value.rpartition(":")
        if not sep or not path.endswith(".py") or not name.isidentifier():
            raise AdvisorError(f"reward function {value!r}: write it as FILE.py:FUNCTION, e.g. rewards.py:score")
        value = f"{absolute(path)}:{name}"
    elif kind == "reward_model":
        value = absolute(value)
    elif not value.isidentifier():
        raise AdvisorError(f"reward check {value!r}: name the dataset field the answer must equal, e.g. check:answer")
    return {kind: value}
