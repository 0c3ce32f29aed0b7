"""What rich prints when stdout is not a terminal, without importing rich: the same words wrapped at the same
width, the same tables with the same box characters, character for character (tests/test_plaintext.py compares the
two). Importing and running rich costs `advisor estimate | less` more than the whole estimate.

Only a subset is laid out here: the markup tags render.py and `advisor advise` write, rich's escaped brackets,
and text whose every character is one cell wide. Anything else (another tag, a '[' in a model name, an emoji code,
wide characters, a terminal narrower than MIN_WIDTH, a stream that is not UTF-8, FORCE_COLOR) raises Unsupported,
and the caller prints with rich.
The layout rules are rich 15's (MIT licence): rich/_wrap.py divide_line, Text.wrap, Table._calculate_column_widths
and _collapse_widths, rich/_ratio.py ratio_reduce, the HEAVY_HEAD box.
"""

from __future__ import annotations

import os
import re
import sys

MIN_WIDTH = 60  # narrower than this, cells may need rich's ellipsis and folding rules in full: use rich itself
# rich.markup's tag pattern (with the backslashes before it), and the style tags render.py and advise.py write
_MARKUP = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]")
STYLES = frozenset({"bold", "dim", "green", "red", "yellow", "bold yellow"})
# rich replaces :name: with an emoji when the name is one of its codes; any such pattern goes to rich
_EMOJI = re.compile(r":\S*?:")
# printable ASCII and the few one-cell characters the estimate and the advice print (tests/test_plaintext.py checks their width)
ONE_CELL = frozenset(map(chr, range(0x20, 0x7F))) | frozenset("→–—×…·≈±≤≥µ•§“”")
_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")

# HEAVY_HEAD: top, header cells, under the header, body cells, a section's rule, bottom
_TOP, _HEAD, _HEAD_ROW, _BODY, _SECTION, _BOTTOM = "┏━┳┓", "┃┃┃", "┡━╇┩", "│││", "├─┼┤", "└─┴┘"


class Unsupported(Exception):
    """Text this module cannot promise to lay out as rich does."""


def wanted(stream=None) -> bool:
    """Whether rich would treat `stream` (stdout) as no terminal, writing plain UTF-8 text without colour codes."""
    stream = stream or sys.stdout
    env = os.environ
    if env.get("FORCE_COLOR") is not None or env.get("TTY_COMPATIBLE", "") == "1" or "JUPYTER_COLUMNS" in env:
        return False
    try:
        if stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    return str(getattr(stream, "encoding", "") or "").lower().replace("-", "").startswith("utf")


def console_width() -> int:
    """rich's Console width: COLUMNS when it is a number, else the terminal stdin, stdout or stderr is on, else 80."""
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
            break
        except (AttributeError, ValueError, OSError):
            pass
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


_ESCAPE = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(text: str) -> str:
    """rich.markup.escape without importing rich: a bracket that would read as a tag gets a backslash before it."""
    text = _ESCAPE.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def plain(markup: str) -> str:
    """The text of a markup string, as rich prints it: the known style tags dropped, an escaped bracket (rich.markup
    escape's one backslash) kept as a bracket; Unsupported for anything else."""

    def tag(match: re.Match) -> str:
        slashes, name = match.groups()
        if slashes == "\\":
            return "\0[" + name + "]"  # marked, so the check below tells it from a bracket rich would read as a tag
        if slashes or name.removeprefix("/") not in STYLES:
            raise Unsupported(markup)
        return ""

    if "\0" in markup:
        raise Unsupported(markup)
    text = _MARKUP.sub(tag, markup)
    rest = text.replace("\0[", "")
    if "[" in rest or "\\" in rest or _EMOJI.search(rest) or not set(rest) <= ONE_CELL | {"\n"}:
        raise Unsupported(markup)
    return text.replace("\0[", "[")


