"""Issue 13 item 11: the checkable-tasks route asks for GRPO's reward (a dataset field to check, the user's function,
or a reward model), puts it on the plan's GRPO stage, and says loudly when the script's placeholder reward is used."""

from __future__ import annotations

import pytest

from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.errors import AdvisorError
from advisor.rewards import reward_parts
from advisor.tui.state import questions_for

GRPO = dict(goal="reasoning", data="reward_signal", gpu="a100-80gb", model="tiny")


def _grpo_stage(plan):
    return next(s for s in plan.stages if s.setup.train == "grpo")


def test_the_wizard_asks_for_the_reward_on_the_data_step():
    assert "reward" in [q.id for q in questions_for("data")]


@pytest.mark.parametrize(
    "typed, field, value",
    [
        ("check:answer", "reward_check", "answer"),
        ("answer", "reward_check", "answer"),
        ("rewards.py:score", "reward_fn", "rewards.py:score"),
        ("OpenAssistant/reward-model-deberta", "reward_model", "OpenAssistant/reward-model-deberta"),
        ("model:rm", "reward_model", "rm"),
    ],
)
def test_a_given_reward_goes_on_the_grpo_stage(typed, field, value):
    plan = advise(Answers.from_mapping({**GRPO, "reward": typed}))
    stage = _grpo_stage(plan)
    assert getattr(stage, field) == value
    assert not any("PLACEHOLDER" in w.en for w in plan.warnings)


def test_no_reward_is_said_loudly_in_both_languages():
    plan = advise(Answers.from_mapping(GRPO))
    stage = _grpo_stage(plan)
    assert not (stage.reward_check or stage.reward_fn or stage.reward_model)
    warning = next(w for w in plan.warnings if "PLACEHOLDER length reward" in w.en)
    assert "check:answer" in warning.en and "임시 길이 보상" in warning.ko


def test_a_reward_for_a_plan_without_grpo_is_said_not_used():
    plan = advise(Answers.from_mapping(dict(goal="chat_format", data="instruction_pairs", gpu="a100-80gb", model="tiny", reward="answer")))
    assert plan.pipeline == "sft" and any("is not used" in w.en for w in plan.warnings)


def test_a_malformed_reward_function_is_one_clear_error():
    with pytest.raises(AdvisorError, match="FILE.py:FUNCTION"):
        Answers.from_mapping({**GRPO, "reward": "fn:score"})
    assert reward_parts("") == {}
