"""Launch a generated run: check the machine, build one command per stage, run them in order with live progress.

`advisor generate` writes RUN_DIR (plan.toml, train_<stage>.py, accelerate_config.yaml); this package runs it.
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

The modules, in the order a launch uses them:
  environment  can this machine run the plan (packages, GPUs, free memory, bf16)
  progress     what a stage leaves in its output directory (progress.jsonl, checkpoints, the final model)
  commands     one command per stage (plain Python or `accelerate launch`), with resume
  arguments    the script arguments of the last launch, kept in RUN_DIR/launch.json for `--resume`
  supervise    one stage as a child process: signals forwarded, events parsed, log written
  display      live progress bar or plain lines
  runner       `run`: every stage in order, with the reports after an interrupt or a crash
"""

from .arguments import LAUNCH_FILE, LAUNCH_SCHEMA, remember_arguments, remembered_arguments, resume_arguments, resume_command
from .commands import ACCELERATE_CONFIG, StageCommand, build_commands
from .environment import INSTALL_HINT, EnvReport, GpuFacts, check_environment, package_versions, probe_gpus
from .progress import FINAL_FILES, PROGRESS_FILE, has_final_output, latest_checkpoint, read_events, stage_completed
from .runner import run
from .supervise import StageResult

__all__ = [
    "ACCELERATE_CONFIG",
    "FINAL_FILES",
    "INSTALL_HINT",
    "LAUNCH_FILE",
    "LAUNCH_SCHEMA",
    "PROGRESS_FILE",
    "EnvReport",
    "GpuFacts",
    "StageCommand",
    "StageResult",
    "build_commands",
    "check_environment",
    "has_final_output",
    "latest_checkpoint",
    "package_versions",
    "probe_gpus",
    "read_events",
    "remember_arguments",
    "remembered_arguments",
    "resume_arguments",
    "resume_command",
    "run",
    "stage_completed",
]
