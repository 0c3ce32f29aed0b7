"""Issue 14 §1: the §6 table is the decision. Each goal's row in rules/selection.toml names the methods and
adaptations the advice may pick; editing a copy of a row changes the advice, and the wizard's goal choices read
their explanation from the row."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from advisor import rules, rules_check
from advisor.advice import rows
from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.questions import QUESTIONS

SHIPPED = Path(rules.__file__).resolve().parent.parent / "rules"


def _clear() -> None:
    for cached in (rows._rows, rows.comparison_rows, rows.method_rows, rows.adaptation_rows):
        cached.cache_clear()


@pytest.fixture
def edited_rules(tmp_path, monkeypatch):
    """A copy of rules/ the advice reads instead of the shipped one; `edit(old, new)` rewrites selection.toml."""
    root = tmp_path / "rules"
    shutil.copytree(SHIPPED, root)
    monkeypatch.setattr(rules, "rules_dir", lambda: root)
    _clear()

    def edit(old: str, new: str) -> None:
        path = root / "selection.toml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")
        _clear()

    yield edit
    _clear()


def _plan(**answers):
    return advise(Answers.from_mapping(answers))


def test_a_rows_methods_decide_the_pipeline(edited_rules):
    answers = dict(goal="chat_format", data="instruction_pairs,preference_pairs", gpu="h100", model="7b")
    assert _plan(**answers).pipeline == "sft"
    edited_rules(
        'recommend_en = "SFT"\nrecommend = { methods = ["sft"], adaptations = [] }',
        'recommend_en = "DPO"\nrecommend = { methods = ["dpo"], adaptations = [] }',
    )
    plan = _plan(**answers)
    assert plan.pipeline == "sft+dpo"  # DPO, after an SFT stage on the instruction pairs
    assert any(r.rule == "sel.chat_format" and "→ DPO" in r.en for r in plan.reasons)  # the row's own text


def test_a_rows_adaptations_decide_the_adaptation(edited_rules):
    answers = dict(goal="domain", data="instruction_pairs", gpu="h100", model="7b")
    assert _plan(**answers).adaptation == "lora"
    edited_rules('recommend = { methods = ["sft"], adaptations = ["lora", "qlora"] }', 'recommend = { methods = ["sft"], adaptations = ["qlora"] }')
    assert _plan(**answers).adaptation == "qlora"


def test_a_row_that_names_one_preference_method_is_followed(edited_rules):
    answers = dict(goal="quality_safety", data="preference_pairs", gpu="h100", model="7b", priority="quality")
    assert _plan(**answers).pipeline == "rlhf"  # either is allowed: quality wanted, resources ample -> RLHF
    edited_rules('recommend = { methods = ["rlhf", "dpo"], adaptations = [] }', 'recommend = { methods = ["dpo"], adaptations = [] }')
    assert _plan(**answers).pipeline == "dpo"


def test_goal_choices_explain_themselves_with_the_row(edited_rules):
    goal = next(q for q in QUESTIONS if q.id == "goal")
    chat = goal.choice("chat_format")
    assert chat.text("explain", "ko") == "대화 형식만 가르치고 싶다 → SFT"
    assert chat.rules[0] == "sel.chat_format"
    edited_rules('situation_en = "I only want to teach the conversation format."', 'situation_en = "Format only."')
    assert chat.text("explain", "en") == "Format only. → SFT"


def test_two_rows_for_one_goal_are_refused(edited_rules):
    edited_rules('goal = "simple"', 'goal = "domain"')
    assert any("goal 'domain' is answered by more than one row" in p for p in rules_check.validate_all(rules.rules_dir()))


def test_a_table_without_a_goals_row_says_so_in_one_line(edited_rules, capsys):
    # quality_safety is read from the table twice: as a wizard goal, and as the RLHF-vs-DPO row a goal beyond the
    # table (checkable tasks) falls back to with preference pairs. Without it: one line, exit 2, not a traceback.
    edited_rules('goal = "quality_safety"', 'goal = "quality"')
    from advisor.cli import main

    assert main(["advise", "--goal", "reasoning", "--data", "preference_pairs", "--gpu", "h100", "--model", "7b"]) == 2
    assert capsys.readouterr().err == (
        "advisor: error: selection.toml: no [[situation]] row has goal = 'quality_safety', which the advice reads from the table\n"
    )
    goal = next(q for q in QUESTIONS if q.id == "goal")
    with pytest.raises(rules.RulesError, match="goal = 'quality_safety'"):
        goal.choice("quality_safety").text("explain", "en")
