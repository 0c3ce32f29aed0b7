"""Rows of CSV and TSV files: the delimiter sniffed from the head, the header row checked, every record against the
header's field count, a field over the row limit reported instead of read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from ..errors import AdvisorError
from .row import OnBytes, Row, ignore_bytes
from .sources import Source
from .textio import SNIFF_BYTES, bad_bytes, text_stream


def csv_rows(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    csv.field_size_limit(max_row_bytes)
    with text_stream(path, source, on_bytes, "CSV") as text:
        sample = text.read(SNIFF_BYTES)
        delimiter = _delimiter(sample, path)
        records = csv.reader(_Prefixed(sample, text), delimiter=delimiter, doublequote=True, strict=False)
        try:
            header = next(records)
        except StopIteration:
            raise AdvisorError(f"{path} has no header row") from None
        except csv.Error as exc:
            raise AdvisorError(f"{path}: the header row is not CSV ({exc})") from None
        header = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]
        if len(set(header)) != len(header):
            dup = sorted({h for h in header if header.count(h) > 1})
            raise AdvisorError(f"{path}: the header names a column twice ({', '.join(dup)})")
        number = 0
        while True:
            bad_before = bad_bytes()
            try:
                fields = next(records)
            except StopIteration:
                return
            except csv.Error as exc:
                number += 1
                yield Row(number, None, "row_too_long" if "field larger" in str(exc) else "bad_csv", str(exc))
                continue
            number += 1
            if not fields:
                continue
            if len(fields) != len(header):
                sep = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}[delimiter]
                yield Row(number, None, "wrong_field_count", f"{len(fields)} field(s), the header has {len(header)} ({sep}-separated)")
                continue
            valid = bad_bytes() == bad_before
            yield Row(number, dict(zip(header, fields, strict=False)), "" if valid else "non_utf8", "" if valid else "bytes that are not UTF-8")


def _delimiter(sample: str, path: Path) -> str:
    default = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def csv_delimiter(path: Path, source: Source) -> str:
    """The delimiter the reader uses for a CSV file (a generated script passes it to load_dataset("csv", sep=...))."""
    with text_stream(path, source, ignore_bytes, "CSV") as text:
        return _delimiter(text.read(SNIFF_BYTES), path)


class _Prefixed:
    """Lines of the sniffed sample, then of the rest: csv.reader wants an iterator of lines."""

    def __init__(self, sample: str, rest: io.TextIOWrapper):
        self._lines = iter(io.StringIO(sample, newline=""))
        self._rest, self._carry = rest, ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        for line in self._lines:
            if line.endswith(("\n", "\r")):
                return line
            self._carry = line  # the sample ended inside this line: finish it from the stream
            break
        self._lines = iter(())
        line = self._carry + self._rest.readline()
        self._carry = ""
        if not line:
            raise StopIteration
        return line
