"""`advisor generate`: write a run folder (training scripts, accelerate config, README, sample data) for a plan."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..knobs import KNOBS, add_knob_flags

NAME = "generate"
HELP = "write ready-to-run training scripts (TRL), an accelerate config and a README for a plan"
EXAMPLES = """examples:
  advisor generate --model tiny --method-kind sft --out runs/smoke     # offline: a 2-layer model built locally
  advisor generate --model llama-3.1-8b --method qlora --gpu rtx4090
  advisor generate --model qwen2.5-7b --method-kind rlhf --method lora --dataset ./chats.jsonl
  advisor generate --model 70b --method full --gpus 8 --parallel zero3 --gpu h100 --out runs/70b-zero3
  advisor generate --plan plan.toml --out runs/my-run --force --json
"""
METHOD_KINDS = ("sft", "rlhf", "dpo", "grpo", "reward", "sft+dpo")
KNOB_FIELDS = tuple(k.field for k in KNOBS if k.field != "train")  # the training kind comes from --method-kind


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", type=Path, help="a plan file (advisor advise --save plan.toml); otherwise build one from --model and the flags")
    p.add_argument("--model", help="catalog key, shorthand (7b, 8b), hub id, local folder, or 'tiny' (offline smoke test)")
    p.add_argument("--method-kind", choices=METHOD_KINDS, default="sft", help="what to train: stages of the run (default: sft; rlhf = sft, reward model, PPO)")
    p.add_argument("--gpu", default="rtx4090", help="GPU id or name from `advisor gpus`, or a size like 24GB (default: rtx4090)")
    p.add_argument("--dataset", help="local .json/.jsonl/.csv/.parquet file or hub id (default: the bundled sample data)")
    p.add_argument("--out", type=Path, help="run folder to write (default: runs/<model>-<method-kind>)")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty folder, replacing its files")
    p.add_argument("--json", action="store_true", help="print the written files as a JSON list")
    add_knob_flags(p, only=KNOB_FIELDS)


def _local(text: str | None) -> str | None:
    """A path that exists here is written down absolute: the scripts resolve relative paths against their own folder."""
    if text and Path(text).expanduser().exists():
        return str(Path(text).expanduser().resolve())
    return text


def run(args: argparse.Namespace) -> int:
    from ..errors import AdvisorError
    from ..knobs import setup_from_args
    from ..scriptgen import write_run

    knobs_given = [f"--{f.replace('_', '-')}" for f in KNOB_FIELDS if getattr(args, f, None) is not None]
    if args.plan:
        from ..plan import load_plan

        extra = (["--model"] if args.model else []) + knobs_given
        if extra:
            raise AdvisorError(f"--plan fixes the model and set-up; drop {', '.join(extra)} or edit the plan file")
        plan = load_plan(args.plan)
        if args.dataset:
            for stage in plan.stages:
                stage.dataset = _local(args.dataset)
        label = f"{plan.model.key}-{plan.method}"
    else:
        if not args.model:
            raise AdvisorError("give --plan FILE or --model NAME (--model tiny writes an offline smoke test)")
        from ..planning import build_plan

        setup = setup_from_args(args)
        plan = build_plan(_local(args.model), setup, method=args.method_kind, gpu=args.gpu, dataset=_local(args.dataset), output_dir="outputs")
        label = f"{args.model}-{args.method_kind}"
    out = args.out or Path("runs") / re.sub(r"[^A-Za-z0-9._+-]+", "-", label).strip("-.")
    written = write_run(plan, out, force=args.force)
    if args.json:
        json.dump([str(path) for path in written], sys.stdout, indent=2)
        print()
    else:
        print(f"wrote {len(written)} files to {out}/")
        for path in written:
            print(f"  {path.relative_to(out)}")
        first = plan.stages[0].name
        print(f"next: read {out}/README.md, then `cd {out} && python train_{first}.py` (or `advisor launch {out}`)")
    return 0
