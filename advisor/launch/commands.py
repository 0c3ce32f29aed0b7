"""One command per stage of the plan, in plan order: `python train_<stage>.py` for single-GPU and CPU runs,
`accelerate launch --config_file accelerate_config.yaml` for multi-GPU, multi-node and DeepSpeed/FSDP layouts,
with `--resume` where a stage left a checkpoint."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import AdvisorError
from ..scriptenv import ScriptEnv, env_for
from .progress import latest_checkpoint, stage_completed

if TYPE_CHECKING:
    from ..plan import Plan, Stage

ACCELERATE_CONFIG = "accelerate_config.yaml"


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


def _stage_dir(run_dir: Path, stage: "Stage") -> Path:
    path = Path(stage.output_dir)
    return path if path.is_absolute() else run_dir / path


def _stage_script(run_dir: Path, stage: "Stage") -> Path:
    """train_<stage>.py: the script of the plan's stage, the one its estimate priced (PPO stays PPO)."""
    from ..scriptgen.scripts import script_name  # the generator's name for it: one home

    script = run_dir / script_name(stage.name)
    if not script.is_file():
        raise AdvisorError(f"{run_dir} has no {script.name}; write the run with `advisor generate` first")
    return script


def _accelerate_argv() -> list[str]:
    exe = Path(sys.executable).parent / "accelerate"
    return [str(exe), "launch"] if exe.is_file() else [sys.executable, "-m", "accelerate.commands.launch"]


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
            note = (
                f"stage '{stage.name}' runs {script.name} in the environment its dependency block asks for ({pyenv.describe()}): {pyenv.path}{built}"
            )
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
        commands.append(
            StageCommand(
                stage.name, argv, run_dir, script, out, distributed, resume_from, skip, note=note, pyenv=pyenv if pyenv.path is not None else None
            )
        )
    return commands
