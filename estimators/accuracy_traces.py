"""The traced rows (`advisor measure --mode trace`, calibration/traces.jsonl) against the estimate: the allocated peak."""

from __future__ import annotations

from .accuracy_rows import Comparison, describe_setup, phase_family, read_traces
from .catalog import resolve_model
from .pricing import estimate
from .setup import Setup


def compare_trace(row: dict) -> Comparison:
    setup = Setup.from_dict(row["setup"])
    spec = resolve_model(row["model"]).spec
    est = estimate(spec, setup)
    return Comparison(
        source="trace",
        row_id=row["id"],
        model=row["model"],
        config=describe_setup(setup),
        statistic="allocated",
        measured=int(row["peak"]["allocated"]),
        estimate=est.peak_allocated,
        measured_phase=row.get("peak_phase", ""),
        estimate_phase=phase_family(est.peak_phase),
        note=row.get("mode", ""),
        loss="full" if setup.train == "reward" else setup.loss,
        train=setup.train,
    )


def compare_traces(rows: list[dict] | None = None) -> list[Comparison]:
    rows = read_traces() if rows is None else rows
    return sorted((compare_trace(r) for r in rows), key=lambda c: (c.model, c.config))
