"""Fit the reserved / context model and the error bands on the published rows (estimators/band.py reads the result).

Two steps, both on estimators/calibration/published_calibration.csv, standard library only:

1. The allocator constants (band.reserved_bytes, band.context_bytes). Each published row that the estimator can
   price and that has a figure beyond the allocated peak gives one equation:
     fms-acceleration (HF Trainer + TRL, A100 80GB, packed 4096-token data, checkpointing on):
       nvidia-smi - measured allocated - context = frag_checkpointed x transient + grad_frag x gradients + nccl
       (transient = measured allocated - the estimate's weights, gradients and optimizer states at its peak, so
       the estimator's own error does not leak into the allocator constants)
     PEFT method comparison (plain loop, L40S, variable-length padded batches, checkpointing off):
       max_memory_reserved - estimated allocated = frag_saved x transient + grad_frag x gradients
   solved by least squares with every constant kept >= 0. The CUDA context is not fitted (no row separates it
   from the allocator cache): torch >= 2.0 loads kernels lazily, ~0.5 GiB (DESIGN.md, measured on A100/H100);
   older torch loads every kernel image at start-up, 1343 MiB on the V100 rows of the transformers docs
   (r0496-r0504, stated there).
2. The bands. Every published row with a device figure (fms nvidia-smi) is priced end to end with the fitted
   constants; measured / estimated per class (adaptation x stack x statistic) gives the 10th and 90th percentile.
   Classes with fewer than MIN_ROWS rows are not used (band.lookup falls back to coarser classes).

`advisor accuracy` rewrites device_model.json from this module; tests/test_band_fit.py fails when it drifts.
"""

from __future__ import annotations

import json
import statistics

from . import accuracy_published as pub
from .band import ENCODER, MODEL_PATH, adaptation
from .dtypes import GIB

MIN_ROWS = 8
CONTEXT: list[dict] = [
    {"torch_from": [2, 0], "mib": 512, "source": "torch >= 2.0 lazy kernel loading: ~0.5 GiB on A100/H100 (DESIGN.md)"},
    {"torch_from": [0, 0], "mib": 1343, "source": "torch 1.x loads every kernel image: 1343 MiB stated on V100 (transformers docs rows r0496-r0504)"},
]
FITTED = ("frag_checkpointed", "frag_saved", "grad_frag", "multi_gpu_gib")


def _persistent(est) -> tuple[int, int]:
    cats = est.categories()
    return cats["parameters"] + cats["gradients"] + cats["optimizer"], cats["gradients"]


def fit_rows(rows: list[dict] | None = None) -> list[dict]:
    """One equation per published row the estimator prices that has a reserved or device figure."""
    out = []
    context = CONTEXT[0]["mib"] * 2**20  # every priced row ran torch >= 2
    for row in rows if rows is not None else pub.read_published():
        priced = pub.published_estimate(row)
        if isinstance(priced, str) or row["figure_kind"] != "peak":
            continue
        est, allocated = priced["estimate"], priced["allocated"]
        persistent, grads = _persistent(est)
        multi = est.setup.world_size > 1
        device = pub.device_figure(row)
        if device is not None:  # fms: measured allocated and nvidia-smi
            measured_alloc = int(round(float(row["memory_gib"]) * GIB))
            target = device - measured_alloc - context
            base = measured_alloc
        elif pub.row_statistic(row) == "reserved":
            target = int(round(float(row["memory_gib"]) * GIB)) - allocated
            base = allocated
            multi = False  # reserved excludes NCCL's buffers
        else:
            continue
        out.append(
            {
                "row_id": row["row_id"],
                "source": row["source_name"].split(" (")[0],
                "target": target,
                "gc": est.setup.checkpointing,
                "transient": max(base - persistent, 0),
                "gradients": grads,
                "multi": multi,
            }
        )
    return out


def _features(r: dict) -> list[float]:
    return [r["transient"] / GIB if r["gc"] else 0.0, 0.0 if r["gc"] else r["transient"] / GIB, r["gradients"] / GIB, 1.0 if r["multi"] else 0.0]


def least_squares_nonneg(xs: list[list[float]], ys: list[float]) -> list[float]:
    """min |X c - y| with c >= 0: solve, drop the most negative coefficient, repeat (few unknowns, exact enough)."""
    active = list(range(len(xs[0])))
    while True:
        coef = _solve([[x[j] for j in active] for x in xs], ys) if active else []
        full = [0.0] * len(xs[0])
        for j, c in zip(active, coef, strict=False):
            full[j] = c
        negative = [j for j in active if full[j] < 0]
        if not negative:
            return full
        active.remove(min(negative, key=lambda j: full[j]))


