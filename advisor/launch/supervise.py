"""One stage as a child process in its own process group: SIGINT/SIGTERM forwarded to it (see the signal rules in
advisor/launch/__init__.py), its stdout written to logs/<stage>.log and parsed into progress events for the display."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import AdvisorError
from ..lognoise import NoiseFilter
from .commands import StageCommand
from .display import Display
from .progress import checkpoint_step, latest_checkpoint, parse_event

TAIL_LINES = 20
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Forwarder:
    """Forwards SIGINT/SIGTERM to the running child. Installed only in the main thread."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.signals: list[int] = []
        self._old: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}  # the handlers replaced

    def __enter__(self) -> "Forwarder":
        if threading.current_thread() is threading.main_thread():
            for sig in FORWARDED_SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, _frame) -> None:
        self.signals.append(signum)
        self.forward(signum)

    def forward(self, signum: int) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        try:
            if len(self.signals) <= 2:
                os.kill(child.pid, signum)
            else:
                os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @property
    def interrupted(self) -> bool:
        return bool(self.signals)


@dataclass
class StageResult:
    stage: str
    returncode: int
    interrupted: bool
    last_step: int | None = None
    total_steps: int | None = None
    end: dict | None = None
    checkpoint: Path | None = None
    peak_mem_gib: float | None = None
    log_path: Path | None = None
    tail: list[str] = field(default_factory=list)
    noise: int = 0  # known library warnings kept in the log, not shown (advisor/lognoise.py)


_STOPPING = {  # the generated scripts: 1st signal = checkpoint after the current step; 2nd = stop at once
    1: "stopping: stage '{stage}' saves a checkpoint after the current step (Ctrl-C again stops it at once, without one)",
    2: "stopping stage '{stage}' at once (Ctrl-C once more kills it)",
    3: "killed stage '{stage}'",
}


def run_stage(cmd: StageCommand, log_dir: Path, fwd: Forwarder, display: Display) -> StageResult:
    """Run one stage to its end: every line to its log, events to the display; the newest checkpoint wins."""
    log_path = log_dir / f"{cmd.stage}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", **cmd.env)
    result = StageResult(cmd.stage, 0, False, log_path=log_path)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} advisor launch: {cmd.display()}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(
                cmd.argv, cwd=cmd.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            raise AdvisorError(f"could not start stage '{cmd.stage}': {exc}") from None
        fwd.child = child
        if fwd.signals:  # a signal that came while the child was starting
            fwd.forward(fwd.signals[-1])
        announced = 0
        noise = NoiseFilter()
        assert child.stdout is not None
        for raw in child.stdout:
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", errors="replace")
            tail.append(line.rstrip("\n"))
            if len(fwd.signals) > announced:
                announced = len(fwd.signals)
                display.print(f"[yellow]{_STOPPING.get(announced, _STOPPING[3]).format(stage=cmd.stage)}[/yellow]")
            event = parse_event(line)
            if event is None:
                if not noise.hide(line):
                    display.text(line)
                continue
            kind = event["event"]
            if kind == "start":
                result.total_steps = event.get("total_steps")
                result.last_step = event.get("resume_step") or 0
                display.start(cmd.stage, event)
            elif kind == "log":
                result.last_step = event.get("step", result.last_step)
                if isinstance(event.get("peak_mem_gib"), (int, float)):
                    result.peak_mem_gib = max(result.peak_mem_gib or 0.0, event["peak_mem_gib"])
                display.log(cmd.stage, event)
            elif kind == "checkpoint":
                if event.get("path"):
                    path = Path(event["path"])
                    result.checkpoint = path if path.is_absolute() else cmd.cwd / path
                display.checkpoint(cmd.stage, event)
            elif kind == "end":
                result.end = event
                result.last_step = event.get("step", result.last_step)
                display.end(cmd.stage, event)
        rc = child.wait()
        fwd.child = None
        log.write(f"=== exit code {rc}\n".encode())
    result.returncode = 128 - rc if rc < 0 else rc
    result.interrupted = fwd.interrupted
    result.tail = list(tail)
    result.noise = noise.count
    on_disk = latest_checkpoint(cmd.output_dir)
    if on_disk is not None and (
        result.checkpoint is None or not result.checkpoint.is_dir() or checkpoint_step(on_disk) >= checkpoint_step(result.checkpoint)
    ):
        result.checkpoint = on_disk
    return result
