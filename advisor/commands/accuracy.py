"""`advisor accuracy`: the estimator against every traced row and every published measurement. Torch-free."""

from __future__ import annotations

import argparse
import json
import sys

NAME = "accuracy"
HELP = "compare the memory estimate with the traced and published measurements (writes docs/accuracy.md)"
EXAMPLES = """examples:
  advisor accuracy                 # summary; rewrite docs/accuracy.md
  advisor accuracy --write-readme  # also rewrite the summary between README.md's accuracy markers
  advisor accuracy --check         # exit 1 if docs/accuracy.md or README.md's block differs from what the tool generates now
  advisor accuracy --json          # every comparison as JSON
  advisor accuracy --worst 10      # the largest errors
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="do not write: fail if docs/accuracy.md is out of date")
    p.add_argument("--json", action="store_true", help="print the comparisons and summaries as JSON")
    p.add_argument("--worst", type=int, default=0, metavar="N", help="list the N largest errors")
    p.add_argument("--out", help="write the markdown here instead of docs/accuracy.md")
    p.add_argument("--write-readme", action="store_true",
                   help="also rewrite the summary between <!-- accuracy:start --> and <!-- accuracy:end --> in README.md")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from estimators import accuracy as acc

    traces, published = acc.compare_traces(), acc.compare_published()
    text = acc.render_markdown(traces, published)
    out = Path(args.out) if args.out else acc.DOC_PATH
    if args.json:
        data = {
            "traces": {"summary": acc.summary(traces), "rows": [_row(c) for c in traces]},
            "published": {"summary": acc.summary(published), "rows": [_row(c) for c in published]},
        }
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        ts, ps = acc.summary(traces), acc.summary(published)
        print(f"traces:    {ts['compared']} rows, {ts['models']} models, median |error| {_p(ts['median_abs_error'])},"
              f" max {_p(ts['max_abs_error'])} (targets {acc.TRACE_MEDIAN:.0%} / {acc.TRACE_MAX:.0%})")
        print(f"published: {ps['compared']} compared, {ps['skipped']} not expressible, median |error|"
              f" {_p(ps['median_abs_error'])}, max {_p(ps['max_abs_error'])} (target {acc.PUBLISHED_MEDIAN:.0%});"
              f" OOM rows above the card: {ps['oom_predicted_above_capacity']}/{ps['oom_rows']}")
        if args.worst:
            rows = sorted((c for c in traces + published if c.error is not None), key=lambda c: -abs(c.error))
            for c in rows[: args.worst]:
                print(f"  {100 * c.error:+6.1f} %  {c.source:9s} {c.row_id:12s} {c.model} {c.config} ({c.statistic})")
    readme = acc.README_PATH
    block = acc.render_readme_block(traces, published)
    if args.check:
        stale = 0
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"advisor: {out} is out of date: run `advisor accuracy`", file=sys.stderr)
            stale = 1
        if readme.is_file() and acc.README_START in (current := readme.read_text(encoding="utf-8")):
            if acc.readme_with_block(current, block) != current:
                print(f"advisor: the accuracy block of {readme} is out of date: run `advisor accuracy --write-readme`",
                      file=sys.stderr)
                stale = 1
        return stale
    if args.write_readme:
        current = readme.read_text(encoding="utf-8")
        updated = acc.readme_with_block(current, block)
        if updated != current:
            readme.write_text(updated, encoding="utf-8")
        if not args.json:
            print(f"wrote the accuracy block of {readme}")
    if not args.json or args.out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        if not args.json:
            print(f"wrote {out}")
    return 0


def _p(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _row(c) -> dict:
    return {
        "source": c.source, "row_id": c.row_id, "model": c.model, "config": c.config, "statistic": c.statistic,
        "measured": c.measured, "estimate": c.estimate, "error": c.error, "capacity": c.capacity,
        "above_capacity": c.oom_ok, "measured_phase": c.measured_phase, "estimate_phase": c.estimate_phase,
        "skipped": c.skipped, "note": c.note,
    }
