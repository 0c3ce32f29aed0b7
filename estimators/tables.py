"""Where the data tables live (the top-level `rules/` folder, shipped as the `rules` package) and their one reader."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from .errors import EstimateError

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"


def rules_path(name: str) -> Path:
    return RULES_DIR / name


@cache
def read_table(name: str) -> dict:
    """rules/<name> parsed, read once per process: callers share the returned dict and must not change it.
    A missing, unreadable or malformed table is one EstimateError naming the file."""
    try:
        return tomllib.loads(rules_path(name).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise EstimateError(f"rules/{name} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EstimateError(f"cannot read rules/{name}: {getattr(exc, 'strerror', None) or exc}") from None
