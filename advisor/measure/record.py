"""Measured rows as JSONL with provenance (estimators/calibration/traces.jsonl). Standard library only."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path

TRACES_PATH = Path(__file__).resolve().parents[2] / "estimators" / "calibration" / "traces.jsonl"
SCHEMA = "advisor.trace/1"
LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")
FAKE_DEVICE = "CPU, FakeTensorMode (no weights): CUDA autocast op lists, flash-attention kernel, CUDA caching-allocator 512-byte blocks"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = ""
    return out


def row_id(model_key: str, setup: dict, mode: str) -> str:
    """Stable id of a (model, set-up, mode): re-measuring replaces the row instead of adding one."""
    text = json.dumps({"model": model_key, "setup": setup, "mode": mode}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def trace_row(model_key: str, setup_dict: dict, result, *, date: str | None = None, device: str = FAKE_DEVICE) -> dict:
    """A row from a trace.TraceResult."""
    return {
        "schema": SCHEMA,
        "id": row_id(model_key, setup_dict, result.mode),
        "date": date or _dt.date.today().isoformat(),
        "device": device,
        "mode": result.mode,
        "versions": versions(),
        "model": model_key,
        "setup": setup_dict,
        "attention": result.attention,
        "quantization": result.quantization,
        "statistic": "allocated",
        "peak": {"allocated": result.peak},
        "peak_phase": result.peak_phase,
        "categories": result.categories,
        "phase_peaks": result.phase_peaks,
        "params": result.params,
        "trainable": result.trainable,
        "seconds": result.seconds,
        "notes": list(result.notes),
    }


def read_rows(path: Path | str = TRACES_PATH) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return rows


def write_row(row: dict, path: Path | str = TRACES_PATH) -> None:
    """Add `row`, replacing a row with the same id; rows stay sorted by id so the file diffs cleanly."""
    path = Path(path)
    rows = {r["id"]: r for r in read_rows(path)}
    rows[row["id"]] = row
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(rows[k], sort_keys=True) + "\n" for k in sorted(rows)), encoding="utf-8")
    tmp.replace(path)
