"""Issue 13 item 15 (behaviour): the wizard's "make it fit" keeps the effective batch advise recommended (a what-if
micro-batch of 8 over an accumulation of 4 is not a reason to train with 32 sequences per step), and its status
("it already fits" / "이미 들어갑니다") does not outlive a what-if that makes the run stop fitting."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("textual")

from test_wizard import text_of, to_step, until  # noqa: E402
from textual.widgets import Input  # noqa: E402

from advisor.tui.app import WizardApp  # noqa: E402
from advisor.tui.plan_calls import cheapest_fix, knob_setup, make_plan, memory_view, with_stage_setup  # noqa: E402
from advisor.tui.state import WizardState  # noqa: E402

ANSWERS = {"goal": "chat_format", "data": ["instruction_pairs"], "gpu": "rtx3090", "model": "7b"}
SIZE = (100, 30)


def _effective(setup) -> int:
    return setup.micro_batch * setup.grad_accum * setup.world_size


def _too_big(plan, stage) -> int:
    """A micro-batch that does not fit this stage (the first power of two above the plan's that overflows)."""
    setup = plan.stage(stage).setup
    mb = setup.micro_batch
    while memory_view(with_stage_setup(plan, stage, knob_setup(setup, "micro_batch", mb)), stage).fits:
        mb *= 2
    return mb


def test_the_fix_returns_to_the_recommended_effective_batch():
    state = WizardState()
    plan = make_plan(ANSWERS)
    state.take_plan(plan, ("key",))
    stage = plan.stages[0].name
    recommended = _effective(plan.stage(stage).setup)
    assert state.batch_targets == {stage: recommended}
    big = _too_big(plan, stage)
    wider = with_stage_setup(plan, stage, knob_setup(plan.stage(stage).setup, "micro_batch", big))
    assert _effective(wider.stage(stage).setup) > recommended  # what the what-if did to the batch
    fix = cheapest_fix(wider, stage, state.batch_targets[stage])
    assert fix is not None and fix.fits
    assert _effective(fix.setup) == recommended


async def _type_micro_batch(pilot, value: int) -> None:
    micro = pilot.app.screen.query_one("#knob-micro_batch", Input)
    micro.focus()
    await pilot.press("end", *["backspace"] * 4, *str(value))
    await pilot.pause()


def test_make_it_fit_in_the_wizard_keeps_the_recommended_batch():
    async def scenario():
        app = WizardApp(answers=dict(ANSWERS), lang="en")
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "memory")
            stage = app.state.stage
            recommended = _effective(app.state.plan.stage(stage).setup)
            big = _too_big(app.state.plan, stage)
            await _type_micro_batch(pilot, big)
            assert not memory_view(app.state.plan, stage).fits
            await pilot.press("ctrl+f")
            await until(pilot, lambda: app.state.notes)
            after = app.state.plan.stage(stage).setup
            await pilot.press("ctrl+q")
        return recommended, after, app

    recommended, after, app = asyncio.run(scenario())
    assert memory_view(app.state.plan, app.state.stage).fits
    assert _effective(after) == recommended


@pytest.mark.parametrize("lang, already", [("en", "it already fits"), ("ko", "이미 들어갑니다")])
def test_the_already_fits_status_goes_when_the_run_stops_fitting(lang, already):
    async def scenario():
        app = WizardApp(answers=dict(ANSWERS), lang=lang)
        async with app.run_test(size=SIZE) as pilot:
            await to_step(pilot, "memory")
            note = app.screen.query_one("#fix-note")
            await pilot.press("ctrl+f")
            await until(pilot, lambda: already in text_of(note))
            await _type_micro_batch(pilot, _too_big(app.state.plan, app.state.stage))
            over = text_of(note)
            await pilot.press("ctrl+q")
        return over

    over = asyncio.run(scenario())
    assert already not in over
    assert "(^f)" in over  # says it does not fit and how to fix it
