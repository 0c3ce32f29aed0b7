"""The generated run README states the expected time and cost per stage (issue 16), from the time model."""

from __future__ import annotations

from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.planning import build_plan
from advisor.scriptgen import render
from estimators.setup import Setup


def section(readme: str) -> str:
    start = readme.index("## Expected time and cost")
    return readme[start : readme.index("\n## ", start + 1)]


def test_readme_has_each_stages_time_and_cost_as_the_plan_was_priced():
    plan = advise(Answers.from_mapping(dict(goal="quality_safety", data="preference_pairs", gpu="h100", model="7b", data_count=20000)))
    text = section(render(plan)["README.md"])
    for stage in plan.time.stages:  # the same figures `advisor advise` showed
        assert (
            f"| {stage.name} | 1 | {stage.tokens_per_s_per_gpu:,.0f} | {stage.hours:.1f} h | {stage.hours_low:.1f}-{stage.hours_high:.1f} h | ${stage.usd:,.2f} |"
            in text
        )
    assert "Priced for 20,000 examples per stage, each up to 2,048 tokens" in text and "assumed" not in text
    assert "$2.99 per GPU-hour" in text


def test_readme_of_a_built_plan_says_the_data_size_is_assumed():
    plan = build_plan("7b", Setup(adaptation="lora"), pipeline="sft", gpu="a100-80gb")
    text = section(render(plan)["README.md"])
    assert "| sft | 1 |" in text and "NVIDIA A100 80GB" in text
    assert "Priced for 10,000 examples per stage (assumed" in text


def test_no_time_section_without_speed_figures_or_for_the_tiny_model():
    assert "## Expected time and cost" not in render(build_plan("7b", Setup(adaptation="lora"), pipeline="sft", gpu="24GB"))["README.md"]
    assert "## Expected time and cost" not in render(build_plan("tiny", Setup(), pipeline="sft", gpu="h100"))["README.md"]
