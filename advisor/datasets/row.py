"""One record as a reader yields it (`Row`), and what every reader takes: the row size limit and the callback that
is told how many bytes of the file were read (the progress of `advisor data check`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_ROW_BYTES = 64 << 20  # a longer row is reported (row_too_long) and skipped, never held in memory

OnBytes = Callable[[int], None]


class Row:
    """One record as read: `value` is the parsed object (None when unreadable), `problem` a validate.KINDS key."""

    __slots__ = ("detail", "file", "number", "problem", "raw", "value")

    def __init__(self, number: int, value: Any, problem: str = "", detail: str = "", file: str = "", raw: bytes | None = None):
        self.number, self.value, self.problem, self.detail, self.file = number, value, problem, detail, file
        self.raw = raw  # the row's bytes where the format has them (JSON lines): duplicates are found by them


def ignore_bytes(_: int) -> None:
    """The progress callback of a read nobody watches."""
