"""The Resources step quotes the plan its answers give, with hours and dollars on the chosen GPUs (issue 16: "the
wizard shows time and cost on the resources ... steps"), and follows the answers as they change."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console
from textual.widgets import Input

from advisor.advice.advise import advise
from advisor.advice.timecost import time_words
from advisor.questions import Answers
from advisor.tui.app import WizardApp

BASE = dict(goal="quality_safety", data="preference_pairs", gpu="a100-80gb", model="7b")


def text_of(renderable) -> str:
    buf = io.StringIO()
    Console(file=buf, width=300).print(renderable)
    return buf.getvalue()


def quote_text(app) -> str:
    return str(app.screen.query_one("#quote").render())


async def _wait(pilot, condition, what: str, seconds: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await pilot.pause(0.05)


def run_resources(answers: dict, lang: str = "en", price: str = ""):
    """Open the wizard on `answers`, go to Resources, wait for the quote; optionally type a price and wait again.
    Returns (first quote, quote after the price, whether the plan was current, the step after Next)."""

    async def scenario():
        app = WizardApp(answers=answers, lang=lang)
        async with app.run_test(size=(80, 24)) as pilot:
            while app.step != "resources":
                await pilot.press("ctrl+n")
                await pilot.pause()
            marker = "이 답이면" if lang == "ko" else "With these answers"
            await _wait(pilot, lambda: marker in quote_text(app), "no quote")
            first, after = quote_text(app), ""
            if price:
                box = app.screen.query_one("#q-price", Input)
                box.focus()
                await pilot.press(*price)
                await _wait(pilot, lambda: quote_text(app) != first and marker in quote_text(app), "the quote did not follow")
                after = quote_text(app)
            current = app.state.plan_is_current()
            await pilot.press("ctrl+n")
            await pilot.pause()
            advice = text_of(app.screen.query_one("#advice").content) if app.step == "recommend" else ""
            return first, after, current, advice

    return asyncio.run(scenario())


def test_the_quote_is_the_plans_time_and_cost_and_the_advice_step_reuses_it():
    first, _, current, advice = run_resources(BASE)
    plan = advise(Answers.from_mapping(BASE, origin="wizard"))
    assert first == f"With these answers: RLHF with LoRA · {time_words(plan.time, 'en')}"
    assert "~$" in first and " h (" in first and "on 1x NVIDIA A100 80GB" in first
    # the quote's plan is the advice step's: Next shows the advice at once, not "thinking"
    assert current and "Recommended" in advice


def test_the_quote_follows_a_typed_price():
    first, after, _, _ = run_resources(BASE, price="0.5")
    plan = advise(Answers.from_mapping(dict(BASE, price=0.5), origin="wizard"))
    assert after == f"With these answers: RLHF with LoRA · {time_words(plan.time, 'en')}"
    cost = lambda text: float(text.rsplit("~$", 1)[1].split()[0].replace(",", ""))  # noqa: E731
    assert cost(after) < cost(first)  # $0.50 per GPU-hour is below the table's A100 price


def test_the_quote_in_korean_and_for_a_card_without_speed_figures():
    first, _, _, _ = run_resources(BASE, lang="ko")
    assert first.startswith("이 답이면: RLHF + LoRA · 3단계, 약 ") and "시간" in first
    no_speed, _, _, _ = run_resources(dict(BASE, gpu="80GB"))
    assert no_speed.startswith("With these answers: ") and "time and cost unknown" in no_speed
