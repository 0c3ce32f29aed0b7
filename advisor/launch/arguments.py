"""The script arguments of a launch (e.g. --max-steps 400), kept in RUN_DIR/launch.json, so that `--resume`
continues with the same budget, and the resume command printed after an interrupt."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Sequence

LAUNCH_FILE = "launch.json"
LAUNCH_SCHEMA = "advisor.launch/1"


def remember_arguments(run_dir: Path, extra: Sequence[str]) -> None:
    """Write the script arguments of this launch to RUN_DIR/launch.json (read back by `--resume`)."""
    data = {"schema": LAUNCH_SCHEMA, "script_args": list(extra), "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (Path(run_dir) / LAUNCH_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def remembered_arguments(run_dir: Path) -> list[str]:
    """The script arguments the last launch of RUN_DIR used ([] when none was recorded or the file is unreadable:
    a damaged launch.json must not stop a resume, which then runs on the scripts' own defaults)."""
    path = Path(run_dir) / LAUNCH_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    args = data.get("script_args") if isinstance(data, dict) else None
    return [str(a) for a in args] if isinstance(args, list) and all(isinstance(a, (str, int)) for a in args) else []


def resume_arguments(run_dir: Path, resume: bool, extra: Sequence[str]) -> list[str]:
    """The script arguments a launch runs with: given ones win; a `--resume` without any reuses the last launch's,
    so an interrupted `--max-steps 400` run resumes towards step 400, not towards the scripts' epoch default."""
    if resume and not extra:
        return remembered_arguments(run_dir)
    return list(extra)


def resume_command(run_dir: Path, extra: Sequence[str]) -> str:
    """The command printed for the user to paste after an interrupt, shell-quoted, with the budget it ran under."""
    return shlex.join(["advisor", "launch", str(run_dir), "--resume", *extra])
