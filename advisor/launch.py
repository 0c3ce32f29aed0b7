"""Launch a generated run: check the machine, build one command per stage, run them in order with live progress.

`advisor generate` writes RUN_DIR (plan.toml, train_<stage>.py, accelerate_config.yaml); this module runs it.
Each stage is a child process in its own process group. The launcher reads the child's stdout line by line:
lines that are JSON objects are progress events (the contract below), everything else is log text. Every
line goes to RUN_DIR/logs/<stage>.log.

Progress contract (the generated scripts print one JSON object per line and append it to
<output_dir>/progress.jsonl):
  {"event":"start","stage":S,"total_steps":N,"resume_step":k}
  {"event":"log","stage":S,"step":i,"total_steps":N,"loss":x,"learning_rate":y,"tokens_per_s":z,"peak_mem_gib":m|null,"epoch":e}
  {"event":"checkpoint","stage":S,"step":i,"path":P}
  {"event":"end","stage":S,"status":"completed"|"interrupted","step":i,"output_dir":D}
On SIGINT/SIGTERM a script saves a checkpoint and exits 130.

Signals: the launcher catches SIGINT and SIGTERM while a stage runs and forwards them to the child's leader
process (for `accelerate launch` that is the launcher process, which forwards to its workers); the child
checkpoints and exits, and the launcher reports where the checkpoint is and how to resume. A second signal is
forwarded again; a third kills the child's whole process group.

Nothing here imports torch: GPU facts come from a short subprocess (`probe_gpus`), or are injected (`GpuFacts`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .errors import EXIT_INTERRUPTED, AdvisorError
from .hubaccess import missing_token_warning
from .lognoise import NoiseFilter
from .scriptenv import ScriptEnv, build, env_for

if TYPE_CHECKING:
    from .plan import Plan, Stage

TRAIN_PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets")
QLORA_PACKAGES = ("bitsandbytes",)
INSTALL_HINT = "pip install 'advisor[train]'"
ACCELERATE_CONFIG = "accelerate_config.yaml"
PROGRESS_FILE = "progress.jsonl"
# The script arguments of the last launch (e.g. --max-steps 400), so that `--resume` continues with the same budget.
LAUNCH_FILE = "launch.json"
LAUNCH_SCHEMA = "advisor.launch/1"
# What a finished stage leaves at the top of its output directory (a full model or a LoRA adapter).
FINAL_FILES = ("adapter_config.json", "config.json", "model.safetensors", "adapter_model.safetensors", "pytorch_model.bin")
TAIL_LINES = 20
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


# --------------------------------------------------------------------------------------------- environment


@dataclass
class GpuFacts:
    """What the machine offers. Injected by tests to simulate a card; `probe_gpus` measures the real one."""

    count: int
    free_gib: list[float] = field(default_factory=list)
    bf16: bool = True
    names: list[str] = field(default_factory=list)

    def name(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else f"GPU {index}"


_PROBE = r"""
import json
import torch
out = {"count": 0, "free_gib": [], "bf16": False, "names": []}
if torch.cuda.is_available():
    out["count"] = torch.cuda.device_count()
    for i in range(out["count"]):
        free, _total = torch.cuda.mem_get_info(i)
        out["free_gib"].append(free / 2**30)
        out["names"].append(torch.cuda.get_device_name(i))
    out["bf16"] = all(torch.cuda.get_device_capability(i)[0] >= 8 for i in range(out["count"]))
print("ADVISOR_GPU_FACTS " + json.dumps(out))
"""


def probe_gpus(python: str = sys.executable, timeout: float = 180) -> GpuFacts:
    """CUDA devices, free memory and bf16 support, measured by a child interpreter (the launcher stays torch-free)."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AdvisorError(f"querying the GPUs took more than {timeout:.0f} s (is the driver hung?)") from None
    for line in done.stdout.splitlines():
        if line.startswith("ADVISOR_GPU_FACTS "):
            data = json.loads(line.split(" ", 1)[1])
            return GpuFacts(count=data["count"], free_gib=data["free_gib"], bf16=data["bf16"], names=data["names"])
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise AdvisorError(f"could not query the GPUs with torch: {last}")


