"""A one-of-several choice: `ChoiceSet`, the radio buttons of a choice question, drawn as Textual's compact RadioSet of
RadioButtons draws them (the same characters, colours and keys) at a fraction of the cost.

Why not RadioSet: each RadioButton is a Static with two component classes (toggle--button, toggle--label), and Textual
styles each component as a node of its own, from the whole stylesheet, every time the button is styled (when it is
mounted, when the screen is shown, when the set takes the focus, when a class such as -on or -selected changes),
and RadioSet's and ToggleButton's rules are parsed before the first frame. On the goal step (six choices) this
widget takes about 5% off the instructions to the first frame (issue 14 §8). Here a row is a plain Widget with no
classes and no component styles: the six rows share one styling pass (Textual reuses the rules of identical siblings), and the
row draws its button and label from theme variables (`$panel`, `$text-success`, `$block-cursor-*`), as RadioSet's
default CSS gives them, according to its state.

Keys and mouse as in RadioSet: down/right and up/left move the cursor (wrapping), enter/space press the choice under
it, a click presses the row clicked and focuses the set; a hovered row that is not the cursor gets the hover
background. `ChoiceSet.Changed` is posted when another choice is pressed (not for the one already pressed).
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widget import Widget

# RadioButton's button: "▐●▌", the sides in the button's background colour, the dot in its colour (ToggleButton,
# RadioSet DEFAULT_CSS: `& > RadioButton > .toggle--button {color: $panel-darken-2; background: $panel}`, and
# `$text-success` when the button is on).
_SIDE = "$panel"
_DOT_OFF = "$panel-darken-2 on $panel"
_DOT_ON = "$text-success on $panel"
# A hovered label (ToggleButton:blur:hover > .toggle--label; a button inside a RadioSet never has the focus). The
# label under the cursor is the set's component style `choice-set--cursor` (its colour may be `auto`, which only
# the stylesheet resolves as RadioSet's rules do).
_HOVER = "on $block-hover-background"


class ChoiceRow(Widget):
    """One choice of a ChoiceSet: its button and (wrapped) label. `value` is whether it is the pressed one."""

    ALLOW_SELECT = False

    def __init__(self, label: Content, value: bool = False, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._label = label.rstrip().pad(1, 1)
        self._value = value
        self._height_for: tuple[int, int] = (-1, 0)  # (width, height): layout asks several times per frame

    @property
    def value(self) -> bool:
        return self._value

    @value.setter
    def value(self, value: bool) -> None:
        choices = self.parent
        if value and not self._value and isinstance(choices, ChoiceSet):
            choices.press(choices.rows.index(self))  # as in a RadioSet: the one pressed before is let go
        elif not value and isinstance(choices, ChoiceSet) and choices.pressed_index == choices.rows.index(self):
            return  # nor can the pressed one be let go but by pressing another
        else:
            self._set_value(value)

    def _set_value(self, value: bool) -> None:
        if value != self._value:
            self._value = value
            self.refresh()

    def render(self) -> Content:
        choices = self.parent
        if isinstance(choices, ChoiceSet) and choices.cursor_row is self:
            label = self._label.stylize_before(choices.get_visual_style("choice-set--cursor"))
        elif self.mouse_hover:
            label = self._label.stylize_before(_HOVER)
        else:
            label = self._label
        return Content.assemble(("▐", _SIDE), ("●", _DOT_ON if self._value else _DOT_OFF), ("▌", _SIDE), label)

    def get_content_height(self, container, viewport, width: int) -> int:
        seen_width, height = self._height_for
        if seen_width != width:  # pressed or not, under the cursor or not: the label wraps the same
            height = max(1, self.render().get_height(self.styles, width))
            self._height_for = (width, height)
        return height

    def watch_mouse_hover(self) -> None:
        self.refresh()

    def on_click(self, event: events.Click) -> None:
        choices = self.parent
        if isinstance(choices, ChoiceSet):
            choices.press(choices.rows.index(self))  # then the click reaches the set, which takes the focus


class ChoiceSet(Widget):
    """Radio buttons for one of several choices (ChoiceRow children), as a compact RadioSet shows them."""

    can_focus = True
    can_focus_children = False

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"choice-set--cursor"}
    DEFAULT_CSS = """
    ChoiceSet {
        width: 1fr;
        height: auto;
        background: $surface;
        pointer: pointer;
        &:focus {
            background-tint: $foreground 5%;
            & > .choice-set--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        &:blur > .choice-set--cursor {
            background: $block-cursor-blurred-background;
        }
        & > ChoiceRow {
            width: 1fr;
            height: auto;
            text-wrap: wrap;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_choice", "Next option", show=False),
        Binding("enter,space", "press_choice", "Toggle", show=False),
        Binding("up,left", "previous_choice", "Previous option", show=False),
    ]

    class Changed(Message):
        """Another choice was pressed: `index` is its position."""

        def __init__(self, choice_set: ChoiceSet, index: int) -> None:
            super().__init__()
            self.choice_set, self.index = choice_set, index

        @property
        def control(self) -> ChoiceSet:
            return self.choice_set

    def __init__(self, *rows: ChoiceRow, id: str | None = None) -> None:
        super().__init__(*rows, id=id)
        self.rows = list(rows)
        self.cursor = 0 if rows else None  # RadioSet starts with its cursor on the first button
        self.pressed_index = next((i for i, row in enumerate(rows) if row.value), -1)
        for row in self.rows[self.pressed_index + 1 :] if self.pressed_index >= 0 else ():
            row._set_value(False)  # one pressed at most, the first (as RadioSet keeps it)

    @property
    def cursor_row(self) -> ChoiceRow | None:
        return None if self.cursor is None else self.rows[self.cursor]

    def _move(self, to: int | None) -> None:
        old, self.cursor = self.cursor_row, to
        for row in (old, self.cursor_row):
            if row is not None:
                row.refresh()

    def press(self, index: int) -> None:
        """Press the choice at `index` (a key, a click): it is on, the one pressed before is off, and the cursor
        moves to it. Pressing the pressed one changes nothing (RadioSet turns it straight back on)."""
        if index == self.pressed_index:
            return
        if self.pressed_index >= 0:
            self.rows[self.pressed_index]._set_value(False)
        self.rows[index]._set_value(True)
        self.pressed_index = index
        self._move(index)
        self.post_message(self.Changed(self, index))

    def action_next_choice(self) -> None:
        if self.rows:
            self._move(0 if self.cursor is None else (self.cursor + 1) % len(self.rows))

    def action_previous_choice(self) -> None:
        if self.rows:
            self._move(len(self.rows) - 1 if self.cursor is None else (self.cursor - 1) % len(self.rows))

    def action_press_choice(self) -> None:
        if self.cursor is not None:
            self.press(self.cursor)

    def on_click(self, event: events.Click) -> None:
        self.focus()

    def on_focus(self, event: events.Focus) -> None:
        self._refresh_cursor()

    def on_blur(self, event: events.Blur) -> None:
        self._refresh_cursor()

    def _refresh_cursor(self) -> None:
        row = self.cursor_row
        if row is not None:
            row.refresh()
