"""`advisor accuracy`: the estimator against every traced row and every published measurement. Torch-free."""

from __future__ import annotations

import argparse
import json
import sys

from ..throughput import EXAMPLES as THROUGHPUT_EXAMPLES
from ..throughput import add_throughput_flags, run_throughput

NAME = "accuracy"
EXAMPLES = (
    """examples:
  advisor accuracy                 # summary; refit estimators/calibration/device_model.json, rewrite docs/accuracy.md
  advisor accuracy --write-readme  # also rewrite the summary between README.md's accuracy markers
  advisor accuracy --check         # exit 1 if docs/accuracy.md or README.md's block differs from what the tool generates now
  advisor accuracy --json          # every comparison as JSON
  advisor accuracy --worst 10      # the largest errors
"""
    + THROUGHPUT_EXAMPLES
    + "\n"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--check", action="store_true", help="do not write: fail if docs/accuracy.md is out of date")
    p.add_argument("--json", action="store_true", help="print the comparisons and summaries as JSON")
    p.add_argument("--worst", type=int, default=0, metavar="N", help="list the N largest errors")
    p.add_argument("--out", help="write the markdown here instead of docs/accuracy.md")
    p.add_argument(
        "--write-readme", action="store_true", help="also rewrite the summary between <!-- accuracy:start --> and <!-- accuracy:end --> in README.md"
    )
    add_throughput_flags(p)


def run(args: argparse.Namespace) -> int:
    if args.throughput:
        return run_throughput(args)  # the time model's table (advisor/throughput.py)
    from pathlib import Path

    from estimators import accuracy as acc
    from estimators import band, band_fit
    from estimators.accuracy_published import compare_published
    from estimators.accuracy_traces import compare_traces

    # the reserved/context constants and the error bands are fitted on the published rows first (band_fit.py);
    # every comparison below then prices the device figure with them. Only the plain command rewrites the shipped
    # fit; --check, --json and --out compare with the fit `advisor estimate` uses now.
    model_text = band_fit.render(band_fit.build())
    model_stale = band.MODEL_PATH.read_text(encoding="utf-8") != model_text if band.MODEL_PATH.is_file() else True
    if model_stale and not (args.check or args.json or args.out):
        band.MODEL_PATH.write_text(model_text, encoding="utf-8")
        band.device_model.cache_clear()
    traces, published = compare_traces(), compare_published()
    text = acc.render_markdown(traces, published)
    out = Path(args.out) if args.out else acc.DOC_PATH
    if args.json:
        data = {
            "traces": {"summary": acc.summary(traces), "rows": [_row(c) for c in traces]},
            "published": {"summary": acc.summary(published), "rows": [_row(c) for c in published]},
        }
        json.dump(data, sys.stdout, indent=2, allow_nan=False)
        print()
    else:
        ts, ps = acc.summary(traces), acc.summary(published)
        print(
            f"traces:    {ts['compared']} rows, {ts['models']} models, median |error| {_p(ts['median_abs_error'])},"
            f" max {_p(ts['max_abs_error'])} (targets {acc.TRACE_MEDIAN:.0%} / {acc.TRACE_MAX:.0%})"
        )
        print(
            f"published: {ps['compared']} figures compared ({ps['skipped']} rows not expressible), median |error|"
            f" {_p(ps['median_abs_error'])}, p90 {_p(ps['p90_abs_error'])}, within 20 %: {ps['within_20pct']}/{ps['compared']}"
            f" (targets {acc.PUBLISHED_MEDIAN:.0%} / {acc.PUBLISHED_WITHIN20:.0%});"
            f" OOM rows refused by fits: {ps['oom_refused']}/{ps['oom_rows']}"
        )
        for (source, stack, stat), comps in sorted(acc.published_groups(published).items()):
            g = acc.summary(comps)
            print(
                f"  {source} / {stack} / {stat}: n {g['compared']}, median {_p(g['median_abs_error'])},"
                f" p90 {_p(g['p90_abs_error'])}, within 20 %: {g['within_20pct']}"
            )
        if args.worst:
            worst = sorted(((c.error, c) for c in traces + published if c.error is not None), key=lambda pair: -abs(pair[0]))
            for error, c in worst[: args.worst]:
                print(f"  {100 * error:+6.1f} %  {c.source:9s} {c.row_id:12s} {c.model} {c.config} ({c.statistic})")
    readme = acc.README_PATH
    block = acc.render_readme_block(traces, published)
    if args.check:
        stale = 0
        if model_stale:
            print(f"advisor: {band.MODEL_PATH} is out of date: run `advisor accuracy`", file=sys.stderr)
            stale = 1
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            print(f"advisor: {out} is out of date: run `advisor accuracy`", file=sys.stderr)
            stale = 1
        if readme.is_file() and acc.README_START in (current := readme.read_text(encoding="utf-8")):
            if acc.readme_with_block(current, block) != current:
                print(f"advisor: the accuracy block of {readme} is out of date: run `advisor accuracy --write-readme`", file=sys.stderr)
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
        "source": c.source,
        "row_id": c.row_id,
        "model": c.model,
        "config": c.config,
        "statistic": c.statistic,
        "measured": c.measured,
        "estimate": c.estimate,
        "error": c.error,
        "capacity": c.capacity,
        "above_capacity": c.oom_ok,
        "measured_phase": c.measured_phase,
        "estimate_phase": c.estimate_phase,
        "skipped": c.skipped,
        "note": c.note,
        "method": c.adaptation,
        "stack": c.stack,
        "source_name": c.source_name,
        "band_high": c.high,
        "refused_by_fits": c.oom_refused,
        "unit": "bytes",
    }
