"""What a stage leaves in its output directory: the progress events of the contract (progress.jsonl, one JSON
object per line, see advisor/launch/__init__.py), its checkpoint-<step> folders and, once finished, its final model."""

from __future__ import annotations

import json
import re
from pathlib import Path

PROGRESS_FILE = "progress.jsonl"
# What a finished stage leaves at the top of its output directory (a full model or a LoRA adapter).
FINAL_FILES = ("adapter_config.json", "config.json", "model.safetensors", "adapter_model.safetensors", "pytorch_model.bin")


def parse_event(line: str) -> dict | None:
    """The progress event a line holds, or None for log text (and for JSON that is not an event)."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


def read_events(output_dir: Path) -> list[dict]:
    """The progress events a stage appended to its progress.jsonl (malformed lines ignored)."""
    path = output_dir / PROGRESS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        event = parse_event(line)
        if event is not None:
            events.append(event)
    return events


def has_final_output(output_dir: Path) -> bool:
    return any((output_dir / name).is_file() for name in FINAL_FILES)


def stage_completed(output_dir: Path) -> bool:
    """The stage's last run ended with status completed, and its final model is on disk."""
    last = None
    for event in read_events(output_dir):
        if event.get("event") in ("start", "end"):
            last = event
    return bool(last and last["event"] == "end" and last.get("status") == "completed" and has_final_output(output_dir))


def latest_checkpoint(output_dir: Path) -> Path | None:
    best, best_step = None, -1
    if output_dir.is_dir():
        for child in output_dir.iterdir():
            match = re.fullmatch(r"checkpoint-(\d+)", child.name)
            if match and child.is_dir() and int(match.group(1)) > best_step:
                best, best_step = child, int(match.group(1))
    return best


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint-<step> path (-1 for any other path)."""
    match = re.search(r"checkpoint-(\d+)$", str(path))
    return int(match.group(1)) if match else -1
