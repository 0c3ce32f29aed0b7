"""The summary of the throughput comparison (estimators/time_accuracy.py): error statistics overall and by group,
the measured / predicted band `advisor estimate` shows, the L40 what-if, and the table `advisor accuracy --throughput`
prints. Kept apart from the row mapping and the fit, which do not need it. Standard library only.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import fields, replace

from .gpus import find_gpu
from .roofline import DEFAULT, Constants
from .time_accuracy import FIT_SOURCE, TARGET_MEDIAN, TARGET_WITHIN, Result
from .timing import step_time


def l40_at_l40s_peak(results: list[Result], constants: Constants = DEFAULT) -> float | None:
    """Median abs error of the fms L40 rows if their card had the L40S's dense peak (a what-if for the report)."""
    l40, l40s = find_gpu("l40"), find_gpu("l40s")
    card = replace(l40, bf16_tflops=l40s.bf16_tflops, fp16_tflops=l40s.fp16_tflops)
    errs = []
    for r in results:
        measured = r.row.measured
        if r.row.group == "fms l40" and r.error is not None and measured:
            st = step_time(*r.row.priced(), card, constants)
            errs.append(abs(st.tokens_per_s - measured) / measured)
    return statistics.median(errs) if errs else None


def stats(results: list[Result]) -> dict:
    errs = [abs(r.error) for r in results if r.error is not None]
    if not errs:
        return {"compared": 0}
    errs.sort()
    p90 = errs[min(len(errs) - 1, math.ceil(0.9 * len(errs)) - 1)]
    return {
        "compared": len(errs),
        "median_abs_error": statistics.median(errs),
        "p90_abs_error": p90,
        "within_25pct": sum(e <= 0.25 for e in errs) / len(errs),
    }


def throughput_band(results: list[Result]) -> tuple[int, float, float]:
    """(rows, 10th, 90th percentile) of measured / predicted tokens/s: the band `advisor estimate` shows."""
    ratios = sorted(x for r in results if (x := r.ratio) is not None)
    q = statistics.quantiles(ratios, n=10)
    return len(ratios), round(q[0], 2), round(q[-1], 2)


def by(results: list[Result], key) -> dict[str, dict]:
    groups: dict[str, list[Result]] = {}
    for r in results:
        if r.error is not None:
            groups.setdefault(key(r), []).append(r)
    return {k: stats(v) for k, v in sorted(groups.items())}


def _fmt(s: dict) -> str:
    if not s.get("compared"):
        return "no rows"
    return (
        f"{s['compared']:3d} rows  median {100 * s['median_abs_error']:5.1f} %  p90 {100 * s['p90_abs_error']:5.1f} %  "
        f"within 25 % {100 * s['within_25pct']:5.1f} %"
    )


def report_lines(results: list[Result], constants: Constants = DEFAULT) -> list[str]:
    """The throughput accuracy table, as `advisor accuracy --throughput` prints it."""
    fit = [r for r in results if r.row.group.startswith(FIT_SOURCE)]
    held = [r for r in results if not r.row.group.startswith(FIT_SOURCE)]
    everything = stats(results)
    lines = [
        "Throughput (tokens/s per GPU) against estimators/calibration/published_throughput.csv",
        f"targets: median abs error <= {100 * TARGET_MEDIAN:.0f} %, >= {100 * TARGET_WITHIN:.0f} % of rows within 25 %",
        f"constants fitted on: {FIT_SOURCE} (kernels == plain, packed); held out: every other group",
        "",
        f"all compared     {_fmt(everything)}",
        f"fit set          {_fmt(stats(fit))}",
        f"held out         {_fmt(stats(held))}",
        "band (measured / predicted, 10th-90th percentile over all compared rows): {1:.2f}-{2:.2f} ({0} rows)".format(*throughput_band(results))
        if any(r.error is not None for r in results)
        else "",
        "",
        "by source and GPU:",
    ]
    lines += [f"  {k:<14} {_fmt(v)}" for k, v in by(results, lambda r: r.row.group).items()]
    lines += ["", "by adaptation:"]
    lines += [f"  {k:<14} {_fmt(v)}" for k, v in by(results, lambda r: r.row.method).items()]
    what_if = l40_at_l40s_peak(results, constants)
    if what_if is not None:
        lines += [
            "",
            "note on the fms L40 rows: they imply more than the L40's datasheet 181.05 TFLOPS allows (the file is",
            "labelled 'L40-40GB', which no L40 is). Timed at the L40S's 362.05 TFLOPS instead, their median abs error",
            f"would be {100 * what_if:.1f} %. The table keeps the datasheet figure; the rows stay held out.",
        ]
    lines += ["", "constants (estimators/roofline.py):"]
    lines += [f"  {f.name} = {getattr(constants, f.name):.4g}" for f in fields(constants)]
    lines += ["", f"{'row':<6} {'group':<10} {'model':<26} {'config':<36} {'measured':>9} {'predicted':>9} {'error':>7}"]
    for r in results:
        if r.error is None:
            continue
        lines.append(
            f"{r.row.row_id:<6} {r.row.group:<10} {r.row.model[:26]:<26} {r.row.config[:36]:<36} "
            f"{r.row.measured:9.0f} {r.predicted:9.0f} {100 * r.error:+6.1f}%"
        )
    skipped: dict[str, int] = {}
    for r in results:
        if r.row.skipped:
            skipped[r.row.skipped] = skipped.get(r.row.skipped, 0) + 1
    lines += ["", f"not expressible ({sum(skipped.values())} rows):"]
    lines += [f"  {n:3d}  {why}" for why, n in sorted(skipped.items(), key=lambda kv: -kv[1])]
    return lines
