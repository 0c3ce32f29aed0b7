"""How far the estimator is from measurements, as `advisor accuracy` reports it: the summary of the traced and
published comparisons (estimators/accuracy_traces.py, accuracy_published.py) against the targets, rendered to
docs/accuracy.md and README.md's accuracy block. Standard library only; a test fails when either file drifts from
what this module generates now.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from . import band
from .accuracy_published import compare_published
from .accuracy_rows import Comparison
from .accuracy_traces import compare_traces
from .band_fit import holdout, percentile
from .dtypes import GIB
from .errors import EstimateError

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "accuracy.md"
README_PATH = Path(__file__).resolve().parent.parent / "README.md"
README_START, README_END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"

# Targets (issue: "advisor measure"): on traced configurations, the allocated peak; on published rows, the
# figure with the matching statistic.
TRACE_MEDIAN, TRACE_MAX = 0.03, 0.08
PUBLISHED_MEDIAN = 0.10
PUBLISHED_WITHIN20 = 0.85


def summary(comparisons: list[Comparison]) -> dict:
    errors = [abs(c.error) for c in comparisons if c.error is not None]
    ooms = [c for c in comparisons if c.statistic == "oom"]
    return {
        "rows": len(comparisons),
        "compared": len(errors),
        "skipped": sum(1 for c in comparisons if c.skipped),
        "median_abs_error": statistics.median(errors) if errors else None,
        "p90_abs_error": percentile(errors, 0.9) if errors else None,
        "max_abs_error": max(errors) if errors else None,
        "within_3pct": sum(e <= 0.03 for e in errors),
        "within_8pct": sum(e <= 0.08 for e in errors),
        "within_10pct": sum(e <= 0.10 for e in errors),
        "within_20pct": sum(e <= 0.20 for e in errors),
        "under": sum(1 for c in comparisons if c.error is not None and c.error < 0),
        "oom_rows": len(ooms),
        "oom_predicted_above_capacity": sum(1 for c in ooms if c.oom_ok),
        "oom_refused": sum(1 for c in ooms if c.oom_refused),
        "models": len({c.model for c in comparisons if not c.skipped}),
    }


def _gib(n: int | None) -> str:
    return "" if n is None else f"{n / GIB:.2f}"


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:+.1f} %"


def published_groups(published: list[Comparison]) -> dict[tuple[str, str, str], list[Comparison]]:
    """The compared published rows by (source, stack, statistic); OOM rows are counted apart."""
    groups: dict[tuple[str, str, str], list[Comparison]] = {}
    for c in published:
        if c.error is not None:
            groups.setdefault((c.source_name, c.stack, c.statistic), []).append(c)
    return groups


def _stats_line(label: str, comps: list[Comparison]) -> str:
    s = summary(comps)
    return (
        f"           {label:44s} n {s['compared']:3d}  median |error| {_pct0(s['median_abs_error'])}"
        f"  p90 {_pct0(s['p90_abs_error'])}  within 20 %: {s['within_20pct']:3d}  under: {s['under']:3d}"
    )


def summary_lines(traces: list[Comparison], published: list[Comparison]) -> list[str]:
    """The summary as `advisor accuracy` prints it in docs/accuracy.md and README.md (a fenced block)."""
    ts = summary(traces)
    primary = [c for c in published if not c.row_id.endswith("/smi")]
    ps, fs = summary(primary), summary([c for c in published if c.error is not None and c.statistic != "oom"])
    misses = [c for c in published if c.statistic == "oom" and not c.oom_refused]
    lines = [
        "```",
        f"traces     rows {ts['compared']:3d}  models {ts['models']:2d}  median |error| {_pct0(ts['median_abs_error'])}"
        f"  max |error| {_pct0(ts['max_abs_error'])}  within 3 %: {ts['within_3pct']}  within 8 %: {ts['within_8pct']}"
        f"   (targets: median <= {TRACE_MEDIAN:.0%}, max <= {TRACE_MAX:.0%})",
    ]
    kinds: list[tuple[str, str | None, str]] = [("sft", loss, what) for loss, what in (("fused", "sft, fused LM head"), ("full", "sft, full logits"))]
    kinds += [(kind, None, what) for kind, what in (("reward", "reward (seq-cls)"), ("dpo", "dpo (fused head)"), ("grpo", "grpo (step peak)"))]
    for kind, loss, what in kinds:
        errs = [abs(c.error) for c in traces if c.train == kind and loss in (None, c.loss) and c.error is not None]
        if errs:
            lines.append(f"           {what:20s} n {len(errs):3d}  median |error| {_pct0(statistics.median(errs))}  max |error| {_pct0(max(errs))}")
    ga = [c for c in traces if "ga" in c.config.split()[-3:] or any(w.startswith("ga") and w[2:].isdigit() for w in c.config.split())]
    if ga:
        errs = [abs(c.error) for c in ga if c.error is not None]
        lines.append(
            f"           {'grad accumulation > 1':20s} n {len(errs):3d}  median |error| {_pct0(statistics.median(errs))}"
            f"  max |error| {_pct0(max(errs))}"
        )
    lines.append(
        f"published  rows {ps['rows']:3d}  compared {ps['compared']:3d}  not expressible {ps['skipped']:3d}"
        f"  + {fs['compared'] - ps['compared']} nvidia-smi figures of the same runs"
    )
    lines.append(
        f"           all figures n {fs['compared']:3d}  median |error| {_pct0(fs['median_abs_error'])}"
        f"  p90 {_pct0(fs['p90_abs_error'])}  within 20 %: {fs['within_20pct']}/{fs['compared']}"
        f"   (targets: median <= {PUBLISHED_MEDIAN:.0%}, >= {PUBLISHED_WITHIN20:.0%} within 20 %)"
    )
    lines.append("           by source / stack / statistic:")
    for (source, stack, stat), comps in sorted(published_groups(published).items()):
        lines.append(_stats_line(f"{source} / {stack} / {stat}", comps))
        for layout, sub in (("1 GPU", [c for c in comps if "fsdp" not in c.config]), ("fsdp x2", [c for c in comps if "fsdp" in c.config])):
            if sub and len(sub) != len(comps):
                lines.append(_stats_line(f"  {layout}", sub))
    lines += [
        f"OOM rows   {ps['oom_rows']:3d}  point figure above the card: {ps['oom_predicted_above_capacity']}"
        f"  refused by fits (band's upper end above the card): {ps['oom_refused']}"
        + (f"  (missed: {', '.join(c.row_id for c in misses)})" if misses else ""),
    ]
    lines += device_model_lines()
    lines.append("```")
    return lines


def device_model_lines() -> list[str]:
    """The fitted reserved/context constants, and how the fit does on rows it did not see (band_fit.holdout)."""
    consts = band.device_model()["constants"]
    lines = [
        "device     reserved = allocated + {:.3f} x transient (checkpointed) | {:.3f} (saved) + {:.3f} x gradients;"
        " device = reserved + context {} MiB (torch >= 2) + {:.2f} GiB on > 1 GPU".format(
            consts["frag_checkpointed"]["value"],
            consts["frag_saved"]["value"],
            consts["grad_frag"]["value"],
            consts["context"][0]["mib"],
            consts["multi_gpu_gib"]["value"],
        )
    ]
    for name, errs in holdout().items():
        if errs:
            a = [abs(e) for e in errs]
            lines.append(f"  held out {name:76s} n {len(a):3d}  median |error| {_pct0(statistics.median(a))}  max {_pct0(max(a))}")
    return lines


def render_readme_block(traces: list[Comparison], published: list[Comparison]) -> str:
    """What README.md holds between its accuracy markers (`advisor accuracy --write-readme` writes it)."""
    lines = [
        README_START,
        "Generated by `advisor accuracy --write-readme`; `tests/test_accuracy.py` fails when it drifts. Traces: the",
        "training step the generated script runs, at full size under fake tensors with CUDA semantics (`advisor",
        "measure`); published: third-party measurements (`estimators/calibration/published_calibration.csv`), priced",
        "with the HF causal-LM loss they ran.",
        "Error = (estimate - measured) / measured; every row in [docs/accuracy.md](docs/accuracy.md). The device",
        "figure (reserved + CUDA context) uses the allocator model fitted on these rows (`estimators/band_fit.py`);",
        "each estimate's band is the 10th-90th percentile of measured / estimated in its class, and `fits` uses its top.",
        "",
        *summary_lines(traces, published),
        README_END,
    ]
    return "\n".join(lines)


def readme_with_block(text: str, block: str) -> str:
    """`text` (README.md) with the part between the accuracy markers replaced by `block`."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise EstimateError(f"README.md has no {README_START} ... {README_END} block")
    return text[:start] + block + text[end + len(README_END) :]


