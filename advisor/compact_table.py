"""The compact tables of `advisor advise` (the stages, the time and cost): rich's box.SIMPLE_HEAD with no edge, no
outer padding and collapsed padding, so columns are two spaces apart under one header rule. One spec, drawn by rich
on a terminal and written here, character for character, when stdout is not one (advisor/plaintext.py); a table
wider than the stream (rich would fold its cells) raises plaintext.Unsupported and goes to rich."""

from __future__ import annotations

from typing import NamedTuple

from . import plaintext


class CompactSpec(NamedTuple):
    title: str
    headers: tuple[str, ...]
    right: tuple[bool, ...]  # right-justified columns (numbers); the others are left-justified
    rows: list[tuple[str, ...]]

    def to_rich(self):
        from rich import box
        from rich.table import Table

        table = Table(title=self.title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        for head, right in zip(self.headers, self.right, strict=True):
            table.add_column(head, overflow="fold", justify="right" if right else "left")
        for row in self.rows:
            table.add_row(*row)
        return table

    def plain_lines(self, width: int) -> list[str]:
        """What rich prints for the table at `width` on a stream that is not a terminal."""
        heads = [plaintext.plain(h) for h in self.headers]
        rows = [[plaintext.plain(c) for c in row] for row in self.rows]
        cells = [heads, *rows]
        if any("\n" in c for row in cells for c in row):
            raise plaintext.Unsupported("a cell of several lines")
        widths = [max(len(row[i]) for row in cells) for i in range(len(heads))]
        total = sum(widths) + 2 * (len(widths) - 1)  # a column's right padding and the space that divides columns
        if total > width or not all(widths):
            raise plaintext.Unsupported("a compact table that rich would fold to fit")

        def line(row: list[str]) -> str:
            return "  ".join(c.rjust(w) if right else c.ljust(w) for c, w, right in zip(row, widths, self.right, strict=True))

        title = [piece[:total].ljust(total) for piece in plaintext.wrap(plaintext.plain(self.title), total)] if self.title else []
        return title + [line(heads), "─" * total] + [line(row) for row in rows]
