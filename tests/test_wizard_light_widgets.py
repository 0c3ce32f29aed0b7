"""The wizard's light widgets (advisor/tui/widgets/choices.py, chrome.py) behave and look as the Textual widgets they
stand for: ChoiceSet as a compact RadioSet of RadioButtons, NavButton as a compact Button, KeyBar as the Footer.
The looks are compared cell for cell: the same app drawn once with each widget gives the same screenshot."""

from __future__ import annotations

import asyncio
import re

from textual.app import App
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Button, Footer, Input, RadioButton, RadioSet

from advisor.tui.widgets import compact
from advisor.tui.widgets.choices import ChoiceSet
from advisor.tui.widgets.chrome import KeyBar, NavButton

LABELS = ["Alpha", "Beta", "Gamma"]


def run(coro):
    return asyncio.run(coro)


def _svg(app) -> str:
    return re.sub(r"terminal-\d+", "T", app.export_screenshot(title="x"))


class _Choices(App):
    CSS = "RadioSet, ChoiceSet { width: 100%; height: auto; } RadioButton { width: 100%; }"

    def __init__(self, light: bool, pressed: int | None = None) -> None:
        super().__init__()
        self.light, self.pressed, self.changes = light, pressed, []

    def compose(self):
        if self.light:
            yield ChoiceSet(
                [(f"c-{i}", Content(label)) for i, label in enumerate(LABELS)], value=None if self.pressed is None else f"c-{self.pressed}", id="set"
            )
        else:
            with compact(RadioSet(id="set")):
                for i, label in enumerate(LABELS):
                    yield compact(RadioButton(label, value=i == self.pressed, id=f"c-{i}"))
        yield Input(id="other")

    def on_choice_set_changed(self, event: ChoiceSet.Changed) -> None:
        self.changes.append(event.index)

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        self.changes.append(event.index)


async def _drive(app, steps) -> list:
    """Screenshots (and the Changed indexes seen) after each step: a key, ("click"/"hover", x, y) or "focus"."""
    shots = []
    async with app.run_test(size=(40, 8)) as pilot:
        app.query_one("#other", Input).cursor_blink = False
        await pilot.pause()
        for step in steps:
            if step == "focus":
                app.query_one("#set").focus()
            elif isinstance(step, tuple):
                await (pilot.click if step[0] == "click" else pilot.hover)(offset=step[1:])
            else:
                await pilot.press(step)
            await pilot.pause()
            await pilot.pause()
            shots.append((_svg(app), list(app.changes), getattr(app.focused, "id", None)))
    return shots


STEPS = [
    "focus",
    "down",
    "down",
    "down",
    "enter",
    "up",
    "space",
    "space",
    "tab",
    ("hover", 5, 2),
    ("hover", 5, 0),
    ("click", 5, 2),
    ("click", 5, 2),
    ("hover", 5, 1),
    "left",
    "right",
    "enter",
    "tab",
]


def test_the_choice_set_behaves_and_looks_as_a_compact_radio_set():
    for pressed in (None, 1):
        radio = run(_drive(_Choices(light=False, pressed=pressed), STEPS))
        light = run(_drive(_Choices(light=True, pressed=pressed), STEPS))
        for i, (want, got) in enumerate(zip(radio, light, strict=True)):
            assert got[1:] == want[1:], (pressed, i, STEPS[i])  # the same changes reported, the same focus
            assert got[0] == want[0], (pressed, i, STEPS[i])  # and the same cells


def test_a_choice_set_value_presses_it_as_a_radio_button_would():
    async def scenario():
        app = _Choices(light=True, pressed=0)
        async with app.run_test(size=(40, 8)) as pilot:
            choices = app.query_one("#set", ChoiceSet)
            assert choices.value == "c-0"
            choices.value = "c-2"
            await pilot.pause()
            assert choices.value == "c-2" and choices.pressed_index == 2 and app.changes == [2]
            choices.value = "c-2"  # pressing the pressed one changes nothing
            await pilot.pause()
            assert app.changes == [2]

    run(scenario())


class _Frame(App):
    ENABLE_COMMAND_PALETTE = False  # as the wizard (the Footer would show its key; the KeyBar has none)
    BINDINGS = [
        Binding("ctrl+n", "hit('next')", "Next"),
        Binding("escape", "hit('back')", "Back"),
        Binding("ctrl+g", "hit('glossary')", "Glossary"),
        Binding("x", "hit('hidden')", "Hidden", show=False),
    ]
    CSS = "#nav { height: 1; } #nav Button, #nav NavButton { min-width: 10; margin: 0 1; }"

    def __init__(self, light: bool) -> None:
        super().__init__()
        self.light, self.hits, self.pressed = light, [], []

    def compose(self):
        button = NavButton if self.light else Button
        with Horizontal(id="nav"):
            yield compact(button("◀ Back", id="back", disabled=True))
            yield compact(button("Next ▶", id="next", variant="primary"))
            yield compact(button("Other", id="other"))
        yield KeyBar() if self.light else Footer()

    def action_hit(self, what: str) -> None:
        self.hits.append(what)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.pressed.append(event.button.id)


FRAME_STEPS = [
    "tab",
    "tab",
    "enter",
    ("hover", 3, 0),
    ("hover", 25, 0),
    ("hover", 3, 7),
    ("hover", 12, 7),
    ("click", 12, 7),
    ("click", 25, 0),
    ("hover", 39, 7),
    "shift+tab",
]


async def _drive_frame(app) -> list:
    shots = []
    async with app.run_test(size=(60, 8)) as pilot:
        await pilot.pause()
        for step in FRAME_STEPS:
            if isinstance(step, tuple):
                await (pilot.click if step[0] == "click" else pilot.hover)(offset=step[1:])
            else:
                await pilot.press(step)
            await pilot.pause(0.3)  # past a button's press flash
            shots.append((_svg(app), list(app.hits), list(app.pressed), getattr(app.focused, "id", None)))
    return shots


def test_nav_buttons_and_the_key_bar_look_and_act_as_button_and_footer():
    want, got = run(_drive_frame(_Frame(light=False))), run(_drive_frame(_Frame(light=True)))
    assert want[-1][1:] == (["back"], ["next", "other"], "next")  # the scenario does press things
    for i, (w, g) in enumerate(zip(want, got, strict=True)):
        assert g[1:] == w[1:], (i, FRAME_STEPS[i])
        assert g[0] == w[0], (i, FRAME_STEPS[i])
