"""The frame's own widgets (screens/base.py): the Back/Next buttons and the key bar, each drawn as the Textual widget
it stands for draws itself (Button, Footer), for less of the first frame's work.

`NavButton` is a Button styled by only the rules of Button's DEFAULT_CSS that a default or primary, compact,
non-flat button uses (`inherit_css=False`): Button's 57 rules, most of them for the flat style and the success,
warning and error variants, are then neither parsed before the first frame nor matched against the two buttons
each time they are styled. Everything else is Button's (keys, mouse, Pressed, the label).

`KeyBar` is the Footer's row of keys as one widget: the Footer mounts a FooterKey per binding, each with two
component styles that Textual styles as nodes of their own, and recomposes them when the bindings change (the
first focus, before the first frame); the bar draws the same keys, in the Footer's colours, from the screen's active
bindings, and redraws when they change. A click on a key presses it (a disabled one rings the bell), as on a
FooterKey; the key under the mouse gets the FooterKey's hover background.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button

if TYPE_CHECKING:
    from textual.widgets.button import ButtonVariant


class NavButton(Button, inherit_css=False):  # type: ignore[call-arg]  # a Textual class keyword mypy does not see
    # Button.DEFAULT_CSS (Textual 8), the rules of `-style-default` without the success/warning/error variants,
    # and of `:ansi.-style-default`; the type selector renamed (with inherit_css=False only NavButton matches).
    # A NavButton is always drawn compact (the wizard's buttons are). Button's compact rule,
    # `&.-style-default.-textual-compact {border: none !important}`, overrides every border those rules set but the
    # two `!important` ones of a disabled or pressed button in ANSI colour (their selectors are the more specific):
    # only those two are here, and no compact rule (with no other border, the border is none; each rule or
    # declaration here is parsed before the first frame and each rule matched whenever a button is styled).
    DEFAULT_CSS = """
    NavButton:ansi.-style-default {
        background: ansi_default;
        &:disabled {
            text-opacity: 1;
            text-style: bold dim;
            border: tall $border-blurred !important;
            background: ansi_default !important;
            pointer: not-allowed;
            &:hover {
                background: ansi_default;
            }
        }
        &:hover {
            background: $ansi-background;
        }
        &.-active {
            background: $ansi-background !important;
            border: blank $background !important;
            tint: transparent;
        }
        &.-primary {
            color: $primary;
            background: ansi_default;
            &:hover {
                background: $ansi-background;
            }
        }
    }
    NavButton {
        width: auto;
        min-width: 16;
        height: auto;
        line-pad: 1;
        text-align: center;
        content-align: center middle;
        pointer: pointer;
        &.-style-default {
            text-style: bold;
            color: $button-foreground;
            background: $surface;
            &:disabled {
                text-opacity: 0.6;
                pointer: not-allowed;
            }
            &:focus {
                text-style: $button-focus-text-style;
                background-tint: $foreground 5%;
            }
            &:hover {
                background: $surface-darken-1;
            }
            &.-active {
                background: $surface;
                tint: $background 30%;
            }
            &.-primary {
                color: $button-color-foreground;
                background: $primary;
                &:hover {
                    background: $primary-darken-2;
                }
                &.-active {
                    background: $primary;
                }
            }
        }
    }
    """

    def __init__(self, label: str, variant: ButtonVariant = "default", *, classes: str | None = None, **kwargs: Any) -> None:
        # Button's watchers add `-style-default` (not flat) and `-<variant>` as the button is built and mounted, and
        # each add restyles it on the spot, before it is styled for its mount anyway; given here, the classes are
        # there already and the watchers' adds change nothing (Button gives a default button no `-default`).
        own = "-style-default" + ("" if variant == "default" else f" -{variant}")
        super().__init__(label, variant, classes=f"{own} {classes}" if classes else own, **kwargs)


# FooterKey's look (Textual 8, widgets/_footer.py): the key bold in $footer-key-foreground with one space each side,
# the description in $footer-description-foreground and one space after it; a hovered key on
# $block-hover-background, a disabled one dim. (Their backgrounds are the Footer's: FooterKey's are transparent.)
_KEY = "bold $footer-key-foreground on $footer-key-background"
_DESCRIPTION = "$footer-description-foreground on $footer-description-background"
_ITEM = "on $footer-item-background"
_HOVER = "$footer-key-foreground on $block-hover-background"


class KeyBar(Widget):
    """The key footer of a step: the screen's shown bindings, one per action, as Footer(compact=False) shows them."""

    ALLOW_SELECT = False
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
    }
    """

    _hover: int | None = None  # the key under the mouse

    def keys(self) -> list[tuple[Binding, bool, str]]:
        """(binding, enabled, tooltip) per action shown, in the Footer's order (its first binding of each action)."""
        shown: dict[str, tuple[Binding, bool, str]] = {}
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show:
                shown.setdefault(binding.action, (binding, enabled, tooltip))
        return list(shown.values())

    def _cells(self) -> list[tuple[int, int, Binding, bool, str, Content]]:
        """Each key's (start, end) cells, its binding, enabled, tooltip and its text (unstyled)."""
        cells, x = [], 0
        for binding, enabled, tooltip in self.keys():
            text = Content.assemble((f" {self.app.get_key_display(binding)} ", _KEY), (f"{binding.description} ", _DESCRIPTION))
            cells.append((x, x + text.cell_length, binding, enabled, tooltip, text))
            x += text.cell_length
        return cells

    def render(self) -> Content:
        parts = []
        for i, (_start, _end, _binding, enabled, _tooltip, text) in enumerate(self._cells()):
            text = text.stylize_before(_HOVER if i == self._hover else _ITEM)
            parts.append(text if enabled else text.stylize("dim"))
        return Content.assemble(*parts)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen) -> None:
        self.refresh()

    def _at(self, x: int) -> tuple[int, Binding, bool, str] | None:
        for i, (start, end, binding, enabled, tooltip, _text) in enumerate(self._cells()):
            if start <= x < end:
                return i, binding, enabled, tooltip
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._hover_at(event.x)

    def watch_mouse_hover(self, hover: bool) -> None:
        """Also without a move: the mouse over the bar of a screen just shown (a click on a key that changed step)."""
        self._hover_at(self.app.mouse_position.x - self.region.x if hover else None)

    def _hover_at(self, x: int | None) -> None:
        hit = None if x is None else self._at(x)
        hover = None if hit is None else hit[0]
        if hover != self._hover:
            self._hover = hover
            self.styles.pointer = "default" if hit is None else "pointer"
            self.tooltip = (hit[3] or None) if hit is not None else None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        hit = self._at(event.x)
        if hit is None:
            return
        _i, binding, enabled, _tooltip = hit
        if enabled:
            self.app.simulate_key(binding.key)
        else:
            self.app.bell()
