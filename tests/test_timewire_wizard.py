"""The wizard's advice and memory steps show time and cost (issue 16)."""

from __future__ import annotations

import io

from rich.console import Console

from advisor.advice.advise import advise
from advisor.advice.timecost import stage_time_words
from advisor.answers import Answers
from advisor.planning import model_spec
from advisor.tui.screens.recommend import advice_renderable

ANSWERS = dict(goal="quality_safety", data="preference_pairs", gpu="a100-80gb", model="7b")


def text_of(renderable) -> str:
    buf = io.StringIO()
    Console(file=buf, width=300).print(renderable)
    return buf.getvalue()


def test_advice_step_has_the_plans_time_and_cost():
    plan = advise(Answers.from_mapping(ANSWERS))
    en = text_of(advice_renderable(plan, "en"))
    t = plan.time
    assert f"Expected time and cost: 3 stages, ~{t.hours:.1f} h ({t.hours_low:.1f}-{t.hours_high:.1f} h), ~${t.usd:,.0f} on 1x NVIDIA A100 80GB" in en
    assert "assuming 10,000 examples" in en
    ko = text_of(advice_renderable(advise(Answers.from_mapping(ANSWERS)), "ko"))
    assert f"예상 시간과 비용: 3단계, 약 {t.hours:.1f}시간" in ko and "예제 10,000개 가정" in ko


def test_memory_step_time_follows_the_what_if():
    plan = advise(Answers.from_mapping(ANSWERS))
    spec = model_spec("7b")[0]
    before = stage_time_words(plan, spec, "sft")
    sft = plan.stage("sft")
    assert before.startswith("sft: ~") and "tokens/s per GPU" in before and "$" in before
    sft.setup = sft.setup.with_(grad_ckpt=not sft.setup.checkpointing)  # what the what-if checkbox does
    after = stage_time_words(plan, spec, "sft")

    def hours(words: str) -> float:
        return float(words.split("~", 1)[1].split(" h", 1)[0])

    assert (hours(after) > hours(before)) == sft.setup.checkpointing  # checkpointing recomputes the forward
    assert stage_time_words(advise(Answers.from_mapping({**ANSWERS, "gpu": "80GB"})), spec, "sft") == ""  # no speed figures
