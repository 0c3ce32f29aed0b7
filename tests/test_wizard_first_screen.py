"""The wizard's first screen and first-frame widgets after issue 14 §8's last cuts:

- the first step's screen is the app's default screen (no Textual default screen under it), and leaving it removes
  it as switch_screen removes the screen it replaces: its widgets go, and a message still in flight is dropped;
- ChoiceSet (one widget drawing all its choices) hovers and presses the choice under the mouse when labels wrap
  over several lines;
- NavButton, whose rules drop the borders a compact button never shows, still looks as a compact Button in ANSI
  colour too (where a disabled or pressed button's `!important` border beats the compact rule).
"""

from __future__ import annotations

import asyncio

import test_wizard_light_widgets as light
from textual.app import App
from textual.content import Content
from textual.widgets import Input

from advisor.tui.app import WizardApp
from advisor.tui.screens.questions import GoalScreen
from advisor.tui.widgets.choices import ChoiceSet
from advisor.tui.widgets.question import AnswerChanged

ANSWERS = {"goal": "domain", "data": ["instruction_pairs"], "gpu": "rtx3060", "model": "7b"}


def run(coro):
    return asyncio.run(coro)


def test_the_first_step_is_the_only_screen_and_leaving_it_removes_it():
    async def scenario():
        app = WizardApp(answers=ANSWERS, lang="en")
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            first = app.screen
            assert app.screen_stack == [first] and isinstance(first, GoalScreen)  # no default screen under it
            await pilot.press("ctrl+n")
            await pilot.pause()
            assert app.step == "data" and app.screen_stack[-1] is app.screen is not first
            assert not first.is_running and not first.children  # removed, as switch_screen removes a screen
            assert first.post_message(AnswerChanged("model")) is False  # what is still in flight to it is dropped
            await pilot.press("escape")  # back: a fresh goal screen, switched in over the data step
            await pilot.pause()
            assert app.step == "goal" and isinstance(app.screen, GoalScreen) and app.screen is not first
            assert app.screen.query_one("#q-goal", ChoiceSet).value == "domain"
            await pilot.press("ctrl+n")
            await pilot.pause()
            assert app.step == "data"

    run(scenario())


def test_the_app_closes_after_leaving_the_first_screen():
    """Textual passes over the removed first screen when it closes the app (run, not run_test: as the snapshots run it)."""

    async def walk(pilot):
        await pilot.press("ctrl+n")
        await pilot.pause()
        pilot.app.exit(pilot.app.step)

    assert WizardApp(answers=ANSWERS, lang="en").run(headless=True, auto_pilot=walk, size=(80, 24)) == "data"


# Labels like the goal step's: a bold line and an indented explanation, both wrapping at this width.
LABELS = [
    "Chat format\n    learn a conversation template and answer in turns, one reply at a time",
    "Short\n    one line",
    "Domain\n    adapt the model to the words and facts of one field of knowledge and its documents",
]


class _Wrapped(App):
    CSS = "ChoiceSet { width: 100%; height: auto; }"

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[int] = []

    def compose(self):
        yield ChoiceSet([(f"c-{i}", Content(label)) for i, label in enumerate(LABELS)], id="set")
        yield Input(id="other")

    def on_choice_set_changed(self, event: ChoiceSet.Changed) -> None:
        self.changes.append(event.index)


def test_the_choice_set_finds_the_choice_under_the_mouse_when_labels_wrap():
    """Every line of every (wrapped) choice: hovering it hovers that choice, clicking it presses that choice. Which
    choice a line belongs to is read from the drawn lines: a choice's first line starts with its button."""

    async def scenario():
        app = _Wrapped()
        async with app.run_test(size=(30, 20)) as pilot:
            app.query_one("#other", Input).cursor_blink = False
            await pilot.pause()
            choices = app.query_one("#set", ChoiceSet)
            lines = [choices.render_line(y).text for y in range(choices.size.height)]
            owner, index = [], -1
            for line in lines:
                index += line.startswith("▐●▌")
                owner.append(index)
            assert index == len(LABELS) - 1 and len(lines) > 2 * len(LABELS)  # each label wraps over several lines
            seen = []
            for y in range(len(owner)):
                await pilot.hover(offset=(8, y))
                await pilot.pause()
                hovered = choices.hover
                await pilot.click(offset=(8, y))
                await pilot.pause()
                seen.append((hovered, choices.pressed_index, choices.value))
            assert seen == [(want, want, f"c-{want}") for want in owner]
            assert app.changes == [0, 1, 2] and app.focused is choices  # a Changed per choice newly pressed

    run(scenario())


class _AnsiFrame(light._Frame):
    def __init__(self, light_widgets: bool) -> None:
        super().__init__(light_widgets)
        self.ansi_color = True


def test_nav_buttons_look_as_compact_buttons_in_ansi_colour_too():
    want, got = run(light._drive_frame(_AnsiFrame(False))), run(light._drive_frame(_AnsiFrame(True)))
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        assert g == w, (i, light.FRAME_STEPS[i])
