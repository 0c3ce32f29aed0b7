"""Rows from each format, streamed: memory stays bounded by one row (at most MAX_ROW_BYTES) plus one read chunk,
whatever the file's size. A row that cannot be read is yielded with its problem instead of stopping the pass, so
the report can count them all; a file that is not data at all (binary, UTF-16, a parquet with a .jsonl name)
stops at once with one line.

Row numbers are 1-based: the line number in JSON lines (blank lines count, so an editor finds the row), the
record number after the header in CSV, the element number in a JSON array, the row number in parquet/arrow.

The formats: jsonrows.py (JSON lines, JSON), csvrows.py (CSV, TSV), columnar.py (parquet, Arrow), over textio.py (the
byte level of the text formats); row.py holds the `Row` they yield.
"""

from __future__ import annotations

from collections.abc import Iterator

from .columnar import arrow_rows, parquet_rows
from .csvrows import csv_rows
from .jsonrows import json_rows, jsonl_rows
from .row import MAX_ROW_BYTES, OnBytes, Row, ignore_bytes
from .sources import Source


def iter_rows(source: Source, on_bytes: OnBytes = ignore_bytes, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[Row]:
    """Every row of every file of the source, numbered on across files (the message names the file too)."""
    offset = 0
    reader = {"jsonl": jsonl_rows, "json": json_rows, "csv": csv_rows, "parquet": parquet_rows, "arrow": arrow_rows}[source.format]
    for path in source.files:
        last = 0
        for row in reader(path, source, on_bytes, max_row_bytes):
            last = row.number
            row.number += offset
            if len(source.files) > 1:
                row.file = path.name
            yield row
        offset += last
