"""How far the estimator is from measurements: the traced rows (calibration/traces.jsonl) and the published rows
(calibration/published_calibration.csv). Standard library only; `advisor accuracy` renders it to docs/accuracy.md
and a test fails when that file drifts from what this module generates now.

Like is compared with like: an allocated figure (max_memory_allocated, a trace) with the allocated estimate, a
reserved figure with the reserved estimate, an nvidia-smi / NVML figure with the device estimate (reserved plus
the CUDA context). An OOM row has no figure: the estimate must put it above the card. Rows the estimator cannot
express (other architectures, GPTQ, other PEFT methods, fused-kernel plugins) are listed with the reason.
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from .catalog import resolve_model
from .dtypes import GIB
from .errors import EstimateError
from .pricing import estimate
from .result import Estimate, phase_total
from .gpus import find_gpu
from .setup import Setup
from .versions import version_of
from . import band
from . import terms as t

CALIBRATION = Path(__file__).resolve().parent / "calibration"
TRACES_PATH = CALIBRATION / "traces.jsonl"
PUBLISHED_PATH = CALIBRATION / "published_calibration.csv"
DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "accuracy.md"
README_PATH = Path(__file__).resolve().parent.parent / "README.md"
README_START, README_END = "<!-- accuracy:start -->", "<!-- accuracy:end -->"

# Targets (issue: "advisor measure"): on traced configurations, the allocated peak; on published rows, the
# figure with the matching statistic.
TRACE_MEDIAN, TRACE_MAX = 0.03, 0.08
PUBLISHED_MEDIAN = 0.10
PUBLISHED_WITHIN20 = 0.85


@dataclass(frozen=True)
class Comparison:
    source: str  # "trace" | "published"
    row_id: str
    model: str
    config: str
    statistic: str  # allocated | reserved | device | oom
    measured: int | None  # bytes; None for OOM rows and skipped rows
    estimate: int | None
    capacity: int | None = None  # OOM rows: the card
    measured_phase: str = ""
    estimate_phase: str = ""
    skipped: str = ""  # why the estimator cannot express the row
    note: str = ""
    method: str = ""  # Setup.method (band class)
    stack: str = ""  # the stack the source ran (band_fit.SOURCE_STACK)
    source_name: str = ""  # published source, without its file detail
    high: int | None = None  # published rows: the device band's upper end (what `fits` compares with the card)
    loss: str = "full"  # Setup.loss of the row: "fused" (TRL's chunked log-prob head) or "full" (HF causal-LM loss)
    train: str = "sft"  # Setup.train of the row: sft, reward, dpo (traced; ppo and grpo are not)

    @property
    def error(self) -> float | None:
        if self.measured is None or self.estimate is None or not self.measured:
            return None
        return (self.estimate - self.measured) / self.measured

    @property
    def oom_ok(self) -> bool | None:
        """OOM rows: the point figure is above the card."""
        if self.statistic != "oom" or self.estimate is None or self.capacity is None:
            return None
        return self.estimate > self.capacity

    @property
    def oom_refused(self) -> bool | None:
        """OOM rows: `fits` says no (the band's upper end is above the card)."""
        if self.statistic != "oom" or self.high is None or self.capacity is None:
            return None
        return self.high > self.capacity


# ------------------------------------------------------------------------------------------------ traces
def read_traces(path: Path | str = TRACES_PATH) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def describe_setup(s: Setup) -> str:
    parts = [] if s.train == "sft" else [s.train]
    parts.append(s.method)
    if s.method != "full":
        parts.append(f"r{s.lora_r} {s.lora_targets}")
    parts.append(s.precision)
    if s.optimizer != "adamw":
        parts.append(s.optimizer)
    parts.append(f"b{s.micro_batch}x{s.seq_len}")
    if s.grad_accum > 1:
        parts.append(f"ga{s.grad_accum}")
    parts.append("gc" if s.checkpointing else "no-gc")
    if s.attention != "sdpa":
        parts.append(s.attention)
    if s.gpus > 1 or s.parallel != "none":
        parts.append(f"{s.parallel} x{s.world_size}")
    if s.loss == "fused" and s.train in ("sft", "dpo"):  # the reward model has no LM head to fuse
        parts.append("fused head")
    return " ".join(parts)


def _phase_family(phase: str) -> str:
    """The tracer's phase names: forward, backward, optimizer step (micro-step 2+ twins count as their phase)."""
    phase = phase.split(", micro-steps")[0]
    return "backward" if phase.startswith("backward") else phase


def compare_trace(row: dict) -> Comparison:
    setup = Setup.from_dict(row["setup"])
    spec = resolve_model(row["model"]).spec
    est = estimate(spec, setup)
    return Comparison(
        source="trace", row_id=row["id"], model=row["model"], config=describe_setup(setup), statistic="allocated",
        measured=int(row["peak"]["allocated"]), estimate=est.peak_allocated,
        measured_phase=row.get("peak_phase", ""), estimate_phase=_phase_family(est.peak_phase),
        note=row.get("mode", ""), loss="full" if setup.train == "reward" else setup.loss, train=setup.train,
    )


def compare_traces(rows: list[dict] | None = None) -> list[Comparison]:
    rows = read_traces() if rows is None else rows
    return sorted((compare_trace(r) for r in rows), key=lambda c: (c.model, c.config))


# ------------------------------------------------------------------------------------------------ published
# Hub ids of the published rows that the catalog knows under another name.
MODEL_IDS = {
    "NousResearch/Llama-2-70b-hf": "llama-2-70b",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
    "meta-llama/Llama-3.2-3B": "llama-3.2-3b",
}
# The fms-acceleration rows were measured with transformers 4.x (2024-2025), whose Mixtral experts were separate
# nn.Linear modules (w1/w2/w3) that bitsandbytes quantised; transformers 5 fuses them into 3-D parameters.
SPEC_CHANGES = {"mixtral-8x7b": ({"experts_fused": False}, "transformers 4.x Mixtral: experts as nn.Linear (quantised by QLoRA)")}
# The stack and versions each published source ran, where the evidence names them (Setup.stack / Setup.versions).
# fms-acceleration a100_80gb.csv (2025-02-07): the benchmark trains with fms-hf-tuning's sft_trainer (TRL's
# SFTTrainer on the HF Trainer), and every fms-hf-tuning release up to that date pins `transformers<4.46,>=4.45` and
# `trl<0.12,>=0.9.3` (Requires-Dist of fms-hf-tuning 2.3.1, 2.4.0 and 2.5.0, whose wheel is dated 2025-01-27; 2.6.0,
# dated 2025-02-18, moves to transformers>=4.46,<4.48.2 and trl>=0.13,<0.15). trl 0.11 has no fused head.
# fms-acceleration itself requires no transformers (0.5.0-0.6.1 METADATA). NB: the repo's own requirements freeze
# could not be read (no network), so 4.45 is the pin of the released trainer, not a recorded `pip freeze`.
SOURCE_STACKS = {
    "fms-acceleration benchmark refs (a100_80gb.csv, 2025-02-07)": ("trl", "transformers=4.45,trl=0.11"),
}
# Plain LoRA variants whose memory is LoRA's (rsLoRA only changes the scaling).
PLAIN_LORA_TAGS = ("rank32", "rank64", "rank10-target-mlp", "rank64-rslora")


def read_published(path: Path | str = PUBLISHED_PATH) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _skip(row: dict, why: str) -> Comparison:
    return Comparison(source="published", row_id=row["row_id"], model=row["model"], config=_published_config(row),
                      statistic="", measured=None, estimate=None, skipped=why)


def _published_config(row: dict) -> str:
    bits = [row["method"], f"b{row['micro_batch_size']}x{row['seq_len']}", f"gc {row['grad_ckpt']}"]
    if row["lora_r"]:
        bits.insert(1, f"r{row['lora_r']} {row['lora_targets']}")
    if row["n_gpus"] != "1":
        bits.append(f"{row['sharding']} x{row['n_gpus']}")
    return " ".join(bits)


def published_setup(row: dict) -> tuple[str, Setup, str] | str:
    """(catalog key, Setup, note) for a published row the estimator can express, else the reason it cannot. The
    published runs computed the HF causal-LM loss over the full logits (HF Trainer, TRL of 2024-2025, plain
    loops): priced with `loss="full"`."""
    method = row["method"]
    fw = row["framework"]
    if method not in ("full", "lora", "qlora"):
        return f"PEFT method '{method}' is not modelled (full, LoRA and QLoRA only)"
    if "foak" in fw:
        return "fused Triton kernels (fms foak): not the Hugging Face modelling code the estimator prices"
    if "accelerated-peft" in fw:
        return "fms accelerated-peft plugin: its own 4-bit model loading (no peft k-bit preparation)"
    if row["quantization"].startswith("GPTQ"):
        return "GPTQ base weights: not modelled"
    model_id = row["model_id"]
    key = MODEL_IDS.get(model_id, model_id)
    try:
        key = resolve_model(key).key
    except EstimateError:
        return f"model {row['model']} is not in the catalog (architecture not modelled)"
    notes = []
    source = row["source_name"]
    if source.startswith("PEFT method comparison"):
        tag = row["notes"].split("Experiment ", 1)[-1].split(";")[0].rsplit("-", 0)[0]
        if method == "lora" and not any(tag.endswith(f"llama-3.2-3B-{k}") for k in PLAIN_LORA_TAGS):
            return f"LoRA variant ({tag.split('/')[0]}/{tag.split('-')[-1]}): not plain LoRA"
        notes.append("variable lengths up to 768 tokens priced at 768; eval/generation not modelled; no AMP")
    changes: dict = {
        "loss": "full",
        "method": method,
        "micro_batch": int(row["micro_batch_size"]),
        "seq_len": int(row["seq_len"]),
        "grad_accum": int(row["grad_accum"] or 1),
        "grad_ckpt": row["grad_ckpt"] == "on",
        "precision": "fp16" if "float16" in row["precision"] and "bfloat16" not in row["precision"] else "bf16",
        "attention": "flash" if row["attn_impl"] == "flash_attention_2" else "sdpa",
    }
    if method != "full":
        changes.update(lora_r=int(row["lora_r"]), lora_alpha=int(row["lora_alpha"] or 2 * int(row["lora_r"])),
                       lora_targets=row["lora_targets"] or "all-linear")
    if row["n_gpus"] != "1":
        if "FSDP" not in row["sharding"]:
            return f"sharding '{row['sharding']}' not modelled"
        changes.update(gpus=int(row["n_gpus"]), parallel="fsdp")
    stack, versions = SOURCE_STACKS.get(source, ("trl", ""))
    if versions or stack != "trl":
        changes.update(stack=stack, versions=versions)
        notes.append(f"{stack} stack, {versions.replace('=', ' ').replace(',', ', ')}")
    setup = Setup(**changes).validated()
    if ("adamw_torch" in row["optimizer"] or row["optimizer"] == "torch.optim.AdamW") and not _stack_prices_foreach(setup):
        notes.append("foreach AdamW (not fused): its step scratch added")
    return key, setup, "; ".join(notes)


def _stack_prices_foreach(setup: Setup) -> bool:
    """Whether the row's stack and versions price the foreach AdamW scratch themselves (stack_terms
    `hf-default-foreach-adamw`, transformers < 5): then foreach_adamw_peak must not add it a second time."""
    if setup.stack == "trl" and not setup.versions:
        return False
    from .stack_terms import behaviours, applies

    return any(b.id in ("hf-default-foreach-adamw", "torch-before-fused-default") and applies(b, setup) for b in behaviours())


def _statistic(row: dict) -> str:
    if row["figure_kind"] == "oom_above_capacity":
        return "oom"
    metric = row["memory_metric"].lower()
    if "reserved" in metric:
        return "reserved"
    if "nvml" in metric or "nvidia-smi" in metric:
        return "device"
    return "allocated"


def foreach_adamw_peak(est: Estimate, m, setup: Setup) -> tuple[int, str]:
    """The estimate's peak when AdamW runs the foreach implementation (torch.optim.AdamW's default on CUDA,
    the HF Trainer's `adamw_torch`): the optimizer step gains `terms.foreach_adamw_scratch`, one state-sized
    tensor, i.e. half the optimizer states this GPU holds (sharded layouts step on their shard)."""
    if setup.optimizer != "adamw" or "optimizer step" not in est.phases:
        return est.peak_allocated, est.peak_phase
    states = sum(v.bytes for v in est.phases["optimizer step"] if v.category == "optimizer" and v.name == "optimizer states")
    if setup.world_size == 1 and setup.parallel == "none":
        assert states == 2 * t.foreach_adamw_scratch(m, setup)
    step = phase_total(est.phases["optimizer step"]) + states // 2
    if step > est.peak_allocated:
        return step, "optimizer step"
    return est.peak_allocated, est.peak_phase


def published_estimate(row: dict) -> dict | str:
    """The estimate of one published row ({key, spec, setup, estimate, allocated, phase, note}), or why the
    estimator cannot express it. `allocated` is the step's peak as the row ran it (foreach AdamW's scratch)."""
    mapped = published_setup(row)
    if isinstance(mapped, str):
        return mapped
    key, setup, note = mapped
    spec = resolve_model(key).spec
    if key in SPEC_CHANGES and row["source_name"].startswith("fms"):
        changes, why = SPEC_CHANGES[key]
        spec = spec.with_(**changes)
        note = "; ".join(x for x in (note, why) if x)
    if setup.seq_len > spec.max_positions and row["source_name"].startswith("fms"):
        # packing to max_seq_len 4096 stops at the model's context: SantaCoder's sequences are 2048 tokens (the
        # published token counts confirm it; calibration README, "How each source measured")
        setup = setup.with_(seq_len=spec.max_positions)
        note = "; ".join(x for x in (note, f"packed to the model's {spec.max_positions}-token context") if x)
    est = estimate(spec, setup)
    allocated, phase = est.peak_allocated, est.peak_phase
    if "foreach AdamW" in note:
        allocated, phase = foreach_adamw_peak(est, spec, setup)
    return {"key": key, "spec": spec, "setup": setup, "estimate": est, "allocated": allocated, "phase": phase, "note": note}


def device_figure(row: dict) -> int | None:
    """The row's nvidia-smi figure in bytes when it has one besides its primary statistic (fms: the alt column)."""
    if row["figure_kind"] != "peak" or "nvidia-smi" not in row.get("alt_memory_metric", "") or not row["alt_memory_value"]:
        return None
    scale = {"MiB": 2**20, "GiB": GIB, "bytes": 1}[row["alt_memory_unit"]]
    return int(round(float(row["alt_memory_value"]) * scale))


def on_card_figures(est: Estimate, allocated: int, model: dict | None = None) -> tuple[int, int]:
    """(reserved, device) of `est` at `allocated`, with the constants of `model` (default: the shipped fit)."""
    cats = est.categories()
    persistent = cats["parameters"] + cats["gradients"] + cats["optimizer"]
    return band.on_card(allocated, persistent, cats["gradients"], est.setup.checkpointing,
                        version_of(est.setup.versions, "torch"), est.setup.world_size, model)


def compare_published_row(row: dict, model: dict | None = None, statistic: str = "") -> Comparison:
    """One published row against its estimate; `statistic="device"` compares its nvidia-smi figure instead of the
    primary one. `model` is the reserved/context fit to use (default: estimators/calibration/device_model.json)."""
    priced = published_estimate(row)
    if isinstance(priced, str):
        return _skip(row, priced)
    key, setup, est, allocated, phase, note = (priced[k] for k in ("key", "setup", "estimate", "allocated", "phase", "note"))
    stat = statistic or _statistic(row)
    reserved, device = on_card_figures(est, allocated, model)
    value = {"allocated": allocated, "reserved": reserved, "device": device, "oom": device}[stat]
    measured = None if stat == "oom" else (device_figure(row) if stat == "device" and statistic else int(round(float(row["memory_gib"]) * GIB)))
    capacity = None
    if stat == "oom":
        gpu = row["gpu"].split(" x ")[-1] if " x " in row["gpu"] else row["gpu"]
        capacity = int(find_gpu(_gpu_name(gpu)).memory_bytes)
    stack = _source_stack(row["source_name"])
    _, entry = band.lookup(setup.method, stack, "device", model if model and model.get("bands") else None)
    return Comparison(source="published", row_id=row["row_id"] + ("/smi" if statistic else ""), model=key,
                      config=describe_setup(setup), statistic=stat, measured=measured, estimate=int(value),
                      capacity=capacity, estimate_phase=_phase_family(phase), note=note, method=setup.method,
                      stack=stack, source_name=row["source_name"].split(" (")[0],
                      high=int(device * max(entry["high"], 1.0)))


def _source_stack(source_name: str) -> str:
    from .band_fit import source_stack

    return source_stack(source_name)


def _gpu_name(text: str) -> str:
    text = text.replace("NVIDIA", "").strip()
    if "A100" in text and "80" in text:
        return "a100-80gb"
    if "A100" in text:
        return "a100-40gb"
    return text


def compare_published(rows: list[dict] | None = None, model: dict | None = None) -> list[Comparison]:
    """Every published row against its estimate, and each nvidia-smi figure (fms) as a second, device comparison."""
    rows = read_published() if rows is None else rows
    out = [compare_published_row(r, model) for r in rows]
    out += [compare_published_row(r, model, "device") for r in rows if device_figure(r) is not None
            and not isinstance(published_setup(r), str)]
    return out


# ------------------------------------------------------------------------------------------------ summary
def summary(comparisons: list[Comparison]) -> dict:
    errors = [abs(c.error) for c in comparisons if c.error is not None]
    ooms = [c for c in comparisons if c.statistic == "oom"]
    return {
        "rows": len(comparisons),
        "compared": len(errors),
        "skipped": sum(1 for c in comparisons if c.skipped),
        "median_abs_error": statistics.median(errors) if errors else None,
        "p90_abs_error": _percentile(errors, 0.9) if errors else None,
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


def _percentile(values: list[float], q: float) -> float:
    from .band_fit import percentile

    return percentile(values, q)


def published_groups(published: list[Comparison]) -> dict[tuple[str, str, str], list[Comparison]]:
    """The compared published rows by (source, stack, statistic); OOM rows are counted apart."""
    groups: dict[tuple[str, str, str], list[Comparison]] = {}
    for c in published:
        if c.error is not None:
            groups.setdefault((c.source_name, c.stack, c.statistic), []).append(c)
    return groups


def _stats_line(label: str, comps: list[Comparison]) -> str:
    s = summary(comps)
    return (f"           {label:44s} n {s['compared']:3d}  median |error| {_pct0(s['median_abs_error'])}"
            f"  p90 {_pct0(s['p90_abs_error'])}  within 20 %: {s['within_20pct']:3d}  under: {s['under']:3d}")


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
    kinds = [("sft", loss, what) for loss, what in (("fused", "sft, fused LM head"), ("full", "sft, full logits"))]
    kinds += [(kind, None, what) for kind, what in (("reward", "reward (seq-cls)"), ("dpo", "dpo (fused head)"),
                                                          ("grpo", "grpo (step peak)"))]
    for kind, loss, what in kinds:
        errs = [abs(c.error) for c in traces if c.train == kind and loss in (None, c.loss) and c.error is not None]
        if errs:
            lines.append(f"           {what:20s} n {len(errs):3d}  median |error| {_pct0(statistics.median(errs))}"
                         f"  max |error| {_pct0(max(errs))}")
    ga = [c for c in traces if "ga" in c.config.split()[-3:] or any(w.startswith("ga") and w[2:].isdigit() for w in c.config.split())]
    if ga:
        errs = [abs(c.error) for c in ga if c.error is not None]
        lines.append(f"           {'grad accumulation > 1':20s} n {len(errs):3d}  median |error| {_pct0(statistics.median(errs))}"
                     f"  max |error| {_pct0(max(errs))}")
    lines.append(
        f"published  rows {ps['rows']:3d}  compared {ps['compared']:3d}  not expressible {ps['skipped']:3d}"
        f"  + {fs['compared'] - ps['compared']} nvidia-smi figures of the same runs")
    lines.append(
        f"           all figures n {fs['compared']:3d}  median |error| {_pct0(fs['median_abs_error'])}"
        f"  p90 {_pct0(fs['p90_abs_error'])}  within 20 %: {fs['within_20pct']}/{fs['compared']}"
        f"   (targets: median <= {PUBLISHED_MEDIAN:.0%}, >= {PUBLISHED_WITHIN20:.0%} within 20 %)")
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
    from .band_fit import holdout

    consts = band.device_model()["constants"]
    lines = ["device     reserved = allocated + {:.3f} x transient (checkpointed) | {:.3f} (saved) + {:.3f} x gradients;"
             " device = reserved + context {} MiB (torch >= 2) + {:.2f} GiB on > 1 GPU".format(
                 consts["frag_checkpointed"]["value"], consts["frag_saved"]["value"], consts["grad_frag"]["value"],
                 consts["context"][0]["mib"], consts["multi_gpu_gib"]["value"])]
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
    return text[:start] + block + text[end + len(README_END):]


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
        lines.append(f"| {c.model} | {c.config} | {_gib(c.measured)} | {_gib(c.estimate)} | {_pct(c.error)} |"
                     f" {c.measured_phase} / {c.estimate_phase} |")
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
            lines.append(f"| {c.row_id} | {c.model} | {c.config} | oom | > {_gib(c.capacity)} | {_gib(c.estimate)} |"
                         f" {verdict} | {c.note} |")
        else:
            lines.append(f"| {c.row_id} | {c.model} | {c.config} | {c.statistic} | {_gib(c.measured)} |"
                         f" {_gib(c.estimate)} | {_pct(c.error)} | {c.note} |")
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