@dataclass
class EnvReport:
    packages: dict[str, str]  # name -> installed version
    gpu: GpuFacts
    device: str  # "cuda" or "cpu"
    gpus_used: int  # GPUs per node the run will use (0 on CPU)
    need_gib: float | None  # the plan's per-GPU figure on the card, when the plan has an estimate
    warnings: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)  # checks that failed and were overridden by --force

    def summary(self) -> str:
        versions = ", ".join(f"{name} {version}" for name, version in self.packages.items())
        if self.device == "cpu":
            where = "CPU (no CUDA GPU)"
        else:
            free = ", ".join(f"{self.gpu.name(i)} {self.gpu.free_gib[i]:.1f} GiB free" for i in range(self.gpus_used))
            where = f"{self.gpus_used} GPU(s): {free}"
        return f"device: {where}\npackages: {versions}"


def _plan_layout(plan: "Plan") -> tuple[int, int]:
    return max(s.setup.gpus for s in plan.stages), max(s.setup.nodes for s in plan.stages)


def package_versions(names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Installed versions of `names`, and the ones that are missing (found without importing them)."""
    found, missing = {}, []
    for name in names:
        if importlib.util.find_spec(name) is None:
            missing.append(name)
            continue
        found[name] = _version(name)
    return found, missing


def check_environment(plan: "Plan", force: bool = False, gpu_facts: GpuFacts | None = None) -> EnvReport:
    """Can this machine run the plan? Missing packages always stop the launch; too few GPUs, too little free
    memory or no bf16 stop it unless `force`. Without CUDA the run goes to the CPU with a warning."""
    wanted = list(TRAIN_PACKAGES)
    qlora = any(s.setup.method == "qlora" for s in plan.stages)
    if qlora:
        wanted += QLORA_PACKAGES
    packages, missing = package_versions(wanted)
    if missing:
        raise AdvisorError(f"training packages not installed: {', '.join(missing)}; install them with: {INSTALL_HINT}")

    facts = gpu_facts
    warnings: list[str] = []
    token = missing_token_warning(plan.model.hf_id or plan.model.key)
    if token:
        warnings.append(token)
    if facts is None:
        try:
            facts = probe_gpus()
        except AdvisorError as exc:
            if not force:
                raise AdvisorError(f"{exc}; pass --force to run on the CPU") from None
            warnings.append(f"{exc}; running on the CPU (--force)")
            facts = GpuFacts(count=0)

    gpus, nodes = _plan_layout(plan)
    need = plan.estimate.device_gib if plan.estimate else None
    card = plan.hardware.gpu_name or plan.hardware.gpu
    forced: list[str] = []
    if facts.count == 0:
        report = EnvReport(packages, facts, "cpu", 0, need, warnings)
        planned = f" ({need:.1f} GiB per GPU on {card})" if need is not None else ""
        warnings.append(f"no CUDA GPU found: every stage runs on the CPU in one process, slowly; the plan's memory estimate{planned} does not apply")
        if qlora:
            warnings.append("QLoRA's 4-bit layers (bitsandbytes) are built for CUDA GPUs; on the CPU the run may fail")
        return report

    used = min(gpus, facts.count)
    problems = []
    if facts.count < gpus:
        problems.append(f"the plan trains on {gpus} GPUs per node but this machine has {facts.count}")
    if need is not None:
        for i in range(used):
            free = facts.free_gib[i] if i < len(facts.free_gib) else 0.0
            if free < need:
                problems.append(f"the run needs about {need:.1f} GiB per GPU (the plan's estimate on the card) but {facts.name(i)} (GPU {i}) has {free:.1f} GiB free")
    else:
        warnings.append("the plan has no memory estimate, so free GPU memory was not checked")
    if not facts.bf16 and any(s.setup.precision.startswith("bf16") for s in plan.stages):
        problems.append("the plan computes in bf16, which this GPU does not support; plan again with --precision fp16-mixed")
    if problems:
        if not force:
            raise AdvisorError("; ".join(problems) + "; pass --force to launch anyway")
        forced = problems
        warnings.extend(f"{p} (launching anyway: --force)" for p in problems)
    if nodes > 1:
        warnings.append(f"the plan spans {nodes} nodes: run `advisor launch` on every node, with machine_rank set per node in {ACCELERATE_CONFIG}")
    return EnvReport(packages, facts, "cuda", used, need, warnings, forced)


# --------------------------------------------------------------------------------------------- commands


@dataclass
class StageCommand:
    stage: str
    argv: list[str]
    cwd: Path  # the run directory
    script: Path
    output_dir: Path  # absolute
    distributed: bool  # run under `accelerate launch`
    resume_from: Path | None = None  # the checkpoint --resume picks up
    skip: bool = False  # completed by an earlier launch (only with resume)
    env: dict[str, str] = field(default_factory=dict)  # added to the child's environment
    note: str = ""  # where the script runs when not in this environment (PPO: trl 1.12.0)
    pyenv: ScriptEnv | None = None  # the environment its PEP 723 block asks for, when not this one

    def display(self) -> str:
        argv = ["python" if a == sys.executable else a for a in self.argv]
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return (prefix + " " if prefix else "") + shlex.join(argv)


def read_events(output_dir: Path) -> list[dict]:
    """The progress events a stage appended to its progress.jsonl (malformed lines ignored)."""
    path = output_dir / PROGRESS_FILE
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        event = _parse_event(line)
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


def _stage_dir(run_dir: Path, stage: "Stage") -> Path:
    path = Path(stage.output_dir)
    return path if path.is_absolute() else run_dir / path


def _stage_script(run_dir: Path, stage: "Stage") -> Path:
    """train_<stage>.py: the script of the plan's stage, the one its estimate priced (PPO stays PPO)."""
    script = run_dir / f"train_{stage.name}.py"
    if not script.is_file():
        raise AdvisorError(f"{run_dir} has no {script.name}; write the run with `advisor generate` first")
    return script


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _accelerate_argv() -> list[str]:
    exe = Path(sys.executable).parent / "accelerate"
    return [str(exe), "launch"] if exe.is_file() else [sys.executable, "-m", "accelerate.commands.launch"]


def _first_visible_gpu() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return visible.split(",")[0].strip() if visible else "0"


def build_commands(plan: "Plan", run_dir: Path, resume: bool = False, extra: Sequence[str] = (), *, cpu: bool = False) -> list[StageCommand]:
    """One command per stage, in plan order. Multi-GPU / multi-node / DeepSpeed-FSDP layouts go through
    `accelerate launch --config_file accelerate_config.yaml`, single-GPU and CPU runs through this Python.
    A stage that starts from another stage's model gets `--model <that stage's output_dir>`. With `resume`,
    stages completed earlier are marked skip and a stage with a checkpoint gets `--resume`."""
    run_dir = Path(run_dir)
    by_name = {s.name: s for s in plan.stages}
    commands = []
    for stage in plan.stages:
        for ref in (stage.base_from, stage.reward_from):
            if ref and ref not in by_name:
                raise AdvisorError(f"stage '{stage.name}' refers to stage '{ref}', which the plan does not have")
        script = _stage_script(run_dir, stage)
        pyenv = env_for(script)
        note = ""
        if pyenv.path is not None:
            built = "" if pyenv.ready else "; built on the first launch"
            note = f"stage '{stage.name}' runs {script.name} in the environment its dependency block asks for ({pyenv.describe()}): {pyenv.path}{built}"
        out = _stage_dir(run_dir, stage)
        setup = stage.setup
        distributed = not cpu and (setup.world_size > 1 or setup.parallel != "none")
        if distributed:
            if not (run_dir / ACCELERATE_CONFIG).is_file():
                raise AdvisorError(f"{run_dir} has no {ACCELERATE_CONFIG}, which the {setup.world_size}-GPU layout needs; generate the run again")
            launcher = _accelerate_argv() if pyenv.path is None else [pyenv.python, "-m", "accelerate.commands.launch"]
            argv = [*launcher, "--config_file", ACCELERATE_CONFIG, script.name]
        else:
            argv = [pyenv.python, script.name]
        # The scripts carry the plan's wiring (base_from / reward_model in CONFIG, relative to RUN_DIR), so a later
        # stage finds the earlier stage's output without a --model flag (which would drop that wiring).
        # --output-dir pins every stage to the plan's folder, the one the later stages' CONFIG points at.
        argv += ["--output-dir", stage.output_dir]
        skip, resume_from = False, None
        if resume:
            if stage_completed(out):
                skip = True
            else:
                resume_from = latest_checkpoint(out)
                if resume_from is not None:
                    argv.append("--resume")
        argv += list(extra)
        commands.append(StageCommand(stage.name, argv, run_dir, script, out, distributed, resume_from, skip, note=note,
                                     pyenv=pyenv if pyenv.path is not None else None))
    return commands


# --------------------------------------------------------------------------------------------- launch memory


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


# --------------------------------------------------------------------------------------------- running


def _parse_event(line: str) -> dict | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


class _Forwarder:
    """Forwards SIGINT/SIGTERM to the running child. Installed only in the main thread."""

    def __init__(self) -> None:
        self.child: subprocess.Popen | None = None
        self.signals: list[int] = []
        self._old: dict[int, object] = {}

    def __enter__(self) -> "_Forwarder":
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


class _Display:
    """Live rich progress (step/total, ETA, loss, lr, tokens/s against the time model's prediction, peak memory vs
    estimate) or plain lines. `meter` (advisor/throughput_log.py) compares tokens/s and keeps the ETA of plain lines."""

    def __init__(self, console, live: bool, est_gib: float | None, meter=None) -> None:
        from .throughput_log import Meter

        self.console, self.live, self.est = console, live, est_gib
        self.meter = meter if meter is not None else Meter()
        self.progress = None
        self.task = None

    def __enter__(self) -> "_Display":
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[metrics]}"),
                console=self.console, transient=False,
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
        self.print(f"[{stage}] checkpoint at step {ev.get('step')}: {ev.get('path')}", markup=False, highlight=False, style="dim" if self.live else None)

    def end(self, stage: str, ev: dict) -> None:
        self.print(f"[{stage}] end: {ev.get('status')} at step {ev.get('step')}", markup=False, highlight=False)

    def text(self, line: str) -> None:
        shown = line.rstrip("\n").split("\r")[-1].rstrip()
        if shown:
            self.print(shown, markup=False, highlight=False, style="dim" if self.live else None)


