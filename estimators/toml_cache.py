"""A bundled TOML file, parsed once and kept between runs: the parsed dict is stored with marshal in the user's
cache directory ($XDG_CACHE_HOME/advisor, else ~/.cache/advisor), under a key of the file's size, mtime and CRC-32.
The TOML stays the one source of truth: a changed file (any of the three) is parsed again and the cache rewritten;
a cache that cannot be read or written (no home, a read-only directory, a truncated file) is skipped silently.

Parsing rules/models.toml with tomllib costs several milliseconds on every `advisor estimate`, reading it back
from marshal a tenth of a millisecond, and tomllib itself is then not imported at all."""

from __future__ import annotations

import marshal
import os
import sys
import zlib
from pathlib import Path

# What a cache file's key starts with: bump it when the stored layout changes. marshal's format is the
# interpreter's, so the Python version is part of the key as well.
_FORMAT = ("advisor.toml_cache/1", marshal.version, sys.version_info[:2])


def cache_dir() -> Path | None:
    """The advisor's cache directory (not created here), or None when there is no home to put it in."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base).expanduser() if base else Path.home() / ".cache"
    except RuntimeError:  # no HOME and no password entry: run without a cache
        return None
    return root / "advisor"


def load_toml(path: Path) -> dict:
    """The parsed TOML file at `path`, from the cache when it holds this very file. Raises OSError when the file
    cannot be read and tomllib.TOMLDecodeError (a ValueError) when it is not TOML, as a fresh parse does."""
    with open(path, "rb") as f:
        raw = f.read()
        stat = os.fstat(f.fileno())
    key = (*_FORMAT, str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, zlib.crc32(raw))
    where = _cache_file(path)
    if where is not None:
        try:
            stored_key, data = marshal.loads(where.read_bytes())
            if stored_key == key:
                return data
        except (OSError, ValueError, EOFError, TypeError):  # absent, unreadable or not ours: parse afresh
            pass
    import tomllib  # only on a miss: most runs never import the parser

    data = tomllib.loads(raw.decode("utf-8"))
    if where is not None:
        _store(where, key, data)
    return data


def _cache_file(path: Path) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    # one file per source file: two checkouts (or an installed copy beside a source tree) do not evict each other
    tag = zlib.crc32(str(Path(path).resolve()).encode("utf-8", "surrogateescape"))
    return folder / f"{Path(path).stem}-{tag:08x}.marshal"


def _store(where: Path, key: tuple, data: dict) -> None:
    """Write the cache file through a temporary name, so a reader never sees half of it; skip it on any failure."""
    try:
        blob = marshal.dumps((key, data))
    except ValueError:  # a value marshal cannot hold (a TOML date): this file is parsed every time
        return
    tmp = where.with_name(f"{where.name}.{os.getpid()}.tmp")
    try:
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(blob)
        os.replace(tmp, where)
    except OSError:  # not writable (a read-only home, a full disk): the next run parses again
        try:
            tmp.unlink()
        except OSError:
            pass
