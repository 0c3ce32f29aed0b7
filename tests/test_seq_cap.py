"""Issue 14 §5: one home for the sequence cap. advise trains a sequence longer than the model's positions at the
model's positions and says so; the wizard's what-if does the same (it used to price the too-long sequence and only
warn in the estimate's notes)."""

from __future__ import annotations

import asyncio

import pytest

from advisor.advice.advise import advise
from advisor.advice.context import capped_seq
from advisor.answers import Answers
from estimators.catalog import resolve_model

ANSWERS = {"goal": "chat_format", "data": ["instruction_pairs"], "gpu": "a100-80gb", "model": "7b"}


def _positions() -> int:
    return resolve_model("7b").spec.max_positions


def test_capped_seq_caps_at_the_models_positions_and_says_so():
    spec = resolve_model("7b").spec
    assert capped_seq(spec, spec.max_positions) == (spec.max_positions, None)
    assert capped_seq(spec, 512) == (512, None)
    seq, note = capped_seq(spec, spec.max_positions * 3)
    assert seq == spec.max_positions
    en, ko = note
    assert f"{spec.max_positions * 3}" in en and f"capped at {spec.max_positions}" in en
    assert f"{spec.max_positions}" in ko


def test_advise_trains_at_the_models_positions_with_the_warning():
    positions = _positions()
    plan = advise(Answers.from_mapping({**ANSWERS, "seq_len": positions * 2}))
    assert {s.setup.seq_len for s in plan.stages} == {positions}
    assert any(f"capped at {positions}" in w.en for w in plan.warnings)


def test_the_wizard_what_if_caps_the_sequence_as_advise_does():
    pytest.importorskip("textual")
    from test_wizard import text_of, to_step
    from textual.widgets import Input, Static

    from advisor.tui.app import WizardApp

    positions = _positions()
    asked = positions * 2

    async def scenario():
        app = WizardApp(answers=dict(ANSWERS), lang="en")
        async with app.run_test(size=(100, 30)) as pilot:
            await to_step(pilot, "memory")
            box = app.screen.query_one("#knob-seq_len", Input)
            box.value = str(asked)  # one Changed event with the whole number, as a paste makes
            await pilot.pause()
            await pilot.pause()
            stage = app.state.plan.stage(app.state.stage).setup.seq_len
            status = text_of(app.screen.query_one("#status", Static))
            shown = box.value
            await pilot.press("ctrl+q")
        return stage, status, shown

    stage, status, shown = asyncio.run(scenario())
    assert stage == positions
    assert shown == str(positions)  # the control shows what is priced
    assert f"capped at {positions}" in status