_STOPPING = {  # the generated scripts: 1st signal = checkpoint after the current step; 2nd = stop at once
    1: "stopping: stage '{stage}' saves a checkpoint after the current step (Ctrl-C again stops it at once, without one)",
    2: "stopping stage '{stage}' at once (Ctrl-C once more kills it)",
    3: "killed stage '{stage}'",
}


def _throughput(plan: "Plan", cmd: StageCommand, report: EnvReport, extra: Sequence[str]):
    """The stage's throughput meter with the time model's prediction, when it applies: on a GPU, with the plan's
    model (not the tiny smoke-test one, not another given by --model)."""
    from .throughput_log import UNPRICED_FLAGS, Meter, predict

    if report.device != "cuda" or any(a.split("=")[0] in UNPRICED_FLAGS for a in extra):
        return Meter()
    try:
        stage = plan.stage(cmd.stage)
    except AdvisorError:
        return Meter()
    return Meter(prediction=predict(plan, stage, report.gpu.names))


def _record_throughput(plan: "Plan", cmd: StageCommand, meter, status: str, report: EnvReport, extra: Sequence[str], err) -> None:
    """Append the stage's measured throughput to the local file (advisor/throughput_log.py), predicted runs only."""
    from .throughput_log import append_record

    if meter.prediction is None:
        return
    record = meter.record(plan, plan.stage(cmd.stage), status, report.gpu.names, list(extra))
    if record is None:
        return
    try:
        append_record(record)
    except OSError as exc:  # a full disk or a read-only home must not fail a finished stage
        err.print(f"advisor: warning: could not append the throughput record: {exc}", markup=False, highlight=False)


