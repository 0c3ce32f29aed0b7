"""Rows from each format, streamed: memory stays bounded by one row (at most MAX_ROW_BYTES) plus one read chunk,
whatever the file's size. A row that cannot be read is yielded with its problem instead of stopping the pass, so
the report can count them all; a file that is not data at all (binary, UTF-16, a parquet with a .jsonl name)
stops at once with one line.

Row numbers are 1-based: the line number in JSON lines (blank lines count, so an editor finds the row), the
record number after the header in CSV, the element number in a JSON array, the row number in parquet/arrow.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import AdvisorError
from .sources import Source

CHUNK = 1 << 20  # bytes per read
MAX_ROW_BYTES = 64 << 20  # a longer row is reported (row_too_long) and skipped, never held in memory
MAX_JSON_OBJECT_BYTES = 512 << 20  # a .json whose top level is an object (not an array) must be loaded whole
SNIFF_BYTES = 64 << 10
ARROW_BATCH = 1024

OnBytes = Callable[[int], None]


class Row:
    """One record as read: `value` is the parsed object (None when unreadable), `problem` a validate.KINDS key."""

    __slots__ = ("detail", "file", "number", "problem", "raw", "value")

    def __init__(self, number: int, value: Any, problem: str = "", detail: str = "", file: str = "", raw: bytes | None = None):
        self.number, self.value, self.problem, self.detail, self.file = number, value, problem, detail, file
        self.raw = raw  # the row's bytes where the format has them (JSON lines): duplicates are found by them


def _nothing(_: int) -> None:
    pass


def iter_rows(source: Source, on_bytes: OnBytes = _nothing, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[Row]:
    """Every row of every file of the source, numbered on across files (the message names the file too)."""
    offset = 0
    reader = {"jsonl": _jsonl, "json": _json, "csv": _csv, "parquet": _parquet, "arrow": _arrow}[source.format]
    for path in source.files:
        last = 0
        for row in reader(path, source, on_bytes, max_row_bytes):
            last = row.number
            row.number += offset
            if len(source.files) > 1:
                row.file = path.name
            yield row
        offset += last


# ------------------------------------------------------------------------------------------------ text files
def _open_binary(path: Path, source: Source) -> BinaryIO:
    return gzip.open(path, "rb") if source.compressed else open(path, "rb")


class _Counted(io.RawIOBase):
    """A binary stream that reports the bytes it has read from disk (the compressed bytes for .gz)."""

    def __init__(self, path: Path, source: Source, on_bytes: OnBytes):
        self._raw = open(path, "rb")
        self._inner: BinaryIO = gzip.GzipFile(fileobj=self._raw) if source.compressed else self._raw
        self._on_bytes, self._seen = on_bytes, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        pos = self._raw.tell()
        self._on_bytes(pos - self._seen)
        self._seen = pos
        return len(data)

    def close(self) -> None:
        self._inner.close()
        self._raw.close()
        super().close()


def sniff_text(head: bytes, path: Path, fmt: str) -> bytes:
    """Refuse what is not UTF-8 text before parsing it row by row; returns the head without a UTF-8 BOM."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or head[:2] in (b"\x00{", b"{\x00", b"\x00[", b"[\x00"):
        raise AdvisorError(f"{path} is UTF-16 text; save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)")
    if head.startswith(b"PAR1"):
        raise AdvisorError(f"{path} is a parquet file, not {fmt}: rename it to .parquet")
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        raise AdvisorError(f"{path} is an Arrow file, not {fmt}: rename it to .arrow")
    if head.startswith((b"\x1f\x8b", b"PK\x03\x04", b"\x28\xb5\x2f\xfd", b"BZh")):
        raise AdvisorError(f"{path} is compressed (gzip/zip/zstd/bzip2), not {fmt}: decompress it, or name a gzip file .{fmt}.gz")
    if b"\x00" in head:
        raise AdvisorError(f"{path} holds binary data (NUL bytes in the first {len(head):,} bytes), not {fmt} text")
    return head[3:] if head.startswith(codecs.BOM_UTF8) else head


def iter_lines(stream: BinaryIO, max_row_bytes: int, chunk: int = CHUNK) -> Iterator[tuple[int, bytes | None, int, bool]]:
    """(line number, the line without its newline or None when longer than max_row_bytes, its length, ended by a
    newline). Reads `chunk` bytes at a time; a line longer than the limit is skipped through to its newline
    without being kept, so a 2 GB single line costs max_row_bytes + chunk of memory, not 2 GB."""
    buf = bytearray()
    number, skipping, skipped = 0, False, 0
    while True:
        data = stream.read(chunk)
        if not data:
            break
        if skipping:
            cut = data.find(b"\n")
            if cut < 0:
                skipped += len(data)
                continue
            number += 1
            yield number, None, skipped + cut, True
            skipping, data = False, data[cut + 1 :]
        buf += data
        start = 0
        while True:
            cut = buf.find(b"\n", start)
            if cut < 0:
                break
            number += 1
            yield number, bytes(buf[start:cut]), cut - start, True
            start = cut + 1
        del buf[:start]
        if len(buf) > max_row_bytes:
            skipping, skipped = True, len(buf)
            buf = bytearray()
    if skipping:
        yield number + 1, None, skipped, False
    elif buf:
        yield number + 1, bytes(buf), len(buf), False


def _decode(raw: bytes) -> tuple[str, bool]:
    """(text, was valid UTF-8); invalid bytes become U+FFFD so the row can still be judged."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def _jsonl(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    with _Counted(path, source, on_bytes) as stream:
        head = stream.read(SNIFF_BYTES)
        body = sniff_text(head, path, "JSON lines")
        joined = io.BufferedReader(_Chain(body, stream), buffer_size=CHUNK)
        for number, raw, length, ended in iter_lines(joined, max_row_bytes):
            if raw is None:
                yield Row(number, None, "row_too_long", f"{length:,} bytes (the limit is {max_row_bytes:,})")
                continue
            if not raw.strip():
                continue
            text, valid = _decode(raw)
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                cut = "" if ended else " (the last line is cut off: the file ends inside it)"
                yield Row(number, None, "bad_json", f"{exc.msg} at column {exc.colno}{cut}")
                continue
            if not isinstance(value, dict):
                yield Row(number, None, "not_an_object", f"a JSON {type(value).__name__}, not an object with columns")
                continue
            yield Row(number, value, "" if valid else "non_utf8", "" if valid else "bytes that are not UTF-8", raw=raw.strip())


class _Chain(io.RawIOBase):
    """The sniffed head, then the rest of the stream."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        return len(data)


# A decoding error handler that counts: JSON arrays and CSV are decoded as streams, so a bad byte is noticed
# per row by the count moving, not by an exception that would end the file.
_BAD_BYTES = [0]


def _count_and_replace(exc: UnicodeDecodeError):
    _BAD_BYTES[0] += 1
    return "\ufffd", exc.end


codecs.register_error("advisor-count", _count_and_replace)


def _text_stream(path: Path, source: Source, on_bytes: OnBytes, what: str) -> io.TextIOWrapper:
    counted = _Counted(path, source, on_bytes)
    head = counted.read(SNIFF_BYTES)
    body = sniff_text(head, path, what)
    return io.TextIOWrapper(io.BufferedReader(_Chain(body, counted), buffer_size=CHUNK), encoding="utf-8", errors="advisor-count", newline="")


def _json(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    """A JSON array of objects, element by element (raw_decode on a sliding window); JSON lines saved as .json;
    or a top-level object holding the rows (loaded whole, up to MAX_JSON_OBJECT_BYTES)."""
    decoder = json.JSONDecoder()
    with _text_stream(path, source, on_bytes, "JSON") as text:
        buf, pos, eof = text.read(CHUNK), 0, False

        def more(need: int = CHUNK) -> bool:
            nonlocal buf, pos, eof
            data = text.read(max(need, CHUNK))
            if not data:
                eof = True
                return False
            buf, pos = buf[pos:] + data, 0
            return True

        def skip_ws() -> str:
            nonlocal pos
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    pos += 1
                if pos < len(buf) or not more():
                    return buf[pos] if pos < len(buf) else ""

        first = skip_ws()
        if first == "{":
            yield from _json_object_or_lines(path, source, max_row_bytes)
            return
        if first != "[":
            raise AdvisorError(f"{path} is not JSON: it starts with {first!r}, expected '[' (a list of rows) or '{{'" if first else f"{path} holds only whitespace")
        pos += 1
        number = 0
        while True:
            c = skip_ws()
            if c == "]":
                return
            if c == "":
                yield Row(number + 1, None, "bad_json", "the file ends inside the list (no closing ']'): it is cut off")
                return
            if number and c == ",":
                pos += 1
                c = skip_ws()
            elif number:
                yield Row(number + 1, None, "bad_json", f"expected ',' or ']' between rows, found {c!r}; the rest of the file is not read")
                return
            number += 1
            bad_before = _BAD_BYTES[0]
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if len(buf) - pos > max_row_bytes:
                        yield Row(number, None, "row_too_long", f"over {max_row_bytes:,} bytes; the rest of the file is not read")
                        return
                    if not more(len(buf) - pos):  # grow the window: each retry at least doubles it
                        yield Row(number, None, "bad_json", f"{exc.msg}: the file ends inside this row (cut off)")
                        return
            pos = end
            if not isinstance(value, dict):
                yield Row(number, None, "not_an_object", f"a JSON {type(value).__name__}, not an object with columns")
                continue
            valid = _BAD_BYTES[0] == bad_before
            yield Row(number, value, "" if valid else "non_utf8", "" if valid else "bytes that are not UTF-8")


def _json_object_or_lines(path: Path, source: Source, max_row_bytes: int) -> Iterator[Row]:
    with _open_binary(path, source) as f:
        head = f.read(SNIFF_BYTES)
    text = sniff_text(head, path, "JSON").decode("utf-8", errors="replace")
    # JSON lines saved as .json: one object, then a newline and another object
    try:
        _, end = json.JSONDecoder().raw_decode(text, text.index("{"))
        if text[end:].lstrip(" \t\r").startswith("\n") and text[end:].strip().startswith("{"):
            yield from _jsonl(path, source, _nothing, max_row_bytes)
            return
    except (json.JSONDecodeError, ValueError):
        pass
    if path.stat().st_size > MAX_JSON_OBJECT_BYTES:
        raise AdvisorError(f"{path}: a JSON object over {MAX_JSON_OBJECT_BYTES >> 20} MiB cannot be streamed; save the rows as JSON lines")
    with _open_binary(path, source) as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:
        raise AdvisorError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    rows = _rows_in_object(data)
    if rows is None:
        keys = ", ".join(list(data)[:6])
        raise AdvisorError(f"{path}: a JSON object, but not of rows (keys: {keys}); expected a list of objects, "
                           "an object with one list of rows (e.g. {\"train\": [...]}), or columns of equal length")
    for number, value in enumerate(rows, 1):
        if isinstance(value, dict):
            yield Row(number, value)
        else:
            yield Row(number, None, "not_an_object", f"a JSON {type(value).__name__}, not an object with columns")


def _rows_in_object(data: dict) -> list | None:
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    for key in ("train", "data", "rows", "examples", "instances"):
        if key in lists and all(isinstance(r, dict) for r in lists[key][:100]):
            return lists[key]
    if len(lists) == 1 and len(data) == 1:
        only = next(iter(lists.values()))
        if all(isinstance(r, dict) for r in only[:100]):
            return only
    if lists and len(lists) == len(data) and len({len(v) for v in lists.values()}) == 1:  # columns: {"prompt": [...], ...}
        keys = list(lists)
        return [dict(zip(keys, values)) for values in zip(*lists.values())]
    return None


def _csv(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    csv.field_size_limit(max_row_bytes)
    with _text_stream(path, source, on_bytes, "CSV") as text:
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
            bad_before = _BAD_BYTES[0]
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
            valid = _BAD_BYTES[0] == bad_before
            yield Row(number, dict(zip(header, fields)), "" if valid else "non_utf8", "" if valid else "bytes that are not UTF-8")


def _delimiter(sample: str, path: Path) -> str:
    default = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def csv_delimiter(path: Path, source: Source) -> str:
    """The delimiter the reader uses for a CSV file (a generated script passes it to load_dataset("csv", sep=...))."""
    with _text_stream(path, source, _nothing, "CSV") as text:
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


# ------------------------------------------------------------------------------------------------ columnar files
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


def _parquet(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
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


def _arrow(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
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
