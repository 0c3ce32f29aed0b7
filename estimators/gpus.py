"""The GPU table (`rules/gpus.toml`): usable memory per card, looked up by id or name."""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from functools import cache

from .dtypes import GIB
from .errors import EstimateError
from .tables import rules_path


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    memory_gib: float
    bf16: bool
    source: str

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB


@cache
def gpus() -> dict[str, Gpu]:
    rows = tomllib.loads(rules_path("gpus.toml").read_text(encoding="utf-8"))["gpu"]
    return {row["id"]: Gpu(**row) for row in rows}


def _normal(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def find_gpu(text: str) -> Gpu:
    """A GPU by id ('rtx4090'), by name ('RTX 4090') or as raw memory ('24GB', '24gib')."""
    table = gpus()
    key = _normal(text)
    for gpu in table.values():
        if key in (_normal(gpu.id), _normal(gpu.name)) or key == _normal(gpu.name.replace("NVIDIA", "")):
            return gpu
    memory = _parse_memory(text)
    if memory:
        return Gpu(id=f"{text}", name=f"{memory:g} GiB card", memory_gib=memory, bf16=True, source="given by the user")
    close = difflib.get_close_matches(text.lower(), list(table), n=4, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}? " if close else ""
    raise EstimateError(f"unknown GPU '{text}'; {hint}valid: {', '.join(table)} or a memory size like 24GB")


def _parse_memory(text: str) -> float:
    low = text.strip().lower()
    for unit in ("gib", "gb", "g"):
        if low.endswith(unit):
            try:
                value = float(low[: -len(unit)])
            except ValueError:
                return 0.0
            if value <= 0:
                raise EstimateError(f"GPU memory must be positive, got '{text}'")
            return value
    return 0.0
