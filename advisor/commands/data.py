"""`advisor data check PATH`: read the user's training data, say what type it is and what it can train, list its
problems, measure its token lengths, and turn them into a sequence length, packing, and a memory verdict.
Light: no torch, transformers, textual or `datasets` (pyarrow reads parquet and saved folders; `tokenizers` and
jinja2 count tokens)."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "data"
EXAMPLES = """examples:
  advisor data check train.jsonl
  advisor data check data.parquet --model Qwen/Qwen2.5-7B-Instruct --gpu rtx4090
  advisor data check ./saved_dataset --split test --sample 1000
  advisor data check HuggingFaceH4/ultrafeedback_binarized --train dpo --model 8b --gpu a100-80gb --json
  advisor data check pairs.csv --tokenizer ./my-model --seq-len 4096 --keep 99.5
exit status: 0 usable (warnings are printed), 2 unusable as it is or bad input.
"""


def _keep(text: str) -> float:
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--keep expects a share like 99 or 0.99, got '{text}'") from None
    share = value / 100 if value > 1 else value
    if not 0 < share <= 1:
        raise argparse.ArgumentTypeError(f"--keep must be between 0 and 100 %, got '{text}'")
    return share


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..knobs import add_knob_flags

    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    c = sub.add_parser(
        "check",
        help="check a data file, folder or cached hub dataset",
        description=p.description,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument(
        "path",
        metavar="PATH",
        help=".jsonl/.json/.csv/.parquet (text formats also .gz), a folder, a saved `datasets` "
        "folder, or a dataset id in the local Hugging Face cache (never downloaded)",
    )
    c.add_argument("--split", help="the split to read where there are several (default: train, else the first)")
    c.add_argument("--sample", type=_positive, metavar="N", help="check only the first N rows (quick)")
    c.add_argument("--model", help="model for the tokenizer (when local) and the memory estimate: catalog key, hub id in the cache, or a folder")
    c.add_argument("--tokenizer", help="a tokenizer folder, tokenizer.json, or hub id in the local cache (default: --model's, when local)")
    c.add_argument("--gpu", help="a GPU id/name or a size like 24GB: whether the longest batch fits (needs --model)")
    c.add_argument("--keep", type=_keep, default=0.99, metavar="PCT", help="share of rows the recommended --seq-len keeps whole (default: 99)")
    c.add_argument("--epochs", type=float, default=1.0, help="epochs for the time and cost (with --model and --gpu; default: 1)")
    c.add_argument("--price", type=float, metavar="USD", help="US dollars per GPU-hour (default: the GPU table's on-demand price)")
    c.add_argument("--json", action="store_true", help="print the whole check as JSON (schema advisor.data/1)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_knob_flags(
        c, only=("train", "adaptation", "precision", "micro_batch", "seq_len", "grad_ckpt", "lora_r", "response_len", "num_generations", "packed")
    )
    for action in c._actions:  # here the data decides these two defaults, not Setup
        if action.dest == "train":
            action.help = "training kind to plan for (default: what the data type is usually for: sft, dpo for pairs, grpo for prompts)"
        elif action.dest == "seq_len":
            action.help = "the planned tokens per sequence: truncation and packing are reported at it (default: the recommended one)"


def run(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) != "check":
        from ..errors import AdvisorError

        raise AdvisorError("say what to do: `advisor data check PATH` (see `advisor data check --help`)")
    data = check_from_args(args)
    if args.json:
        json.dump(data, sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
        print()
    else:
        from ..datasets.render import print_check

        print_check(data)
    if not data["usable"]:
        print(f"advisor: {data['verdict']}", file=sys.stderr)
        return 2
    return 0


def check_from_args(args: argparse.Namespace) -> dict:
    from ..datasets import sources
    from ..datasets.check import Options
    from ..datasets.counters import counter_for
    from ..errors import AdvisorError

    source = sources.resolve(args.path, args.split)
    counter, why = counter_for(args.tokenizer, args.model)
    resolved = None
    if args.model:
        from estimators.catalog import resolve_model

        resolved = resolve_model(args.model)
    elif args.gpu:
        raise AdvisorError("--gpu needs --model: the memory verdict is priced for one model")
    from ..knobs import setup_from_args

    setup = setup_from_args(args)
    options = Options(
        sample=args.sample,
        seq_len=args.seq_len,
        keep=args.keep,
        micro_batch=setup.micro_batch,
        kind=args.train,
        response_len=setup.response_len,
        max_positions=resolved.spec.max_positions if resolved else 0,
    )
    data = _with_progress(source, counter, options, show=not args.no_progress and not args.json)
    if data["tokens"]:
        data["tokens"]["counter"]["why"] = why
    if resolved and data.get("recommendation"):
        data["memory"] = memory_verdict(resolved, setup, data, args.gpu)
        if args.gpu:
            data["time"] = time_verdict(resolved, setup, data, args.gpu, args.epochs, args.price, args.packed)
    return data


def time_verdict(resolved, setup, data: dict, gpu_text: str, epochs: float, price: float | None, packed_flag: bool | None) -> dict | None:
    """Hours and cost from the data's real token count (estimators/time_report.py prices a step): packed, the
    tokens themselves; unpacked, every row plus the padding its batch adds."""
    try:
        from estimators.time_report import Dataset, time_dict
    except ImportError:  # the time model is not in this build
        return None
    from estimators.gpus import find_gpu

    rec, tok = data["recommendation"], data["tokens"]
    packed = rec["packing"] if packed_flag is None else packed_flag and rec["kind"] == "sft"  # trl packs SFT only
    planned = setup.with_(train=rec["kind"], seq_len=rec["planned_seq_len"], packed=bool(packed))
    rows = tok["unpacked"]["sequences"]
    if packed:
        dataset = Dataset(tokens=tok["tokens_per_epoch"], epochs=epochs)
    else:
        dataset = Dataset(examples=rows, mean_tokens=(tok["tokens_per_epoch"] + tok["unpacked"]["padding_tokens"]) / rows, epochs=epochs)
    from estimators.errors import EstimateError

    try:
        block = time_dict(resolved.spec, planned, find_gpu(gpu_text), dataset, price)
    except EstimateError as exc:  # a GPU given by its memory size has no speed figures: memory only
        return {"skipped": str(exc)}
    block["from_data"] = (
        "packed: the data's tokens" if packed else "unpacked: the data's tokens plus the padding of each batch"
    ) + f" at --seq-len {rec['planned_seq_len']:,}"
    return block


def memory_verdict(resolved, setup, data: dict, gpu_text: str | None) -> dict:
    from estimators.gpus import find_gpu

    from ..datasets.recommend import memory_at

    rec = data["recommendation"]
    gpu = find_gpu(gpu_text) if gpu_text else None
    longest = data["tokens"]["sequence"]["max"]
    planned = setup.with_(train=rec["kind"], seq_len=rec["planned_seq_len"])
    out = memory_at(resolved.spec, planned, longest, gpu.memory_bytes if gpu else None)
    return {
        "model": resolved.spec.name,
        "gpu": gpu.name if gpu else None,
        "micro_batch": setup.micro_batch,
        **out,
        "note": "unpacked batches peak on the longest row (padded to it, cut at --seq-len): that is the step that runs out of memory mid-epoch",
    }


def _with_progress(source, counter, options, show: bool) -> dict:
    from ..datasets.check import run_check

    if not show:
        return run_check(source, counter, options)
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        return run_check(source, counter, options)
    columns = (TextColumn("reading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("read", total=source.size_bytes if not options.sample else None)
        return run_check(source, counter, options, on_bytes=lambda n: progress.advance(task, n))