def wrap(text: str, width: int, fold: bool = True) -> list[str]:
    """rich's divide_line + Text.wrap for one-cell text: break before the word that does not fit; a word longer
    than the width is folded (fold) or left whole for the caller to cut with an ellipsis."""
    lines = []
    for line in text.split("\n"):
        breaks, offset = [], 0
        for match in _WORD.finditer(line):
            start, word = match.start(), match.group(0)
            length = len(word.rstrip())
            if width - offset >= length:
                offset += len(word)
            elif length > width:
                if fold:
                    chunks = [word[i : i + width] for i in range(0, len(word), width)]
                    for i, chunk in enumerate(chunks):
                        if start:
                            breaks.append(start)
                        if i == len(chunks) - 1:
                            offset = len(chunk)
                        else:
                            start += len(chunk)
                else:
                    if start:
                        breaks.append(start)
                    offset = len(word)
            elif offset and start:
                breaks.append(start)
                offset = len(word)
        for a, b in zip([0, *breaks], [*breaks, len(line)], strict=False):
            piece = line[a:b]
            if len(piece) > width:  # Text.rstrip_end: trailing whitespace beyond the width goes
                space = _TRAILING_SPACE.search(piece)
                if space:
                    piece = piece[: len(piece) - min(len(space.group(0)), len(piece) - width)]
            lines.append(piece)
    return lines


def paragraph(markup: str, width: int) -> list[str]:
    """console.print(markup): wrapped at the width, trailing spaces inside it kept, nothing padded."""
    return [line[:width] for line in wrap(plain(markup), width)]


def _cell(text: str, width: int) -> list[str]:
    """A table cell's lines, padded to `width` (left-justified, ellipsis overflow)."""
    out = []
    for line in wrap(text, width, fold=False):
        if len(line) > width:
            line = line[: width - 1] + "…"
        out.append(line.ljust(width))
    return out


def _ratio_reduce(total: int, ratios: list[int], maximums: list[int], values: list[int]) -> list[int]:
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=False)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    out = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=False):
        if ratio and total_ratio > 0:
            cut = min(maximum, round(ratio * total / total_ratio))
            out.append(value - cut)
            total -= cut
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _column_widths(cells: list[list[str]], max_width: int) -> list[int]:
    """Table._calculate_column_widths for columns of text cells with one cell of padding each side."""
    widths = []
    for column in cells:
        longest = max(max((len(line) for line in c.split("\n")), default=0) for c in column)
        widths.append(min(longest + 2, max_width) or 1)
    if sum(widths) > max_width:
        excess = sum(widths) - max_width
        while excess > 0:  # Table._collapse_widths: shave the widest columns down to the next widest
            widest = max(widths)
            second = max((w for w in widths if w != widest), default=0)
            if not widest - second:
                break
            ratios = [1 if w == widest else 0 for w in widths]
            widths = _ratio_reduce(excess, ratios, [min(excess, widest - second)] * len(widths), widths)
            excess = sum(widths) - max_width
        if sum(widths) > max_width:
            widths = _ratio_reduce(sum(widths) - max_width, [1] * len(widths), widths, widths)
    return widths


def table(title: str, headers: tuple[str, ...], rows: list, width: int) -> list[str]:
    """A rich Table(*headers, title=title, title_justify="left"), rows added in order, None for add_section()."""
    body = [tuple(plain(c) for c in row) if row is not None else None for row in rows]
    heads = tuple(plain(h) for h in headers)
    columns = [[heads[i]] + [row[i] for row in body if row is not None] for i in range(len(heads))]
    widths = _column_widths(columns, width - 2 - (len(heads) - 1))
    total = sum(widths) + 2 + len(heads) - 1
    out = [line[:total].ljust(total) for line in wrap(plain(title), total)] if title else []
    out.append(_TOP[0] + _TOP[2].join(_TOP[1] * w for w in widths) + _TOP[3])

    def emit(cells: tuple[str, ...], edge: str, bottom: bool) -> None:
        shaped = [_cell(c, w - 2) for c, w in zip(cells, widths, strict=False)]
        height = max(len(s) for s in shaped)
        blank = [" " * (w - 2) for w in widths]
        # the header row aligns its cells to the bottom, body rows to the top
        shaped = [([b] * (height - len(s)) + s) if bottom else (s + [b] * (height - len(s))) for s, b in zip(shaped, blank, strict=False)]
        for i in range(height):
            out.append(edge[0] + edge[1].join(f" {s[i]} " for s in shaped) + edge[2])

    def rule(chars: str) -> None:
        out.append(chars[0] + chars[2].join(chars[1] * w for w in widths) + chars[3])

    emit(heads, _HEAD, bottom=True)
    rule(_HEAD_ROW)
    for i, row in enumerate(body):
        if row is None:
            continue
        emit(row, _BODY, bottom=False)
        if i + 1 < len(body) and body[i + 1] is None and i + 2 <= len(body) - 1:
            rule(_SECTION)  # add_section() ends the row before it, unless that row is the last
    rule(_BOTTOM)
    return [line[:width] for line in out]
