"""SVG snapshots of the wizard at 80x24 (pytest-textual-snapshot; Textual pinned in the dev extra; cursor blink off).

Update after an intended change: `.venv/bin/python -m pytest tests/test_wizard_snapshots.py --snapshot-update`,
then look at the pictures in tests/__snapshots__/test_wizard_snapshots/.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input, Select

from advisor.tui.app import WizardApp

SMALL_CARD = {"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}
CLOSE_CALL = {"goal": "best_quality", "priority": "cost", "data": ["preference_pairs"], "gpu": "rtx4090", "model": "7b"}


def _no_blink(app) -> None:
    for widget in app.screen.query(Input):
        widget.cursor_blink = False


async def _settle(pilot, predicate=lambda: True, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    await pilot.pause()
    while not predicate():
        assert time.monotonic() < deadline, "the wizard did not settle"
        await pilot.pause(0.05)
    _no_blink(pilot.app)
    await pilot.pause()


async def _go(pilot, step: str) -> None:
    app = pilot.app
    while app.step != step:
        await pilot.press("ctrl+n")
        if app.step == "recommend":
            await _settle(pilot, app.state.plan_is_current)


def test_goal_screen(snap_compare):
    """The first screen fits 80x24: step bar, each goal with its one-line explanation, Back/Next, the keys."""

    async def before(pilot):
        await _settle(pilot)

    assert snap_compare(WizardApp(lang="en"), terminal_size=(80, 24), run_before=before)


def test_goal_screen_korean(snap_compare):
    """Korean: the question and choice texts come from the declarations; wide characters line up at 80x24."""

    async def before(pilot):
        await _settle(pilot)

    assert snap_compare(WizardApp(answers=SMALL_CARD, lang="ko"), terminal_size=(80, 24), run_before=before)


@pytest.mark.slow  # walks the wizard to the recommendation first
def test_recommendation_close_call(snap_compare):
    """A close RLHF-vs-DPO call: DPO, alternatives with why-not and rule ids, and the §6 comparison table."""

    async def before(pilot):
        await _go(pilot, "recommend")
        pilot.app.screen.query_one("#body").scroll_end(animate=False)
        await _settle(pilot)

    assert snap_compare(WizardApp(answers=CLOSE_CALL, lang="en"), terminal_size=(80, 24), run_before=before)


@pytest.mark.slow  # walks the wizard to the memory screen first
def test_memory_over_capacity(snap_compare):
    """Full fine-tuning of 7B on a 12 GB card: the bar runs past the capacity mark, the verdict says by how much."""

    async def before(pilot):
        await _go(pilot, "memory")
        pilot.app.screen.query_one("#knob-adaptation", Select).value = "full"
        await _settle(pilot)

    assert snap_compare(WizardApp(answers=SMALL_CARD, lang="en"), terminal_size=(80, 24), run_before=before)