def _run_stage(cmd: StageCommand, log_dir: Path, fwd: _Forwarder, display: _Display) -> StageResult:
    log_path = log_dir / f"{cmd.stage}.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", **cmd.env)
    result = StageResult(cmd.stage, 0, False, log_path=log_path)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with open(log_path, "ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"=== {stamp} advisor launch: {cmd.display()}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(cmd.argv, cwd=cmd.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
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
            event = _parse_event(line)
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
    if on_disk is not None and (result.checkpoint is None or not result.checkpoint.is_dir() or _step_of(on_disk) >= _step_of(result.checkpoint)):
        result.checkpoint = on_disk
    return result


def _step_of(path: Path) -> int:
    match = re.search(r"checkpoint-(\d+)$", str(path))
    return int(match.group(1)) if match else -1


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
    console.print(f"[bold]launching[/bold] {plan.method} ({plan.adaptation}) in {escape(str(run_dir))}: stages {' -> '.join(c.stage for c in commands)}", highlight=False)
    console.print(report.summary(), markup=False, highlight=False, style="dim")
    if resume and all(c.skip for c in commands):
        console.print(f"every stage completed earlier; final model in {commands[-1].output_dir}", highlight=False)
        return 0
    est = plan.estimate.peak_allocated_gib if plan.estimate and report.device == "cuda" else None
    live = progress and console.is_terminal
    resume_hint = resume_command(run_dir, extra)
    with _Forwarder() as fwd:
        for cmd in commands:
            if cmd.skip:
                console.print(f"{cmd.stage}: completed earlier, skipped (output in {cmd.output_dir})", highlight=False)
                continue
            if fwd.interrupted:
                err.print(f"advisor: interrupted before stage '{cmd.stage}'; resume with: {resume_hint}", markup=False, highlight=False)
                return EXIT_INTERRUPTED
            if not resume and latest_checkpoint(cmd.output_dir) is not None:
                err.print(f"advisor: warning: {cmd.output_dir} holds checkpoints of an earlier run; starting '{cmd.stage}' over (use --resume to continue from them)", markup=False, highlight=False)
            if cmd.pyenv is not None and not cmd.pyenv.ready:
                _build_env(cmd, console, log_dir)
            how = f"resuming from {cmd.resume_from}" if cmd.resume_from else "from the start"
            console.print(f"[bold]stage {cmd.stage}[/bold] ({escape(how)}): {escape(cmd.display())}", highlight=False)
            meter = _throughput(plan, cmd, report, extra)
            if meter.prediction is not None:
                p = meter.prediction
                console.print(f"{cmd.stage}: the time model predicts {p.tokens_per_s_per_gpu:,.0f} tokens/s per GPU on {p.gpu_name}"
                              + (f" ({p.tokens_per_s:,.0f} on {p.world} GPUs)" if p.world > 1 else ""), markup=False, highlight=False, style="dim")
            result = None
            with _Display(console, live, est, meter) as display:
                try:
                    result = _run_stage(cmd, log_dir, fwd, display)
                finally:  # a crash of the stage or of the launcher itself: what was measured is still recorded
                    status = ("interrupted" if fwd.interrupted else "launcher stopped" if result is None
                              else "completed" if result.returncode == 0 else "failed")
                    _record_throughput(plan, cmd, meter, status, report, extra, err)
            if result.interrupted:
                return _report_interrupt(result, err, resume_hint)
            if result.returncode != 0:
                return _report_crash(result, err)
            if not has_final_output(cmd.output_dir):
                err.print(f"advisor: warning: stage '{cmd.stage}' exited 0 but {cmd.output_dir} has no saved model ({', '.join(FINAL_FILES[:2])}, ...)", markup=False, highlight=False)
            mem = ""
            if result.peak_mem_gib is not None:
                mem = f"; peak GPU memory {result.peak_mem_gib:.2f} GiB" + (f" (estimate {est:.2f} GiB allocated)" if est is not None else "")
            console.print(f"[green]stage {cmd.stage} completed[/green] at step {result.last_step}; output in {escape(str(cmd.output_dir))}{mem}; log {escape(str(result.log_path))}", highlight=False)
            if result.noise:
                console.print(f"({result.noise} known library warning(s) of stage {cmd.stage} not shown; they are in its log)", markup=False, highlight=False, style="dim")
    console.print(f"[green]done[/green]: final model in {escape(str(commands[-1].output_dir))}", highlight=False)
    return 0


def _build_env(cmd: StageCommand, console, log_dir: Path) -> None:
    """Build the stage's own environment once, with its progress on the console and in logs/<stage>-env.log."""
    assert cmd.pyenv is not None
    log = log_dir / f"{cmd.stage}-env.log"
    console.print(f"[bold]stage {cmd.stage}[/bold]: building the environment {cmd.script.name} asks for ({cmd.pyenv.describe()}), once; log {log}",
                  highlight=False)
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
    err.print(f"advisor: error: stage '{result.stage}' failed with exit code {result.returncode}; full log: {result.log_path}", markup=False, highlight=False)
    return result.returncode
