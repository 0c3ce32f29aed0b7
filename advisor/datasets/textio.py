"""The byte level under the text formats (JSON lines, JSON, CSV): files opened plain or gzip, bytes read counted
for the progress, the head sniffed so that binary, UTF-16 or misnamed files stop with one line, lines read in bounded
memory, and UTF-8 decoding that counts bad bytes instead of failing."""

from __future__ import annotations

import codecs
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import AdvisorError
from .row import OnBytes
from .sources import Source

CHUNK = 1 << 20  # bytes per read
SNIFF_BYTES = 64 << 10


def open_binary(path: Path, source: Source) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if source.compressed else open(path, "rb")


class Counted(io.RawIOBase):
    """A binary stream that reports the bytes it has read from disk (the compressed bytes for .gz)."""

    def __init__(self, path: Path, source: Source, on_bytes: OnBytes):
        self._raw = open(path, "rb")
        self._inner: io.BufferedIOBase = gzip.GzipFile(fileobj=self._raw) if source.compressed else self._raw
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


def decode_utf8(raw: bytes) -> tuple[str, bool]:
    """(text, was valid UTF-8); invalid bytes become U+FFFD so the row can still be judged."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


class Chain(io.RawIOBase):
    """The sniffed head, then the rest of the stream."""

    def __init__(self, head: bytes, rest: io.RawIOBase):
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


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):  # a decoding handler: any other error is raised as it came
        raise exc
    _BAD_BYTES[0] += 1
    return "\ufffd", exc.end


codecs.register_error("advisor-count", _count_and_replace)


def text_stream(path: Path, source: Source, on_bytes: OnBytes, what: str) -> io.TextIOWrapper:
    """The file as UTF-8 text after its sniffed head; bad bytes become U+FFFD and are counted (`bad_bytes`)."""
    counted = Counted(path, source, on_bytes)
    head = counted.read(SNIFF_BYTES)
    body = sniff_text(head, path, what)
    return io.TextIOWrapper(io.BufferedReader(Chain(body, counted), buffer_size=CHUNK), encoding="utf-8", errors="advisor-count", newline="")


def bad_bytes() -> int:
    """How many undecodable bytes the text streams have replaced so far (compare before and after a row)."""
    return _BAD_BYTES[0]