def _solve(xs: list[list[float]], ys: list[float]) -> list[float]:
    """Normal equations by Gauss-Jordan elimination; a column with no data gets 0."""
    n = len(xs[0])
    a = [[sum(x[i] * x[j] for x in xs) for j in range(n)] + [sum(x[i] * y for x, y in zip(xs, ys, strict=False))] for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) < 1e-12:
            continue
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col] / a[col][col]
                a[r] = [v - f * w for v, w in zip(a[r], a[col], strict=False)]
    return [a[i][n] / a[i][i] if abs(a[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit_constants(rows: list[dict]) -> dict:
    coef = least_squares_nonneg([_features(r) for r in rows], [r["target"] / GIB for r in rows])
    used = {
        "frag_checkpointed": [r for r in rows if r["gc"]],
        "frag_saved": [r for r in rows if not r["gc"]],
        "grad_frag": [r for r in rows if r["gradients"]],
        "multi_gpu_gib": [r for r in rows if r["multi"]],
    }
    return {name: {"value": round(value, 4), "rows": [r["row_id"] for r in used[name]]} for name, value in zip(FITTED, coef, strict=False)}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def band_table(ratios: list[tuple[str, str, str, float, str]]) -> dict:
    """(method, stack, statistic, measured/estimated, source) -> the band of every class with enough rows, and the
    pooled classes (method x any, any x any) that the fallback uses."""
    groups: dict[str, list[tuple[float, str]]] = {}
    for method, stack, stat, ratio, source in ratios:
        names = [f"{adaptation(method)} x {stack} x {stat}", f"{adaptation(method)} x any x {stat}"]
        if method != ENCODER:  # the pooled fallback is the decoders' (band.band_method)
            names.append(f"any x any x {stat}")
        for name in names:
            groups.setdefault(name, []).append((ratio, source))
    out = {}
    for name, items in sorted(groups.items()):
        values = [v for v, _ in items]
        sources = sorted({s for _, s in items})
        out[name] = {
            "low": round(percentile(values, 0.1), 4),
            "high": round(percentile(values, 0.9), 4),
            "median": round(statistics.median(values), 4),
            "n": len(values),
            "source": f"{len(values)} published rows ({', '.join(sources)}); measured / estimated",
        }
    return out


def build(rows: list[dict] | None = None) -> dict:
    """The whole device_model.json: constants with the rows they were fitted on, and the band table."""
    rows = pub.read_published() if rows is None else rows
    constants = fit_constants(fit_rows(rows))
    model = {"schema": "advisor.device_model/1", "min_rows": MIN_ROWS, "constants": {**constants, "context": CONTEXT}, "bands": {}}
    ratios = []
    for c in pub.compare_published(rows, model=model):
        if c.error is not None and c.measured and c.estimate and c.statistic in ("device", "reserved"):
            ratios.append((c.adaptation, c.stack, c.statistic, c.measured / c.estimate, c.source_name))
    model["bands"] = band_table(ratios)
    return model


def render(model: dict) -> str:
    return json.dumps(model, indent=1, sort_keys=True) + "\n"


def write(model: dict) -> None:
    MODEL_PATH.write_text(render(model), encoding="utf-8")


def holdout(rows: list[dict] | None = None) -> dict[str, list[float]]:
    """The errors of `holdout_rows`, by group."""
    return {name: list(errors.values()) for name, errors in holdout_rows(rows).items()}


def holdout_rows(rows: list[dict] | None = None) -> dict[str, dict[str, float]]:
    """Generalisation check: for each source, and each model, refit the constants without its rows and price its
    device / reserved figures with them (row id -> error). A constant left without rows by the hold-out (the PEFT source alone has
    no checkpointing) takes the other fragmentation constant: the only thing known about it."""
    rows = pub.read_published() if rows is None else rows
    eqs = fit_rows(rows)
    by_id = {r["row_id"]: r for r in rows}
    groups: dict[str, set[str]] = {}
    for e in eqs:
        row = by_id[e["row_id"]]
        groups.setdefault(f"source {row['source_name']}", set()).add(e["row_id"])  # one published file each
        groups.setdefault(f"model {row['model']}", set()).add(e["row_id"])
    out = {}
    for name, held in sorted(groups.items()):
        train = [e for e in eqs if e["row_id"] not in held]
        constants = fit_constants(train)
        for a, b in (("frag_saved", "frag_checkpointed"), ("frag_checkpointed", "frag_saved")):
            if not constants[a]["rows"]:
                constants[a] = {"value": constants[b]["value"], "rows": []}
        model = {"constants": {**constants, "context": CONTEXT}}
        errors = {}
        for rid in sorted(held):
            row = by_id[rid]
            stat = "device" if pub.device_figure(row) is not None else ""
            c = pub.compare_published_row(row, model, stat)
            if c.error is not None:
                errors[rid] = c.error
        out[name] = errors
    return out
