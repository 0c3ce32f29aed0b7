"""How far the time model is from published throughput (calibration/published_throughput.csv), and the fit of its
few constants (estimators/roofline.py). Standard library only.

Every row the model can express is compared on tokens per second per GPU; the others are listed with the reason.
The constants are fitted on one source only (FIT_SOURCE: the fms-acceleration A100 80GB packed plain rows) and the
error is reported separately on the rows not fitted on (the fms L40 rows, the PEFT L40S rows): fit physics, not rows.
`kernels != plain` rows (fms fused Triton kernels, Liger, GPTQ, ScatterMoE) are excluded: the model prices the
stock Hugging Face code, and those kernels replace exactly the parts it counts (cross-entropy, norms, RoPE, LoRA).
The error statistics and the printed table are in estimators/time_accuracy_report.py.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

from .accuracy_setups import MODEL_IDS, PLAIN_LORA_TAGS, SPEC_CHANGES, peft_experiment, peft_tag_in
from .catalog import resolve_model
from .errors import EstimateError
from .gpus import find_gpu
from .model import ModelSpec
from .params import layer_linears
from .roofline import DEFAULT, Constants
from .setup import Setup
from .timing import step_time

THROUGHPUT_PATH = Path(__file__).resolve().parent / "calibration" / "published_throughput.csv"
FIT_SOURCE = "fms a100"  # rows whose group starts with this are the fit set; the rest are held out
TARGET_MEDIAN, TARGET_WITHIN = 0.15, 0.80  # issue 16: median abs error <= 15 %, >= 80 % of rows within 25 %

MEAN_TOKENS = {"PEFT": 209.9}  # MetaMathQA: 4,198,051 tokens / 20,000 samples (published_throughput README)


@dataclass(frozen=True)
class Row:
    row_id: str
    group: str  # "<source> <gpu>", e.g. "fms a100", "fms l40", "PEFT l40s"
    model: str
    method: str
    config: str
    measured: float | None  # tokens/s per GPU
    spec: ModelSpec | None = None
    setup: Setup | None = None
    gpu: str = ""
    skipped: str = ""

    def priced(self) -> tuple[ModelSpec, Setup]:
        """The (model, set-up) of an expressible row."""
        assert self.spec is not None and self.setup is not None, self.skipped
        return self.spec, self.setup


@dataclass(frozen=True)
class Result:
    row: Row
    predicted: float | None

    @property
    def error(self) -> float | None:
        if self.predicted is None or not self.row.measured:
            return None
        return (self.predicted - self.row.measured) / self.row.measured

    @property
    def ratio(self) -> float | None:
        """Measured / predicted tokens/s; None for a row not compared."""
        if self.predicted is None or not self.row.measured:
            return None
        return self.row.measured / self.predicted


def read_rows(path: Path | str = THROUGHPUT_PATH) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _group(row: dict) -> str:
    gpu = row["gpu"]
    card = "l40s" if "L40S" in gpu else "l40" if "L40" in gpu else "a100" if "A100" in gpu else gpu
    return f"{'PEFT' if row['source_name'].startswith('PEFT') else 'fms'} {card}"


def _gpu_id(row: dict) -> str:
    g = _group(row).split()[-1]
    return {"a100": "a100-80gb", "l40": "l40", "l40s": "l40s"}[g]


def _skip(row: dict, why: str) -> Row:
    return Row(row["row_id"], _group(row), row["model"], row["method"], "", float(row["tokens_per_s_per_gpu"] or 0) or None, skipped=why)


def map_row(row: dict) -> Row:
    """The (model, setup, GPU) of a published row, or the row with the reason it cannot be expressed."""
    if row["kernels"] != "plain":
        return _skip(row, f"custom kernels ({row['kernels']}): the model prices stock Hugging Face code")
    method = row["method"]
    if method not in ("full", "lora", "qlora", "dora"):
        return _skip(row, f"PEFT method '{method}' is not modelled (full, LoRA, DoRA and QLoRA only)")
    if row["source_name"].startswith("PEFT") and method == "lora":
        tag = peft_experiment(row)
        if not peft_tag_in(tag, PLAIN_LORA_TAGS):
            return _skip(row, f"LoRA variant ({tag.split('-')[-1]}): not plain LoRA")
    if "moe" in row["source_name"]:
        return _skip(
            row,
            "plain HF MoE with a per-expert Python loop and unpacked, extrapolated token counts "
            "(the source's own sanity flag): not the batched expert matmuls the model prices",
        )
    packed = row["seq_len_kind"].startswith("packed")
    if not packed and not row["source_name"].startswith("PEFT"):
        return _skip(row, "unpacked orca-math rows: the per-batch lengths (and so the padding) are not published")
    model_id = row["model_id"]
    try:
        resolved = resolve_model(MODEL_IDS.get(model_id, model_id))
    except EstimateError:
        return _skip(row, f"model {row['model']}: architecture numbers (config.json) not available offline")
    spec = resolved.spec
    if resolved.key in SPEC_CHANGES and row["source_name"].startswith("fms"):
        spec = spec.with_(**SPEC_CHANGES[resolved.key][0])
    seq = int(row["seq_len"]) if packed else round(MEAN_TOKENS["PEFT"])
    fp16 = "float16" in row["precision"] and "bfloat16" not in row["precision"]
    changes = {
        "loss": "full",
        "adaptation": "lora" if method == "dora" else method,  # the CSV's method column: full, lora, dora or qlora by now
        "dora": method == "dora",
        "micro_batch": int(row["micro_batch_size"]),
        "seq_len": seq,
        "grad_accum": int(row["grad_accum"] or 1),
        "grad_ckpt": row["grad_ckpt"] == "on",
        "precision": "fp16" if fp16 else "bf16",
        "attention": "flash" if "flash" in row["attn_impl"] else "sdpa",
        "packed": packed,
    }
    if method != "full":
        # peft adapts the listed names the model has (fms lists c_attn for SantaCoder next to q/k/v/o for the rest)
        names = {lin.name for lin in layer_linears(spec)}
        targets = ",".join(n for n in row["lora_targets"].split(",") if n in names) or "all-linear"
        changes.update(
            lora_r=int(row["lora_r"]),
            lora_alpha=int(row["lora_alpha"] or 2 * int(row["lora_r"])),
            lora_targets=targets,
            lora_dropout=0.0 if "dropout 0.0" in row["notes"] or row["source_name"].startswith("PEFT") else 0.05,
        )
    if method == "qlora":  # fms baseline-peft-bnb: peft's k-bit preparation upcasts; accelerated-peft-bnb does not
        changes["kbit_upcast"] = "baseline-peft-bnb" in row["framework"]
    if row["n_gpus"] != "1":
        if "FSDP" not in row["sharding"]:
            return _skip(row, f"sharding '{row['sharding']}' not modelled")
        changes.update(gpus=int(row["n_gpus"]), parallel="fsdp")
    try:
        setup = Setup(**changes)
    except EstimateError as exc:
        return _skip(row, str(exc))
    config = (
        f"{method} b{changes['micro_batch']}x{seq} gc {row['grad_ckpt']}"
        + (f" fsdp x{row['n_gpus']}" if row["n_gpus"] != "1" else "")
        + (" baseline-bnb" if changes.get("kbit_upcast") else "")
    )
    return Row(row["row_id"], _group(row), spec.name, method, config, float(row["tokens_per_s_per_gpu"]), spec=spec, setup=setup, gpu=_gpu_id(row))


def mapped_rows(path: Path | str = THROUGHPUT_PATH) -> list[Row]:
    return [map_row(r) for r in read_rows(path)]


def predict(row: Row, constants: Constants = DEFAULT) -> Result:
    if row.skipped:
        return Result(row, None)
    try:
        st = step_time(*row.priced(), find_gpu(row.gpu), constants)
    except EstimateError as exc:  # a set-up the estimator refuses is a row it cannot express
        return Result(replace(row, skipped=str(exc)), None)
    return Result(row, st.tokens_per_s)


def compare(rows: list[Row] | None = None, constants: Constants = DEFAULT) -> list[Result]:
    rows = mapped_rows() if rows is None else rows
    return [predict(r, constants) for r in rows]


# ------------------------------------------------------------------------------------------------ the fit
# matmul_half_tokens, dispatch_s and attention_efficiency stay fixed (estimators/roofline.py says why for each).
FITTED = ("matmul_efficiency", "bandwidth_efficiency", "link_efficiency", "fsdp_unit_s")
BOUNDS = {
    "matmul_efficiency": (0.3, 0.95),
    "matmul_half_tokens": (1.0, 4096.0),
    "bandwidth_efficiency": (0.4, 0.95),
    "attention_efficiency": (0.2, 0.8),
    "dispatch_s": (1e-6, 60e-6),
    "link_efficiency": (0.1, 0.95),
    "fsdp_unit_s": (1e-5, 2e-2),
}


LOSS_CAP = math.log(1.3)  # rows off by more than 30 % count as 30 %: a few unexplained outliers cannot steer the fit


def loss(results: list[Result]) -> float:
    """Mean absolute log error, capped per row: symmetric in over- and under-prediction, scale-free, robust."""
    errs = [min(LOSS_CAP, abs(math.log(r.predicted / r.row.measured))) for r in results if r.predicted and r.row.measured]
    return sum(errs) / len(errs) if errs else float("inf")


def fit_constants(rows: list[Row], start: Constants = DEFAULT, rounds: int = 4) -> Constants:
    """Coordinate descent on the FITTED constants (multiplicative steps, shrinking), within BOUNDS."""
    fit_rows = [r for r in rows if not r.skipped]
    best, best_loss = start, loss(compare(fit_rows, start))
    step = 1.5
    for _ in range(rounds):
        for name in FITTED:
            lo, hi = BOUNDS[name]
            for factor in (step, 1 / step):
                while True:
                    value = min(hi, max(lo, getattr(best, name) * factor))
                    trial = replace(best, **{name: value})
                    trial_loss = loss(compare(fit_rows, trial))
                    if trial_loss + 1e-6 < best_loss:
                        best, best_loss = trial, trial_loss
                    else:
                        break
        step = 1 + (step - 1) / 2
    return best
