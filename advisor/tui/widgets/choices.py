"""A one-of-several choice: `ChoiceSet`, the radio buttons of a choice question, drawn as Textual's compact RadioSet of
RadioButtons draws them (the same characters, colours and keys) at a fraction of the cost.

Why not RadioSet: each RadioButton is a Static with two component classes (toggle--button, toggle--label), and Textual
styles each component as a node of its own, from the whole stylesheet, every time the button is styled (when it is
mounted, when the screen is shown, when the set takes the focus, when a class such as -on or -selected changes),
and RadioSet's and ToggleButton's rules are parsed before the first frame. Here the set is one widget that draws its
choices itself, one after the other: no child widget to build, style (once on mount and again when the set takes
the focus, as Textual restyles a focused widget's children), lay out and render per choice (on the goal step, six
choices: about 3.5% of the instructions to the first frame, issue 14 §8). Each choice is its button and (wrapped)
label, the button and the hover background from theme variables (`$panel`, `$text-success`,
`$block-hover-background`), as RadioSet's default CSS gives them, according to its state.

Keys and mouse as in RadioSet: down/right and up/left move the cursor (wrapping), enter/space press the choice under
it, a click presses the choice clicked and focuses the set; a hovered choice that is not the cursor gets the hover
background. `ChoiceSet.Changed` is posted when another choice is pressed (not for the one already pressed).
"""

from __future__ import annotations

from typing import ClassVar, Sequence

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


class ChoiceSet(Widget):
    """Radio buttons for one of several choices, given as (value, label) pairs, as a compact RadioSet shows them;
    `value` is the pressed choice's value (None before one is pressed)."""

    can_focus = True

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"choice-set--cursor"}
    DEFAULT_CSS = """
    ChoiceSet {
        width: 1fr;
        height: auto;
        background: $surface;
        pointer: pointer;
        text-wrap: wrap;
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
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("down,right", "next_choice", "Next option", show=False),
        Binding("enter,space", "press_choice", "Toggle", show=False),
        Binding("up,left", "previous_choice", "Previous option", show=False),
    ]

    class Changed(Message):
        """Another choice was pressed: `index` is its position, `value` its value."""

        def __init__(self, choice_set: ChoiceSet, index: int) -> None:
            super().__init__()
            self.choice_set, self.index = choice_set, index
            self.value = choice_set.values[index]

        @property
        def control(self) -> ChoiceSet:
            return self.choice_set

    def __init__(self, choices: Sequence[tuple[str, Content]], value: str | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = [v for v, _label in choices]
        self._labels = [label.rstrip().pad(1, 1) for _v, label in choices]
        self.cursor = 0 if choices else None  # RadioSet starts with its cursor on the first button
        self.pressed_index = self.values.index(value) if value in self.values else -1  # one pressed at most, the first
        self.hover: int | None = None  # the choice under the mouse
        self._heights_for: tuple[int, list[int]] = (-1, [])  # (width, each choice's height): layout asks several times

    @property
    def value(self) -> str | None:
        return self.values[self.pressed_index] if self.pressed_index >= 0 else None

    @value.setter
    def value(self, value: str) -> None:
        """Press the choice `value`, as a RadioButton's value set to True presses it (the one pressed before is let go)."""
        self.press(self.values.index(value))

    def _choice(self, index: int) -> Content:
        """The choice's button and label, the label in the cursor's or the hover's style where it is under them."""
        label = self._labels[index]
        if index == self.cursor:
            label = label.stylize_before(self.get_visual_style("choice-set--cursor"))
        elif index == self.hover:
            label = label.stylize_before(_HOVER)
        dot = _DOT_ON if index == self.pressed_index else _DOT_OFF
        return Content.assemble(("▐", _SIDE), ("●", dot), ("▌", _SIDE), label)

    def render(self) -> Content:
        return Content("\n").join(self._choice(i) for i in range(len(self._labels)))

    def _heights(self, width: int) -> list[int]:
        """Each choice's height at `width`: pressed or not, under the cursor or not, its label wraps the same."""
        seen_width, heights = self._heights_for
        if seen_width != width:
            heights = [max(1, Content.assemble("▐●▌", label).get_height(self.styles, width)) for label in self._labels]
            self._heights_for = (width, heights)
        return heights

    def get_content_height(self, container, viewport, width: int) -> int:
        return sum(self._heights(width))

    def _at(self, event: events.MouseEvent) -> int | None:
        """The choice under the mouse, if any."""
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        top = 0
        for index, height in enumerate(self._heights(self.content_size.width)):
            if top <= offset.y < top + height:
                return index
            top += height
        return None

    def _move(self, to: int | None) -> None:
        if to != self.cursor:
            self.cursor = to
            self.refresh()

    def press(self, index: int) -> None:
        """Press the choice at `index` (a key, a click): it is on, the one pressed before is off, and the cursor
        moves to it. Pressing the pressed one changes nothing (RadioSet turns it straight back on)."""
        if index == self.pressed_index:
            return
        self.pressed_index = index
        self.cursor = index
        self.refresh()
        self.post_message(self.Changed(self, index))

    def action_next_choice(self) -> None:
        if self._labels:
            self._move(0 if self.cursor is None else (self.cursor + 1) % len(self._labels))

    def action_previous_choice(self) -> None:
        if self._labels:
            self._move(len(self._labels) - 1 if self.cursor is None else (self.cursor - 1) % len(self._labels))

    def action_press_choice(self) -> None:
        if self.cursor is not None:
            self.press(self.cursor)

    def on_click(self, event: events.Click) -> None:
        index = self._at(event)
        self._hover(index)
        if index is not None:
            self.press(index)
        self.focus()

    # The choice under the mouse is the hovered one after any mouse event, not only a move (as Textual moves the
    # hover from one RadioButton to another on a press or click without a move).
    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._hover(self._at(event))

    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._hover(self._at(event))

    def on_mouse_up(self, event: events.MouseUp) -> None:
        self._hover(self._at(event))

    def watch_mouse_hover(self, hover: bool) -> None:
        if not hover:
            self._hover(None)

    def _hover(self, index: int | None) -> None:
        if index != self.hover:
            self.hover = index
            self.refresh()

    def on_focus(self, event: events.Focus) -> None:
        self.refresh()

    def on_blur(self, event: events.Blur) -> None:
        self.refresh()
