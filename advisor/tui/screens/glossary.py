"""The glossary (rules/glossary.toml), one key away on every step (Ctrl+G); Escape or Ctrl+G closes it."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from ..i18n import localize_bindings, t
from ..state import short_source


def glossary_table(lang: str) -> Table:
    from ... import rules

    table = Table(show_header=False, box=None, expand=True, padding=(0, 1))
    # overflow="fold", not the default "ellipsis": rich wraps a line so that its words fit but keeps the space
    # after the last one, and the ellipsis step then measures that space and cuts the last character to make
    # room ("학습" became "학 …" at 100 columns). Fold only ever moves characters to the next line.
    table.add_column(style="bold cyan", ratio=1, no_wrap=False, overflow="fold")
    table.add_column(ratio=3, overflow="fold")
    for row in rules.glossary().values():
        source = escape(short_source(row.get("source", "")))
        table.add_row(escape(row["term"]), f"{escape(rules.text(row, 'definition', lang))} [dim]({source})[/dim]")
    return table


class GlossaryScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close")]
    AUTO_FOCUS = "#glossary-scroll"

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang

    def compose(self) -> ComposeResult:
        with Vertical(id="glossary-box"):
            yield Label(f"{t('glossary', self.lang)}  [dim](Esc / ^g: {t('close', self.lang)})[/dim]", id="glossary-title")
            with VerticalScroll(id="glossary-scroll"):
                yield Static(glossary_table(self.lang))

    def on_mount(self) -> None:
        localize_bindings(self, self.lang)
