"""The GPU table (`rules/gpus.toml`): usable memory, speed and price per card, looked up by id or name.

Loading is tolerant (the speed and price columns are optional: a card without them still prices memory, and
the time model says it cannot time it) and validated (a wrong type, a non-positive figure, an unknown key or a
missing required key is an EstimateError naming the row, never a traceback deep in the estimator).
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from .errors import EstimateError
from .gpu_card import INTERCONNECTS, Gpu
from .tables import rules_path
from .toml_cache import load_toml

_REQUIRED = ("id", "name", "memory_gib", "bf16", "source")
_TYPES = {f.name: f.type for f in fields(Gpu)}
_POSITIVE = ("memory_gib", "bf16_tflops", "fp16_tflops", "fp32_tflops", "memory_gbs", "interconnect_gbs", "pcie_gbs", "price_usd_per_hour")
_BOOLS = ("bf16", "consumer", "fp8", "flash_attention")
_STRINGS = ("id", "name", "source", "interconnect", "perf_source", "price_date", "price_source")


def _row_problems(row: dict) -> list[str]:
    where = f"gpus.toml [[gpu]] {row.get('id', '?')}"
    problems = [f"{where}: missing '{key}'" for key in _REQUIRED if key not in row]
    problems += [f"{where}: unknown key '{key}'" for key in sorted(set(row) - set(_TYPES))]
    for key in _BOOLS:
        if key in row and not isinstance(row[key], bool):
            problems.append(f"{where}: '{key}' must be true or false")
    for key in _STRINGS:
        if key in row and not isinstance(row[key], str):
            problems.append(f"{where}: '{key}' must be a string")
    for key in _POSITIVE:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"{where}: '{key}' must be a positive number")
    if row.get("interconnect", "pcie") not in INTERCONNECTS:
        problems.append(f"{where}: interconnect must be one of {', '.join(INTERCONNECTS)}")
    if "price_usd_per_hour" in row and not (row.get("price_date") and row.get("price_source")):
        problems.append(f"{where}: a price needs price_date and price_source")
    if any(k in row for k in ("bf16_tflops", "fp16_tflops", "fp32_tflops", "memory_gbs")) and not row.get("perf_source"):
        problems.append(f"{where}: speed figures need a perf_source")
    return problems


def load_gpus(path: Path) -> dict[str, Gpu]:
    """Read and validate a GPU table; every problem in one EstimateError."""
    try:
        data = load_toml(path)  # parsed once, then read back from the user's cache (estimators/toml_cache.py)
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8 (UnicodeDecodeError) or not TOML (TOMLDecodeError)
        raise EstimateError(f"cannot read {path.name}: {exc}") from None
    rows = data.get("gpu")
    if not isinstance(rows, list) or not rows:
        raise EstimateError(f"{path.name}: no [[gpu]] rows")
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        problems += _row_problems(row)
        if row.get("id") in seen:
            problems.append(f"gpus.toml [[gpu]]: duplicate row id '{row.get('id')}'")
        seen.add(row.get("id"))
    if problems:
        raise EstimateError("; ".join(problems))
    return {row["id"]: Gpu(**_gpu_fields(row)) for row in rows}


def _gpu_fields(row: dict) -> dict[str, Any]:
    """A checked table row as Gpu's keyword arguments: the figures as floats (TOML may write 80 for 80.0)."""
    return {k: (float(v) if k in _POSITIVE else v) for k, v in row.items()}


@cache
def gpus() -> dict[str, Gpu]:
    return load_gpus(rules_path("gpus.toml"))


def find_gpu(text: str) -> Gpu:
    """A GPU by id ('rtx4090'), by name as people or nvidia-smi say it ('4090', 'NVIDIA GeForce RTX 4090'), or
    as a memory size ('24GB' = sold as 24 GB, '23.5GiB' = usable as given); see estimators/gpu_names.py.

    A card given only by its memory size has no speed or price (the time model asks for a named card) and is
    not marked consumer."""
    from .gpu_names import resolve_gpu  # name parsing lives there; this module keeps the table

    return resolve_gpu(text, gpus())
