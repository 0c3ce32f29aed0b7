"""`advisor models`: the bundled model catalog and the size shorthands."""

from __future__ import annotations

import argparse
import json
from typing import Any

NAME = "models"
EXAMPLES = "examples:\n  advisor models\n  advisor models --json\n  advisor models qwen\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("filter", nargs="?", default="", help="show only keys containing this text")
    p.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    from estimators.catalog import catalog, shorthands
    from estimators.params import count_params

    rows: list[dict[str, Any]] = [
        {"key": key, "hf_id": spec.hf_id, "model_type": spec.model_type, "params": count_params(spec).total, "active": count_params(spec).active}
        for key, spec in catalog().items()
        if args.filter.lower() in key
    ]
    if args.json:
        print(json.dumps({"models": rows, "shorthands": shorthands()}, indent=2, allow_nan=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("key", "hub id", "type", "parameters", title=f"{len(rows)} models")
    for r in rows:
        active = f" ({r['active'] / 1e9:.1f}B active)" if r["active"] != r["params"] else ""
        table.add_row(r["key"], r["hf_id"], r["model_type"], f"{r['params']:,}{active}")
    console = Console()
    console.print(table)
    console.print("shorthands: " + ", ".join(f"{k} → {v}" for k, v in shorthands().items()))
    return 0
