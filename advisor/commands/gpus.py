"""`advisor gpus`: the GPU table with usable memory."""

from __future__ import annotations

import argparse
import json

NAME = "gpus"
EXAMPLES = "examples:\n  advisor gpus\n  advisor gpus --json   # every column, with the datasheet and price sources\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    from estimators.gpus import gpus

    rows = [vars(g) for g in gpus().values()]
    if args.json:
        print(json.dumps(rows, indent=2, allow_nan=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "name", "memory (GiB)", "bf16", "TFLOPS", "GB/s", "$/GPU-h", title="GPUs")
    for g in rows:
        peak = g["bf16_tflops"] if g["bf16"] and g["bf16_tflops"] else g["fp16_tflops"]  # what training runs at
        price = f"{g['price_usd_per_hour']:.2f}" if g["price_usd_per_hour"] is not None else "-"
        table.add_row(
            g["id"],
            g["name"],
            f"{g['memory_gib']:.2f}",
            "yes" if g["bf16"] else "no",
            f"{peak:g}" if peak else "-",
            f"{g['memory_gbs']:g}" if g["memory_gbs"] else "-",
            price,
        )
    Console().print(table)
    return 0
