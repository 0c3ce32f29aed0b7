"""Widgets of the wizard: one per question declaration (questions.py), the memory bar, the step bar."""

from __future__ import annotations

from typing import TypeVar

W = TypeVar("W")


def compact(widget: W) -> W:
    """`widget` in its compact style, as `compact=True` gives it, set before it is mounted. Given to the constructor,
    compact=True toggles the widget's `-textual-compact` class there, and Textual restyles the widget on the spot (the
    whole stylesheet matched against it and each of its component styles), although mounting styles it again: on the
    first screen that is a tenth of all its styling. The same value and class, set without that restyle."""
    widget.set_reactive(type(widget).compact, True)  # type: ignore[attr-defined]
    widget.add_class("-textual-compact", update=False)  # type: ignore[attr-defined]
    return widget
