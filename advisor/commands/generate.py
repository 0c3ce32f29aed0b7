"""`advisor generate`: write a run folder (training scripts, accelerate config, README, sample data) for a plan."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

from ..knobs import KNOBS, add_knob_flags
from ..paths import absolute
from ..reward_value_flag import add_reward_value_flag, plan_reward_value

NAME = "generate"
EXAMPLES = """examples:
  advisor generate --model tiny --method-kind sft --out runs/smoke     # offline: a 2-layer model built locally
  advisor generate --model llama-3.1-8b --method qlora --gpu rtx4090
  advisor generate --model qwen2.5-7b --method-kind sft --method lora --dataset ./chats.jsonl
  advisor generate --model qwen2.5-7b --method-kind rlhf --method lora \\
      --instruction-dataset ./chats.jsonl --preference-dataset ./pairs.jsonl --prompt-dataset ./prompts.jsonl
  advisor generate --model 70b --method full --gpus 8 --parallel zero3 --gpu h100 --out runs/70b-zero3
  advisor generate --model qwen2.5-1.5b --method-kind grpo --prompt-dataset ./math.jsonl --reward-check answer
  advisor generate --plan plan.toml --out runs/my-run --force --json
"""
METHOD_KINDS = ("sft", "rlhf", "dpo", "grpo", "reward", "sft+dpo")
# One flag per data kind, for runs whose stages need different data (rlhf: instruction, preference, prompt).
DATA_FLAGS = {
    "instruction": ("--instruction-dataset", "conversations or instruction/answer rows (SFT stages)"),
    "preference": ("--preference-dataset", "chosen/rejected pairs (reward and DPO stages)"),
    "prompt": ("--prompt-dataset", "prompts only (PPO and GRPO stages)"),
    "text": ("--text-dataset", "raw documents in a text column (continued pre-training stages)"),
}
GENERATE_KNOBS = tuple(k for k in KNOBS if k.field != "train" and not k.priced_only)  # kind from --method-kind; no priced-only knobs
KNOB_FIELDS = tuple(k.field for k in GENERATE_KNOBS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", type=Path, help="a plan file (advisor advise --save plan.toml); otherwise build one from --model and the flags")
    p.add_argument("--model", help="catalog key, shorthand (7b, 8b), hub id, local folder, or 'tiny' (offline smoke test)")
    p.add_argument(
        "--method-kind", choices=METHOD_KINDS, default="sft", help="what to train: stages of the run (default: sft; rlhf = sft, reward model, PPO)"
    )
    p.add_argument("--gpu", default="rtx4090", help="GPU id or name from `advisor gpus`, or a size like 24GB (default: rtx4090)")
    p.add_argument(
        "--dataset",
        help="local .json/.jsonl/.csv/.parquet file, folder or hub id for a run whose stages take one kind of data "
        "(default: the bundled sample data); checked as `advisor data check` does: the script loads it with the "
        "column mapping found, at the length it needs unless --seq-len is given, and data that cannot feed a stage is refused",
    )
    for data_format, (flag, what) in DATA_FLAGS.items():
        p.add_argument(flag, dest=f"{data_format}_dataset", metavar="DATA", help=f"data for the stages that take {what}")
    reward = p.add_mutually_exclusive_group()
    reward.add_argument("--reward-check", metavar="FIELD", help="GRPO: reward 1 when the completion equals this dataset field (e.g. answer), else 0")
    reward.add_argument(
        "--reward-fn",
        metavar="FILE.py:FUNCTION",
        help="GRPO: your Python reward function (TRL's signature: completions, **columns -> list of floats)",
    )
    reward.add_argument("--reward-model", metavar="MODEL", help="GRPO: a trained reward model (folder or hub id) that scores the completions")
    add_reward_value_flag(p, "--method-kind rlhf / reward (the reward stage trains it, PPO scores with it and starts its value model from it)")
    p.add_argument("--out", type=Path, help="run folder to write (default: runs/<model>-<method-kind>)")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty folder, replacing its files")
    p.add_argument("--json", action="store_true", help="print the written files as a JSON list")
    add_knob_flags(p, only=KNOB_FIELDS)


def assign_datasets(plan, args: argparse.Namespace) -> list[str]:
    """Give each stage the user's data of its kind; returns warnings. `--dataset` serves a run whose stages all
    take one kind of data; a run whose stages take different kinds needs the flag of each kind, so that no stage
    silently trains on the bundled sample while the user believes it trains on theirs."""
    from ..errors import AdvisorError

    formats = list(dict.fromkeys(stage.data_format for stage in plan.stages))
    per_kind = {fmt: getattr(args, f"{fmt}_dataset", None) for fmt in DATA_FLAGS}
    given = {fmt: path for fmt, path in per_kind.items() if path}
    if args.dataset:
        if len(formats) > 1:
            wanted = ", ".join(f"{DATA_FLAGS[fmt][0]} ({', '.join(s.name for s in plan.stages if s.data_format == fmt)})" for fmt in formats)
            raise AdvisorError(f"--dataset: the {plan.pipeline} run's stages take different data; give {wanted}")
        if formats[0] in given:
            raise AdvisorError(f"give --dataset or {DATA_FLAGS[formats[0]][0]}, not both")
        given[formats[0]] = args.dataset
    unused = [DATA_FLAGS[fmt][0] for fmt in given if fmt not in formats]
    if unused:
        raise AdvisorError(f"{', '.join(unused)}: no stage of the {plan.pipeline} run takes that data (its stages take {', '.join(formats)} data)")
    warnings = []
    for stage in plan.stages:
        if stage.data_format in given:
            stage.dataset = absolute(given[stage.data_format])
            warnings += check_stage_data(plan, stage, packing_given=getattr(args, "packed", None) is not None)
        elif given and stage.dataset in ("", "bundled"):
            warnings.append(
                f"stage '{stage.name}' trains on the bundled sample {stage.data_format} data; give {DATA_FLAGS[stage.data_format][0]} for yours"
            )
    return warnings


def check_stage_data(plan, stage, packing_given: bool = False) -> list[str]:
    """Read the stage's dataset as `advisor data check` does, for the kind the stage trains, and keep what the
    script needs (loader, mapping) on the stage; refuse data that cannot feed it. A hub id that is not in the local
    cache is left to the script to download, unchecked, with a warning."""
    from ..datasets.wire import RL_KINDS, check_for_stage, give_data, stage_data
    from ..errors import AdvisorError

    kind = "ppo" if stage.setup.train == "ppo" else stage.setup.train
    model = None if plan.model.key == "tiny" else (plan.model.hf_id or plan.model.key)
    response = stage.setup.response_len if kind in RL_KINDS else 512
    try:
        data = check_for_stage(stage.dataset, kind, model, response_len=response)  # cached: the plan may be made twice
    except AdvisorError:
        from ..datasets.sources import _looks_like_dataset_id, file_format

        path = Path(stage.dataset).expanduser()
        if path.exists() or file_format(path)[0] or not _looks_like_dataset_id(stage.dataset):  # a file name: a typo, not a hub id
            raise
        stage.data = None
        return [
            f"stage '{stage.name}': {stage.dataset} is not on this machine: the script downloads it and maps only alpaca/sharegpt columns; "
            "fetch it first (`hf download ... --repo-type dataset`) to have it checked"
        ]
    give_data(stage, stage_data(data, stage.name, stage.dataset), packing_given)
    return []


def data_seq_len(plan) -> int | None:
    """The longest recommended sequence length of the stages' checked data (each keeps 99 % of its rows whole);
    None when a PPO/GRPO stage has no checked data (its prompts plus the response may need more: keep the default)."""
    if any(s.data is None and s.setup.train in ("ppo", "grpo") for s in plan.stages):
        return None
    lengths = [s.data.seq_len for s in plan.stages if s.data is not None and s.data.seq_len]
    return max(lengths) if lengths else None


def assign_reward(plan, args: argparse.Namespace) -> list[str]:
    """GRPO's reward from the flags (advisor/planning.py assign_reward); the warning when a GRPO stage is left on the
    placeholder reward."""
    from ..errors import AdvisorError
    from ..planning import assign_reward as assign
    from ..rewards import reward_parts

    flags = {"check": args.reward_check, "fn": args.reward_fn, "model": args.reward_model}
    given = [(kind, value) for kind, value in flags.items() if value]
    try:
        chosen = reward_parts(f"{given[0][0]}:{given[0][1]}") if given else {}
        left = assign(plan, chosen)
    except AdvisorError as exc:
        flag = f"--reward-{given[0][0]}" if given else "--reward-check"
        raise AdvisorError(f"{flag}: {exc}") from None
    return [
        f"stage '{name}' has no reward: its script uses the PLACEHOLDER length reward (prefers ~200-character answers, which "
        "teaches length, not correctness); give --reward-check FIELD, --reward-fn FILE.py:FUNCTION or --reward-model MODEL"
        for name in left
    ]


def weights_warning(plan) -> list[str]:
    """A local model folder (or the folder of the config.json named) without weight files: the estimate only
    needs config.json, but the script's from_pretrained needs the weights beside it."""
    from ..scriptgen.config_block import model_location

    if plan.model.key == "tiny" or not plan.model.hf_id:
        return []
    folder = Path(model_location(plan.model.hf_id))
    if not folder.is_dir() or any(next(folder.glob(pattern), None) for pattern in ("*.safetensors", "*.bin", "*.safetensors.index.json")):
        return []
    return [
        f"{folder} holds no weights (*.safetensors, *.bin): the memory estimate needs only its config.json, but the script loads the model from there"
    ]


