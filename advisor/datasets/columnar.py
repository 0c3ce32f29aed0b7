"""Rows of the columnar formats, parquet and Arrow (the files `datasets` saves), batch by batch with pyarrow
(an optional dependency: its absence is one line naming the extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import AdvisorError
from .row import OnBytes, Row
from .sources import Source

ARROW_BATCH = 1024


def _pyarrow(what: str):
    try:
        import pyarrow
    except ImportError:
        raise AdvisorError(f"reading {what} needs pyarrow, which is not installed: pip install 'advisor[data]' (or pyarrow)") from None
    return pyarrow


def _batches_to_rows(batches, total_rows: int, size: int, on_bytes: OnBytes) -> Iterator[Row]:
    number, reported = 0, 0
    for batch in batches:
        for value in batch.to_pylist():
            number += 1
            yield Row(number, value)
        if total_rows:  # columnar files are not read by byte offset: report the share of rows as bytes
            now = size * number // total_rows
            on_bytes(now - reported)
            reported = now
    on_bytes(size - reported)


def parquet_rows(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    pa = _pyarrow(".parquet files")
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise AdvisorError(f"{path} is not a readable parquet file ({_first_line(exc)})") from None
    with f:
        try:
            yield from _batches_to_rows(f.iter_batches(batch_size=ARROW_BATCH), f.metadata.num_rows, path.stat().st_size, on_bytes)
        except pa.ArrowException as exc:
            raise AdvisorError(f"{path}: parquet data cannot be read ({_first_line(exc)})") from None


def arrow_rows(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    """`datasets` writes the Arrow IPC stream format (save_to_disk and its cache); the file format is read too."""
    pa = _pyarrow("a saved datasets folder (.arrow files)")
    import pyarrow.ipc as ipc

    try:
        source_file = pa.memory_map(str(path))
        try:
            reader = ipc.open_stream(source_file)
            total = None
        except pa.ArrowInvalid:
            source_file.seek(0)
            reader = ipc.open_file(source_file)
            total = reader.num_record_batches
    except (pa.ArrowException, OSError) as exc:
        raise AdvisorError(f"{path} is not a readable Arrow file ({_first_line(exc)})") from None
    batches = reader if total is None else (reader.get_batch(i) for i in range(total))
    try:
        yield from _batches_to_rows(batches, 0, path.stat().st_size, on_bytes)
    except pa.ArrowException as exc:
        raise AdvisorError(f"{path}: Arrow data cannot be read ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
