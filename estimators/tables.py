"""Where the data tables live (the top-level `rules/` folder, shipped as the `rules` package) and their one reader."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .errors import EstimateError
from .toml_cache import load_toml

RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"


def rules_path(name: str) -> Path:
    return RULES_DIR / name


@cache
def read_table(name: str) -> dict:
    """rules/<name> parsed, read once per process: callers share the returned dict and must not change it.
    A missing, unreadable or malformed table is one EstimateError naming the file. Parsed through the user's cache
    (estimators/toml_cache.py), so most runs never import tomllib."""
    try:
        return load_toml(rules_path(name))
    except UnicodeDecodeError as exc:  # a ValueError too: caught before the parser's
        raise EstimateError(f"cannot read rules/{name}: {exc}") from None
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise EstimateError(f"rules/{name} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise EstimateError(f"cannot read rules/{name}: {getattr(exc, 'strerror', None) or exc}") from None
