"""Rows of JSON files: JSON lines line by line, a JSON array element by element (a sliding window, never the
whole file), JSON lines saved as .json, and a top-level object that holds the rows (loaded whole, within a limit)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import AdvisorError
from .row import OnBytes, Row, ignore_bytes
from .sources import Source
from .textio import CHUNK, SNIFF_BYTES, Chain, Counted, bad_bytes, decode_utf8, iter_lines, open_binary, sniff_text, text_stream

MAX_JSON_OBJECT_BYTES = 512 << 20  # a .json whose top level is an object (not an array) must be loaded whole


def jsonl_rows(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    with Counted(path, source, on_bytes) as stream:
        head = stream.read(SNIFF_BYTES)
        body = sniff_text(head, path, "JSON lines")
        joined = io.BufferedReader(Chain(body, stream), buffer_size=CHUNK)
        for number, raw, length, ended in iter_lines(joined, max_row_bytes):
            if raw is None:
                yield Row(number, None, "row_too_long", f"{length:,} bytes (the limit is {max_row_bytes:,})")
                continue
            if not raw.strip():
                continue
            text, valid = decode_utf8(raw)
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


def json_rows(path: Path, source: Source, on_bytes: OnBytes, max_row_bytes: int) -> Iterator[Row]:
    """A JSON array of objects, element by element (raw_decode on a sliding window); JSON lines saved as .json;
    or a top-level object holding the rows (loaded whole, up to MAX_JSON_OBJECT_BYTES)."""
    decoder = json.JSONDecoder()
    with text_stream(path, source, on_bytes, "JSON") as text:
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
            raise AdvisorError(
                f"{path} is not JSON: it starts with {first!r}, expected '[' (a list of rows) or '{{'" if first else f"{path} holds only whitespace"
            )
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
            bad_before = bad_bytes()
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
            valid = bad_bytes() == bad_before
            yield Row(number, value, "" if valid else "non_utf8", "" if valid else "bytes that are not UTF-8")


def _json_object_or_lines(path: Path, source: Source, max_row_bytes: int) -> Iterator[Row]:
    with open_binary(path, source) as f:
        head = f.read(SNIFF_BYTES)
    text = sniff_text(head, path, "JSON").decode("utf-8", errors="replace")
    # JSON lines saved as .json: one object, then a newline and another object
    try:
        _, end = json.JSONDecoder().raw_decode(text, text.index("{"))
        if text[end:].lstrip(" \t\r").startswith("\n") and text[end:].strip().startswith("{"):
            yield from jsonl_rows(path, source, ignore_bytes, max_row_bytes)
            return
    except (json.JSONDecodeError, ValueError):
        pass
    if path.stat().st_size > MAX_JSON_OBJECT_BYTES:
        raise AdvisorError(f"{path}: a JSON object over {MAX_JSON_OBJECT_BYTES >> 20} MiB cannot be streamed; save the rows as JSON lines")
    with open_binary(path, source) as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8-sig", errors="replace"))
    except json.JSONDecodeError as exc:
        raise AdvisorError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    rows = _rows_in_object(data)
    if rows is None:
        keys = ", ".join(list(data)[:6])
        raise AdvisorError(
            f"{path}: a JSON object, but not of rows (keys: {keys}); expected a list of objects, "
            'an object with one list of rows (e.g. {"train": [...]}), or columns of equal length'
        )
    for number, value in enumerate(rows, 1):
        if isinstance(value, dict):
            yield Row(number, value)
        else:
            yield Row(number, None, "not_an_object", f"a JSON {type(value).__name__}, not an object with columns")


def rows_key(data: dict) -> str | None:
    """The key of a JSON object under which its rows are a list of objects ({"train": [...]}), else None. The
    script's loader needs it too (datasets' json builder: field=KEY)."""
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    for key in ("train", "data", "rows", "examples", "instances"):
        if key in lists and all(isinstance(r, dict) for r in lists[key][:100]):
            return key
    if len(lists) == 1 and len(data) == 1:
        key, only = next(iter(lists.items()))
        if all(isinstance(r, dict) for r in only[:100]):
            return key
    return None


def object_rows_key(path: Path, source: Source) -> str | None:
    """rows_key of the JSON object in `path`; None for a list, JSON lines or columns."""
    with open_binary(path, source) as f:
        head = f.read(SNIFF_BYTES)
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") or path.stat().st_size > MAX_JSON_OBJECT_BYTES:
        return None
    with open_binary(path, source) as f:
        try:
            data = json.loads(f.read().decode("utf-8-sig", errors="replace"))
        except json.JSONDecodeError:
            return None
    return rows_key(data) if isinstance(data, dict) else None


def _rows_in_object(data: dict) -> list | None:
    key = rows_key(data)
    if key is not None:
        return data[key]
    lists = {k: v for k, v in data.items() if isinstance(v, list)}
    if lists and len(lists) == len(data) and len({len(v) for v in lists.values()}) == 1:  # columns: {"prompt": [...], ...}
        keys = list(lists)
        return [dict(zip(keys, values, strict=False)) for values in zip(*lists.values(), strict=False)]
    return None
