"""`run`: every stage of a plan in RUN_DIR, in order: the environment checked, the arguments remembered, each
stage supervised with live progress and its throughput recorded, and what to do next after an interrupt or a crash."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import EXIT_INTERRUPTED, AdvisorError
from ..scriptenv import build
from .arguments import remember_arguments, resume_arguments, resume_command
from .commands import StageCommand, build_commands
from .display import Display
from .environment import EnvReport, GpuFacts, check_environment
from .progress import FINAL_FILES, has_final_output, latest_checkpoint
from .supervise import Forwarder, StageResult, run_stage

if TYPE_CHECKING:
    from ..plan import Plan


def run(
    plan: "Plan",
    run_dir: Path,
    resume: bool = False,
    *,
    force: bool = False,
    extra: Sequence[str] = (),
    progress: bool = True,
    gpu_facts: GpuFacts | None = None,
    console=None,
    err_console=None,
) -> int:
    """Run every stage of the plan in RUN_DIR; returns the exit code (the failing or interrupted child's)."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(soft_wrap=True)
    err = err_console or Console(stderr=True, soft_wrap=True)
    run_dir = Path(run_dir)
    extra = resume_arguments(run_dir, resume, extra)
    report = check_environment(plan, force=force, gpu_facts=gpu_facts)
    for warning in report.warnings:
        err.print(f"advisor: warning: {warning}", markup=False, highlight=False)
    commands = build_commands(plan, run_dir, resume, extra, cpu=report.device == "cpu")
    for cmd in commands:
        if cmd.note and not cmd.skip:
            console.print(cmd.note, markup=False, highlight=False)
        if report.device == "cuda" and report.gpu.count > 1 and not cmd.distributed:
            cmd.env["CUDA_VISIBLE_DEVICES"] = _first_visible_gpu()  # a one-GPU plan: keep the Trainer off DataParallel
    log_dir = run_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    remember_arguments(run_dir, extra)
    if resume and extra:
        console.print(f"resuming with the arguments of the launch: {shlex.join(extra)}", markup=False, highlight=False)
    console.print(
        f"[bold]launching[/bold] {plan.pipeline} ({plan.adaptation}) in {escape(str(run_dir))}: stages {' -> '.join(c.stage for c in commands)}",
        highlight=False,
    )
    console.print(report.summary(), markup=False, highlight=False, style="dim")
    if resume and all(c.skip for c in commands):
        console.print(f"every stage completed earlier; final model in {commands[-1].output_dir}", highlight=False)
        return 0
    est = plan.estimate.peak_allocated_gib if plan.estimate and report.device == "cuda" else None
    live = progress and console.is_terminal
    resume_hint = resume_command(run_dir, extra)
    with Forwarder() as fwd:
        for cmd in commands:
            if cmd.skip:
                console.print(f"{cmd.stage}: completed earlier, skipped (output in {cmd.output_dir})", highlight=False)
                continue
            if fwd.interrupted:
                err.print(f"advisor: interrupted before stage '{cmd.stage}'; resume with: {resume_hint}", markup=False, highlight=False)
                return EXIT_INTERRUPTED
            if not resume and latest_checkpoint(cmd.output_dir) is not None:
                err.print(
                    f"advisor: warning: {cmd.output_dir} holds checkpoints of an earlier run; starting '{cmd.stage}' over (use --resume to continue from them)",
                    markup=False,
                    highlight=False,
                )
            if cmd.pyenv is not None and not cmd.pyenv.ready:
                _build_env(cmd, console, log_dir)
            how = f"resuming from {cmd.resume_from}" if cmd.resume_from else "from the start"
            console.print(f"[bold]stage {cmd.stage}[/bold] ({escape(how)}): {escape(cmd.display())}", highlight=False)
            meter = _throughput(plan, cmd, report, extra)
            if meter.prediction is not None:
                p = meter.prediction
                console.print(
                    f"{cmd.stage}: the time model predicts {p.tokens_per_s_per_gpu:,.0f} tokens/s per GPU on {p.gpu_name}"
                    + (f" ({p.tokens_per_s:,.0f} on {p.world} GPUs)" if p.world > 1 else ""),
                    markup=False,
                    highlight=False,
                    style="dim",
                )
            result = None
            with Display(console, live, est, meter) as display:
                try:
                    result = run_stage(cmd, log_dir, fwd, display)
                finally:  # a crash of the stage or of the launcher itself: what was measured is still recorded
                    status = (
                        "interrupted"
                        if fwd.interrupted
                        else "launcher stopped"
                        if result is None
                        else "completed"
                        if result.returncode == 0
                        else "failed"
                    )
                    _record_throughput(plan, cmd, meter, status, report, extra, err)
            if result.interrupted:
                return _report_interrupt(result, err, resume_hint)
            if result.returncode != 0:
                return _report_crash(result, err)
            if not has_final_output(cmd.output_dir):
                err.print(
                    f"advisor: warning: stage '{cmd.stage}' exited 0 but {cmd.output_dir} has no saved model ({', '.join(FINAL_FILES[:2])}, ...)",
                    markup=False,
                    highlight=False,
                )
            mem = ""
            if result.peak_mem_gib is not None:
                mem = f"; peak GPU memory {result.peak_mem_gib:.2f} GiB" + (f" (estimate {est:.2f} GiB allocated)" if est is not None else "")
            console.print(
                f"[green]stage {cmd.stage} completed[/green] at step {result.last_step}; output in {escape(str(cmd.output_dir))}{mem}; log {escape(str(result.log_path))}",
                highlight=False,
            )
            if result.noise:
                console.print(
                    f"({result.noise} known library warning(s) of stage {cmd.stage} not shown; they are in its log)",
                    markup=False,
                    highlight=False,
                    style="dim",
                )
    console.print(f"[green]done[/green]: final model in {escape(str(commands[-1].output_dir))}", highlight=False)
    return 0


def _first_visible_gpu() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return visible.split(",")[0].strip() if visible else "0"


def _throughput(plan: "Plan", cmd: StageCommand, report: EnvReport, extra: Sequence[str]):
    """The stage's throughput meter with the time model's prediction, when it applies: on a GPU, with the plan's
    model (not the tiny smoke-test one, not another given by --model)."""
    from ..throughput_log import UNPRICED_FLAGS, Meter, predict

    if report.device != "cuda" or any(a.split("=")[0] in UNPRICED_FLAGS for a in extra):
        return Meter()
    try:
        stage = plan.stage(cmd.stage)
    except AdvisorError:
        return Meter()
    return Meter(prediction=predict(plan, stage, report.gpu.names))


def _record_throughput(plan: "Plan", cmd: StageCommand, meter, status: str, report: EnvReport, extra: Sequence[str], err) -> None:
    """Append the stage's measured throughput to the local file (advisor/throughput_log.py), predicted runs only."""
    from ..throughput_log import append_record

    if meter.prediction is None:
        return
    record = meter.record(plan, plan.stage(cmd.stage), status, report.gpu.names, list(extra))
    if record is None:
        return
    try:
        append_record(record)
    except OSError as exc:  # a full disk or a read-only home must not fail a finished stage
        err.print(f"advisor: warning: could not append the throughput record: {exc}", markup=False, highlight=False)


def _build_env(cmd: StageCommand, console, log_dir: Path) -> None:
    """Build the stage's own environment once, with its progress on the console and in logs/<stage>-env.log."""
    assert cmd.pyenv is not None
    log = log_dir / f"{cmd.stage}-env.log"
    console.print(
        f"[bold]stage {cmd.stage}[/bold]: building the environment {cmd.script.name} asks for ({cmd.pyenv.describe()}), once; log {log}",
        highlight=False,
    )
    start = time.monotonic()
    build(cmd.pyenv, say=lambda line: console.print(line, markup=False, highlight=False, style="dim"), log=log)
    console.print(f"environment for {cmd.script.name} ready in {time.monotonic() - start:.0f} s", highlight=False)


def _report_interrupt(result: StageResult, err, resume_hint: str) -> int:
    code = result.returncode if result.returncode != 0 else EXIT_INTERRUPTED
    step = f" at step {result.last_step}" if result.last_step is not None else ""
    err.print(f"advisor: stage '{result.stage}' interrupted{step} (exit code {code})", markup=False, highlight=False)
    if result.checkpoint is not None and result.checkpoint.is_dir():
        err.print(f"checkpoint: {result.checkpoint}", markup=False, highlight=False)
    else:
        err.print(f"no checkpoint was saved; --resume starts stage '{result.stage}' over", markup=False, highlight=False)
    err.print(f"resume with: {resume_hint}", markup=False, highlight=False)
    return code


def _report_crash(result: StageResult, err) -> int:
    err.print(f"--- last {len(result.tail)} lines of {result.log_path} ---", markup=False, highlight=False)
    for line in result.tail:
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    err.print("---", markup=False, highlight=False)
    err.print(
        f"advisor: error: stage '{result.stage}' failed with exit code {result.returncode}; full log: {result.log_path}",
        markup=False,
        highlight=False,
    )
    return result.returncode