def render_markdown(traces: list[Comparison], published: list[Comparison]) -> str:
    lines = [
        "# Estimator accuracy",
        "",
        "Generated by `advisor accuracy` from `estimators/calibration/traces.jsonl` and",
        "`estimators/calibration/published_calibration.csv`; `tests/test_accuracy.py` fails when this file differs from",
        "what the tool generates now. Error = (estimate - measured) / measured.",
        "",
        "## Summary",
        "",
        *summary_lines(traces, published),
        "",
        "What the rows are:",
        "",
        "- Traces: `advisor measure --mode trace` (`bench/trace_all.py`), the training step the generated script runs",
        "  (HF Trainer semantics: accelerate autocast and fp32 outputs, outputs freed before backward,",
        "  clip_grad_norm, fused AdamW unless named) at full size under FakeTensorMode on CPU, with CUDA semantics:",
        "  CUDA autocast op lists, the fused dropout kernel, the flash-attention kernel with its backward workspaces,",
        "  bitsandbytes' CUDA 4-bit matmul path, 512-byte allocator blocks. Two steps; the peak of live tensor",
        "  storage, which is what torch.cuda.max_memory_allocated counts. Rows marked *fused head* compute the loss",
        "  as trl 1.16's SFTTrainer does (what generated scripts run): TRL's own `add_fused_lm_head` and",
        "  `ChunkedLogProbFunction` on their CUDA path (compact scoring, Triton fold kernels and fp32-out addmm",
        "  allocation-free; `advisor/measure/fused.py`), never the B x S x V logits; the others the model's own",
        "  causal-LM loss over the full logits (`--loss full`, what the published runs used). Rows starting",
        "  *reward* / *dpo* trace trl 1.16's RewardTrainer / DPOTrainer step (`advisor/measure/prefs.py`): bN is N",
        "  preference pairs, chosen + rejected in one forward of 2N sequences; reward a seq-cls model (num_labels=1)",
        "  with the Bradley-Terry loss; DPO the policy through TRL's fused head, then the no_grad reference forward",
        "  (LoRA: adapter disabled; full: a frozen copy), the sigmoid loss; dropout disabled as both trainers do.",
        "- Device figures: rows ending `/smi` compare the nvidia-smi peak that fms-acceleration published next to the",
        "  allocated one with the estimate's on-card figure: reserved = allocated + a fitted share of the step's",
        "  transient bytes (checkpointed or saved activations) and of its gradients, rounded to 2 MiB; plus the CUDA",
        "  context of the torch generation and a multi-GPU constant (`estimators/band.py`, constants and the rows",
        "  they were fitted on in `estimators/calibration/device_model.json`). The *held out* lines refit without",
        "  one source or model and price its rows with that fit. The band of an estimate is its device figure times",
        "  the 10th and 90th percentile of measured / estimated over the published rows of its class",
        "  (adaptation x stack x statistic; fewer than 8 rows: the adaptation over every stack, then every row).",
        "- Published: the `figure_kind`/`memory_metric` of each row decides the statistic compared. The fms-acceleration",
        "  rows were measured with transformers 4.x / TRL of early 2025 (non-fused `adamw_torch`, priced with its",
        "  step scratch; Mixtral's experts as separate nn.Linear modules); their LoRA rows ran without autocast, and",
        "  the loss code of that era (a likely source of the remaining few percent) differs. 2-GPU rows are priced by",
        "  `estimators/parallel.py` (FSDP FULL_SHARD); FSDP + QLoRA rows disagree most (the source does not say how",
        "  it stored the 4-bit weights under FSDP).",
        "",
        "## Traced configurations (allocated peak)",
        "",
        "| model | set-up | measured GiB | estimate GiB | error | peak phase (measured / estimate) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in traces:
        lines.append(
            f"| {c.model} | {c.config} | {_gib(c.measured)} | {_gib(c.estimate)} | {_pct(c.error)} | {c.measured_phase} / {c.estimate_phase} |"
        )
    lines += [
        "",
        "## Published measurements",
        "",
        "Statistic: allocated = max_memory_allocated, reserved = max_memory_reserved, device = NVML / nvidia-smi",
        "(the estimate adds the CUDA context), oom = the run failed (the estimate must exceed the card).",
        "",
        "| row | model | set-up | statistic | measured GiB | estimate GiB | error | note |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for c in published:
        if c.skipped:
            continue
        if c.statistic == "oom":
            verdict = "above the card" if c.oom_ok else "**fits: wrong**"
            lines.append(f"| {c.row_id} | {c.model} | {c.config} | oom | > {_gib(c.capacity)} | {_gib(c.estimate)} | {verdict} | {c.note} |")
        else:
            lines.append(
                f"| {c.row_id} | {c.model} | {c.config} | {c.statistic} | {_gib(c.measured)} | {_gib(c.estimate)} | {_pct(c.error)} | {c.note} |"
            )
    lines += ["", "### Rows the estimator cannot express", "", "| row | model | set-up | why |", "|---|---|---|---|"]
    for c in published:
        if c.skipped:
            lines.append(f"| {c.row_id} | {c.model} | {c.config} | {c.skipped} |")
    return "\n".join(lines) + "\n"


def _pct0(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def generate() -> str:
    return render_markdown(compare_traces(), compare_published())


def generate_readme_block() -> str:
    return render_readme_block(compare_traces(), compare_published())
