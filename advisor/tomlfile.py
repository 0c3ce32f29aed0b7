"""Read a user's TOML file (answers, plan) with one-line errors for a missing or malformed file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import AdvisorError


def read_toml(path: Path, what: str) -> dict:
    if not path.is_file():
        raise AdvisorError(f"{what} {path} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AdvisorError(f"{path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:  # /proc/self/mem, a binary file, a permission problem
        raise AdvisorError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except RecursionError:
        raise AdvisorError(f"{path}: TOML nested too deeply to be an {what}") from None
