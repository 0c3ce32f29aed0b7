"""`advisor launch`: run a generated RUN_DIR stage by stage with live progress, logs, Ctrl-C checkpointing and resume."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

NAME = "launch"
EXAMPLES = """examples:
  advisor launch runs/my-run                   # check the machine, then train every stage in order
  advisor launch runs/my-run --dry-run         # print the commands and exit
  advisor launch runs/my-run --max-steps 20    # a short smoke run of every stage
  advisor launch runs/my-run --resume          # after Ctrl-C or a crash: skip finished stages, continue from the last checkpoint
                                               # (with the --max-steps of the last launch, kept in RUN_DIR/launch.json)
  advisor launch runs/my-run --force           # launch even if the estimate says the free GPU memory is too small

Ctrl-C (or SIGTERM) is passed to the running stage, which saves a checkpoint and stops; the launcher then
prints the checkpoint and the --resume command. Each stage's full output is in RUN_DIR/logs/<stage>.log.
The exit code is the failing stage's (130 after an interrupt). Without a CUDA GPU every stage runs on the CPU.
On a GPU the progress shows measured tokens/s against the time model's prediction and an ETA; each stage then
appends one JSON line (date, model, set-up, GPU, predicted and measured tokens/s per GPU) to
~/.cache/advisor/throughput.jsonl, or the file $ADVISOR_THROUGHPUT_LOG names.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the directory `advisor generate` wrote (it holds plan.toml and train_<stage>.py)")
    p.add_argument("--resume", action="store_true", help="skip stages that completed, resume the others from their last checkpoint-*")
    p.add_argument("--dry-run", action="store_true", help="print the command of every stage and exit (no checks, nothing runs)")
    p.add_argument(
        "--force", action="store_true", help="launch even when the GPUs are too few, lack bf16, or have less free memory than the estimate"
    )
    p.add_argument("--max-steps", type=int, metavar="N", help="stop every stage after N optimizer steps (passed to each script)")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of the live progress bar")


def run(args: argparse.Namespace) -> int:
    from .. import launch
    from ..errors import AdvisorError
    from ..plan import load_plan

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise AdvisorError(f"run directory {run_dir} not found; write one with `advisor generate`")
    if args.max_steps is not None and args.max_steps < 1:
        raise AdvisorError(f"--max-steps must be a positive whole number, got {args.max_steps}")
    plan = load_plan(run_dir / "plan.toml")
    extra = ("--max-steps", str(args.max_steps)) if args.max_steps is not None else ()
    if args.dry_run:
        script_args = launch.resume_arguments(run_dir, args.resume, extra)  # --resume reuses the last launch's --max-steps
        commands = launch.build_commands(plan, run_dir, resume=args.resume, extra=script_args)
        print(f"cd {shlex.quote(str(run_dir))}")
        for cmd in commands:
            if cmd.note:
                print(f"# note: {cmd.note}")
            if cmd.skip:
                print(f"# {cmd.stage}: completed earlier, skipped")
            else:
                print(cmd.display())
        print("# without a CUDA GPU each stage runs as `<its python> train_<stage>.py ...` on the CPU")
        return 0
    return launch.run(plan, run_dir, resume=args.resume, force=args.force, extra=extra, progress=not args.no_progress)
