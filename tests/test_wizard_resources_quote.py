"""The Resources step quotes the plan its answers give, with hours and dollars on the chosen GPUs (issue 16: "the
wizard shows time and cost on the resources ... steps"), and follows the answers as they change."""

from __future__ import annotations

import asyncio

from test_wizard import SIZE, text_of, to_step, until
from textual.widgets import Input, Static

from advisor.advice.advise import advise
from advisor.advice.timecost import time_words
from advisor.answers import Answers
from advisor.tui.app import WizardApp
from advisor.tui.widgets.plan_quote import quote_text

BASE = dict(goal="quality_safety", data="preference_pairs", gpu="a100-80gb", model="7b")


def plan_of(**changes):
    return advise(Answers.from_mapping(dict(BASE, **changes), origin="wizard"))


def test_the_quote_follows_the_answers_and_the_advice_step_reuses_its_plan():
    """One wizard session: the quote on arrival, then after typing a price, then Next."""

    def shown(app) -> str:
        return text_of(app.screen.query_one("#quote", Static)).strip()

    expected_after = f"With these answers: RLHF with LoRA · {time_words(plan_of(price=0.5).time, 'en')}"

    async def scenario():
        app = WizardApp(answers=BASE, lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "resources")
            await until(pilot, lambda: "With these answers" in shown(app))
            first = shown(app)
            app.screen.query_one("#q-price", Input).focus()
            await pilot.press(*"0.5")
            # the quote follows each change 0.4 s later: on a slow machine "0" and "0." may be quoted on the way
            await until(pilot, lambda: shown(app) == expected_after)
            after, current = shown(app), app.state.plan_is_current()
            await pilot.press("ctrl+n")
            await pilot.pause()
            return first, after, current, text_of(app.screen.query_one("#advice", Static))

    first, after, current, advice = asyncio.run(scenario())
    assert first == f"With these answers: RLHF with LoRA · {time_words(plan_of().time, 'en')}"
    assert "~$" in first and " h (" in first and "on 1x NVIDIA A100 80GB" in first
    assert after == expected_after
    cost = lambda text: float(text.rsplit("~$", 1)[1].split()[0].replace(",", ""))  # noqa: E731
    assert cost(after) < cost(first)  # $0.50 per GPU-hour is below the table's A100 price
    # the quote's plan is the advice step's: Next shows the advice at once, not "thinking"
    assert current and "Recommended: RLHF + LoRA" in advice


def test_the_quote_in_korean_and_for_a_card_without_speed_figures():
    plan = plan_of()
    assert quote_text(plan, "ko") == f"이 답이면: RLHF + LoRA · {time_words(plan.time, 'ko')}"
    assert time_words(plan.time, "ko").startswith("3단계, 약 ")
    no_speed = plan_of(gpu="80GB")
    assert no_speed.time is None
    assert quote_text(no_speed, "en") == "With these answers: RLHF with LoRA · no speed figures for 80 GB card: time and cost unknown"
    assert quote_text(no_speed, "ko") == "이 답이면: RLHF + LoRA · 80 GB card의 속도 정보가 없어 시간과 비용은 알 수 없습니다"
