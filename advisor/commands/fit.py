"""`advisor fit`: the largest micro-batch and sequence that fit a GPU, and the cheapest changes that make a
run fit when it does not. Torch-free, like `estimate`."""

from __future__ import annotations

import argparse
import json
import sys

from ..knobs import add_knob_flags, setup_from_args

NAME = "fit"
HELP = "make it fit: the largest batch and sequence for a GPU, and the cheapest changes when the run does not fit"
EXAMPLES = """examples:
  advisor fit --model 8b --gpu rtx4090
  advisor fit --model 8b --gpu rtx4090 --method full --micro-batch 8
  advisor fit --model 70b --gpu a100-80gb --method qlora --seq-len 8192 --json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="7b", help="catalog key, shorthand, local config.json or cached hub id (default: 7b)")
    p.add_argument("--gpu", required=True, help="a GPU id or name from `advisor gpus`, or a memory size like 24GB")
    p.add_argument("--json", action="store_true", help="print the report as JSON (schema advisor.fit/1)")
    add_knob_flags(p)


def fit_dict(report, gpu, resolved) -> dict:
    from estimators.report import estimate_dict, size

    return {
        "schema": "advisor.fit/1",
        "gpu": {"id": gpu.id, "name": gpu.name, "memory_gib": gpu.memory_gib},
        "estimate": estimate_dict(report.estimate, resolved.how, resolved.key, gpu),
        "fits": report.fits,
        "max_micro_batch": report.max_micro_batch,
        "max_seq_len": report.max_seq_len,
        "fixes": [
            {"change": fix.label, "cost": fix.cost, "set": fix.changes, "fits": fix.fits, "device": size(fix.device_bytes), "peak_allocated": size(fix.estimate.peak_allocated)}
            for fix in report.fixes
        ],
    }


def run(args: argparse.Namespace) -> int:
    from estimators.catalog import resolve_model
    from estimators.fit import fit_report
    from estimators.gpus import find_gpu

    resolved = resolve_model(args.model)
    gpu = find_gpu(args.gpu)
    report = fit_report(resolved.spec, setup_from_args(args), gpu.memory_bytes)
    data = fit_dict(report, gpu, resolved)
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
        return 0
    print_fit(data)
    return 0


def print_fit(data: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..render import setup_line, verdict_line

    console = Console()
    est = data["estimate"]
    console.print(f"[bold]{est['model']['name']}[/bold] on {data['gpu']['name']}\n[dim]{setup_line(est['setup'])}[/dim]")
    console.print(verdict_line(est["gpu"]) + f" (peak {est['peak']['device']['gib']:.1f} GiB on the card)")
    seq = est["setup"]["seq_len"]
    if data["max_micro_batch"]:
        console.print(f"largest micro-batch at {seq} tokens: [bold]{data['max_micro_batch']}[/bold]")
    if data["max_seq_len"]:
        console.print(f"longest sequence at micro-batch {est['setup']['micro_batch']}: [bold]{data['max_seq_len']}[/bold] tokens")
    if data["fits"]:
        return
    if not data["fixes"]:
        console.print("[red]no combination of the changes the advisor knows makes this fit[/red]: choose a smaller model or a larger GPU (`advisor gpus`)")
        return
    table = Table("#", "change", "on the card GiB", "cost", title="cheapest changes that make it fit", title_justify="left")
    for i, fix in enumerate(data["fixes"], 1):
        table.add_row(str(i), fix["change"], f"{fix['device']['gib']:.1f}", fix["cost"])
    console.print(table)