def run(args: argparse.Namespace) -> int:
    from ..errors import AdvisorError
    from ..knobs import setup_from_args
    from ..scriptgen import write_run

    knobs_given = [k.flag for k in GENERATE_KNOBS if getattr(args, k.field, None) is not None]
    if args.plan:
        from ..plan import load_plan

        extra = (["--model"] if args.model else []) + (["--reward-value-model"] if args.reward_value_model else []) + knobs_given
        if extra:
            raise AdvisorError(f"--plan fixes the model and set-up; drop {', '.join(extra)} or edit the plan file")
        from ..planning import stages_as_run

        plan = load_plan(args.plan)
        for note in stages_as_run(plan):
            print(f"advisor: warning: {note}", file=sys.stderr)
        label = f"{plan.model.key}-{plan.pipeline}"
    else:
        if not args.model:
            raise AdvisorError("give --plan FILE or --model NAME (--model tiny writes an offline smoke test)")
        from ..planning import build_plan

        setup = setup_from_args(args)
        reward_value = plan_reward_value(args.reward_value_model, args.method_kind, absolute(args.model))
        plan = build_plan(absolute(args.model), setup, pipeline=args.method_kind, gpu=args.gpu, output_dir="outputs", reward_value=reward_value)
        label = f"{args.model}-{args.method_kind}"
    warnings = assign_datasets(plan, args)
    seq_len = data_seq_len(plan)
    if not args.plan and getattr(args, "seq_len", None) is None and seq_len and seq_len != plan.stages[0].setup.seq_len:
        # no --seq-len: the plan is made at the length the data needs (issue 17), then the data assigned again
        from ..planning import build_plan

        args.seq_len = seq_len
        plan = build_plan(
            absolute(args.model), setup_from_args(args), pipeline=args.method_kind, gpu=args.gpu, output_dir="outputs", reward_value=reward_value
        )
        warnings = assign_datasets(plan, args)
    for warning in warnings + assign_reward(plan, args) + weights_warning(plan):
        print(f"advisor: warning: {warning}", file=sys.stderr)
    if not args.json:
        from ..datasets.wire import summary_line

        for stage in plan.stages:
            if stage.data is not None:
                print(f"dataset for stage '{stage.name}': {summary_line(stage.data)}")
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
        where = shlex.quote(str(out))
        print(f"next: read {out}/README.md, then `cd {where} && python train_{first}.py` (or `advisor launch {where}`)")
    return 0
