"""A stacked bar of the memory one stage needs, per category, against the card's capacity."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from ..i18n import CATEGORY_LABELS, phase_name, pick, t
from ..plan_calls import MemoryView

GIB = 1024**3
# One colour per category, in the order the estimator lists them; "overhead" is what the card adds on top.
COLORS = {
    "parameters": "dodger_blue2",
    "gradients": "medium_purple",
    "optimizer": "dark_orange",
    "activations": "green3",
    "temporaries": "gold3",
    "other": "grey50",
    "overhead": "grey35",
}
FULL = "█"
FREE = "░"
MARK = "│"


def bar_text(view: MemoryView, width: int, lang: str) -> Text:
    """Line 1: the bar (scale = the larger of need and capacity, capacity marked). Line 2: the scale.
    Then the legend, one entry per non-empty category."""
    width = max(10, width)
    scale = max(view.capacity, view.device, 1)
    cells: list[tuple[str, str]] = []  # (char, style) per cell
    edges, total = [], 0
    for name, nbytes in view.segments.items():
        if nbytes <= 0:
            continue
        total += nbytes
        edges.append((name, round(total / scale * width)))
    start = 0
    for name, end in edges:
        cells += [(FULL, COLORS.get(name, "white"))] * max(0, end - start)
        start = max(start, end)
    cells += [(FREE, "grey23")] * (width - len(cells))
    cap_cell = min(width - 1, max(0, round(view.capacity / scale * width) - 1))
    over = not view.fits
    bar = Text()
    for i, (ch, style) in enumerate(cells[:width]):
        if i == cap_cell:
            bar.append(MARK, style="bold red" if over else "bold white")
        elif over and i > cap_cell:
            bar.append(ch, style=f"{style} on dark_red")
        else:
            bar.append(ch, style=style)
    bar.append("\n")
    bar.append(t("bar_scale", lang, cap=view.capacity / GIB, need=view.device / GIB, phase=phase_name(view.phase, lang)), style="dim")
    bar.append("\n")
    first = True
    for name, nbytes in view.segments.items():
        if nbytes <= 0:
            continue
        if not first:
            bar.append("  ")
        first = False
        bar.append("■ ", style=COLORS.get(name, "white"))
        bar.append(f"{pick(CATEGORY_LABELS.get(name, (name, name)), lang)} {nbytes / GIB:.1f}")
    bar.append(" GiB", style="dim")
    return bar


class MemoryBar(Widget):
    """Draws a MemoryView: the bar, its scale, the legend and the verdict. `show()` redraws; the layout is only
    recomputed when the number of lines changes (a live re-estimate repaints this widget alone)."""

    def __init__(self, lang: str = "en", **kwargs) -> None:
        super().__init__(**kwargs)
        self.lang = lang
        self.view: MemoryView | None = None
        self._lines = 0

    def show(self, view: MemoryView) -> None:
        self.view = view
        width = self.content_size.width
        lines = len(self.render().wrap(self.app.console, width)) if width else -1
        self.refresh(layout=lines != self._lines)
        self._lines = lines

    def render(self) -> Text:
        if self.view is None:
            return Text(t("loading", self.lang), style="dim")
        text = bar_text(self.view, self.content_size.width or 60, self.lang)
        text.append("\n")
        text.append_text(verdict_text(self.view, self.lang))
        return text


def verdict_text(view: MemoryView, lang: str) -> Text:
    """'✓ fits on X: 2.5 GiB to spare' in green, or '✗ does not fit on X: 24.9 GiB over' in red; the estimator's
    warnings after it."""
    if view.fits:
        text = Text("✓ " + t("fits", lang, gpu=view.gpu, gib=round(view.headroom / GIB, 2)), style="bold green")
    else:
        text = Text("✗ " + t("no_fit", lang, gpu=view.gpu, gib=round(-view.headroom / GIB, 2)), style="bold red")
    if view.warnings:
        text.append("  ⚠ " + "; ".join(view.warnings), style="yellow")
    return text
