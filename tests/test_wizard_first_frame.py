"""The wizard's first frame styles and lays out each step once (advisor/tui/screens/base.py StepScreen): Textual
restyles a screen when it resumes and lays it out again for the Resize its own first layout posts it, and both were
pure repeats on a screen just mounted. A later resume (after a suspend) still restyles, and a real resize still lays the screen out."""

from __future__ import annotations

import asyncio
import sys

from textual import events
from textual.dom import DOMNode
from textual.screen import Screen

from advisor.tui.app import WizardApp
from advisor.tui.screens.base import StepScreen

ANSWERS = {"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}


def _counting(monkeypatch):
    """Count, per step screen, the restyles of the whole screen (beyond each widget's styling as it is mounted) and
    its layouts for a resume or a resize."""
    styled: dict[str, int] = {}
    layouts: dict[str, int] = {}
    restyle, refresh_layout = DOMNode.update_node_styles, Screen._refresh_layout

    def counted_restyle(self, *args, **kwargs):
        if isinstance(self, StepScreen):
            styled[type(self).__name__] = styled.get(type(self).__name__, 0) + 1
        return restyle(self, *args, **kwargs)

    def counted_layout(self, *args, **kwargs):
        # layouts for a resume or a resize (not the ones a widget asks for as its content arrives)
        if isinstance(self, StepScreen) and sys._getframe(1).f_code.co_name in ("_on_screen_resume", "_screen_resized"):
            layouts[type(self).__name__] = layouts.get(type(self).__name__, 0) + 1
        return refresh_layout(self, *args, **kwargs)

    monkeypatch.setattr(DOMNode, "update_node_styles", counted_restyle)
    monkeypatch.setattr(Screen, "_refresh_layout", counted_layout)
    return styled, layouts


def test_the_first_frame_styles_and_lays_out_once(monkeypatch):
    styled, layouts = _counting(monkeypatch)

    async def scenario():
        app = WizardApp(answers=ANSWERS, lang="en")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            return app.screen.query_one("#next").styles.width is not None

    assert asyncio.run(scenario())
    assert styled == {}  # was 1: every widget restyled when the screen resumed, just after each was styled on mount
    assert layouts == {"GoalScreen": 1}  # was 3: on resume, and again for each Resize to the same size


def test_a_later_resume_restyles_and_a_real_resize_lays_out(monkeypatch):
    styled, layouts = _counting(monkeypatch)

    async def scenario():
        app = WizardApp(answers=ANSWERS, lang="en")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.screen.post_message(events.ScreenResume())  # as the app sends when it comes back from a suspend
            await pilot.pause()
            restyled, laid_out = styled.get("GoalScreen", 0), layouts["GoalScreen"]
            await pilot.resize_terminal(100, 30)
            await pilot.pause()
            await pilot.pause()
            return restyled, laid_out, layouts["GoalScreen"], app.screen.query_one("#nav").size.width

    restyled, laid_out, laid_out_after_resize, nav_width = asyncio.run(scenario())
    assert restyled == 1  # a later resume restyles the step
    assert laid_out == 1  # at an unchanged size, the resume needs no layout
    assert laid_out_after_resize == 2 and nav_width == 100  # a real resize lays the screen out at the new width
