"""The live display of a running stage: a rich progress bar (step/total, ETA, loss, lr, tokens/s, peak memory vs
the estimate) when the console is a terminal, plain lines otherwise."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported only when the display is live
    from rich.progress import Progress, TaskID


def _fmt_metrics(ev: dict, est_gib: float | None) -> str:
    parts = []
    if isinstance(ev.get("loss"), (int, float)):
        parts.append(f"loss {ev['loss']:.4f}")
    if isinstance(ev.get("learning_rate"), (int, float)):
        parts.append(f"lr {ev['learning_rate']:.2e}")
    if isinstance(ev.get("tokens_per_s"), (int, float)):
        parts.append(f"{ev['tokens_per_s']:,.0f} tok/s")
    mem = ev.get("peak_mem_gib")
    if isinstance(mem, (int, float)):
        over = est_gib is not None and mem > est_gib * 1.05
        shown = f"mem {mem:.2f}" + (f"/{est_gib:.2f}" if est_gib is not None else "") + " GiB"
        parts.append(f"[red]{shown}[/red]" if over else shown)
    return "  ".join(parts)


class Display:
    """Live rich progress (step/total, ETA, loss, lr, tokens/s against the time model's prediction, peak memory vs
    estimate) or plain lines. `meter` (advisor/throughput_log.py) compares tokens/s and keeps the ETA of plain lines."""

    def __init__(self, console, live: bool, est_gib: float | None, meter=None) -> None:
        from ..throughput_log import Meter

        self.console, self.live, self.est = console, live, est_gib
        self.meter = meter if meter is not None else Meter()
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> "Display":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def print(self, text: str, **kw) -> None:
        style = kw.pop("style", None)
        if style:  # a Text, not print(style=...): rich would apply that style to the live bar it redraws too
            from rich.text import Text

            text, kw = Text(text, style=style), {}
        (self.progress.console if self.progress else self.console).print(text, **kw)

    def start(self, stage: str, ev: dict) -> None:
        total, done = ev.get("total_steps"), int(ev.get("resume_step") or 0)
        resumed = f", resuming after step {done}" if done else ""
        if self.progress is not None:
            self.task = self.progress.add_task(stage, total=total if isinstance(total, int) and total > 0 else None, completed=done, metrics="")
            if done:
                self.print(f"[dim]{stage}: resuming after step {done}[/dim]")
        else:
            self.print(f"[{stage}] start: {total} steps{resumed}", markup=False, highlight=False)

    def log(self, stage: str, ev: dict) -> None:
        self.meter.add(ev)
        metrics = _fmt_metrics(ev, self.est)
        versus = self.meter.text(eta=self.progress is None)  # the live bar has its own ETA column
        if versus:
            metrics += f"  {versus}"
        if self.progress is not None and self.task is not None:
            total = ev.get("total_steps")
            kw = {"total": total} if isinstance(total, int) and total > 0 else {}
            self.progress.update(self.task, completed=ev.get("step", 0), metrics=metrics, **kw)
        else:
            plain = re.sub(r"\[/?red\]", "", metrics)
            self.print(f"[{stage}] step {ev.get('step')}/{ev.get('total_steps')}  {plain}", markup=False, highlight=False)

    def checkpoint(self, stage: str, ev: dict) -> None:
        self.print(
            f"[{stage}] checkpoint at step {ev.get('step')}: {ev.get('path')}", markup=False, highlight=False, style="dim" if self.live else None
        )

    def end(self, stage: str, ev: dict) -> None:
        self.print(f"[{stage}] end: {ev.get('status')} at step {ev.get('step')}", markup=False, highlight=False)

    def text(self, line: str) -> None:
        shown = line.rstrip("\n").split("\r")[-1].rstrip()
        if shown:
            self.print(shown, markup=False, highlight=False, style="dim" if self.live else None)
