"""The published rows (calibration/published_calibration.csv) against the estimate: each row priced with the set-up
estimators/accuracy_setups.py maps it to, the figure with the row's statistic (allocated, reserved, or the device
figure of estimators/band.py), and the error band `fits` judges OOM rows by.
"""

from __future__ import annotations

from . import band
from . import terms as t
from .accuracy_rows import Comparison, describe_setup, phase_family, read_published
from .accuracy_setups import SPEC_CHANGES, published_setup, source_stack
from .catalog import resolve_model
from .dtypes import GIB
from .gpus import find_gpu
from .option_terms import option_trainable
from .pricing import estimate
from .result import Estimate, phase_total
from .setup import Setup
from .versions import version_of


def _skip(row: dict, why: str) -> Comparison:
    return Comparison(
        source="published",
        row_id=row["row_id"],
        model=row["model"],
        config=_published_config(row),
        statistic="",
        measured=None,
        estimate=None,
        skipped=why,
    )


def _published_config(row: dict) -> str:
    bits = [row["method"], f"b{row['micro_batch_size']}x{row['seq_len']}", f"gc {row['grad_ckpt']}"]
    if row["lora_r"]:
        bits.insert(1, f"r{row['lora_r']} {row['lora_targets']}")
    if row["n_gpus"] != "1":
        bits.append(f"{row['sharding']} x{row['n_gpus']}")
    return " ".join(bits)


def row_statistic(row: dict) -> str:
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
        trained_by_options = option_trainable(m, setup) * t.trainable_bytes_per_param(setup)  # DoRA's magnitudes
        assert states == 2 * (t.foreach_adamw_scratch(m, setup) + trained_by_options)
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
    return band.on_card(
        allocated, persistent, cats["gradients"], est.setup.checkpointing, version_of(est.setup.versions, "torch"), est.setup.world_size, model
    )


def compare_published_row(row: dict, model: dict | None = None, statistic: str = "") -> Comparison:
    """One published row against its estimate; `statistic="device"` compares its nvidia-smi figure instead of the
    primary one. `model` is the reserved/context fit to use (default: estimators/calibration/device_model.json)."""
    priced = published_estimate(row)
    if isinstance(priced, str):
        return _skip(row, priced)
    key, setup, est, allocated, phase, note = (priced[k] for k in ("key", "setup", "estimate", "allocated", "phase", "note"))
    stat = statistic or row_statistic(row)
    reserved, device = on_card_figures(est, allocated, model)
    value = {"allocated": allocated, "reserved": reserved, "device": device, "oom": device}[stat]
    measured = None if stat == "oom" else (device_figure(row) if stat == "device" and statistic else int(round(float(row["memory_gib"]) * GIB)))
    capacity = None
    if stat == "oom":
        gpu = row["gpu"].split(" x ")[-1] if " x " in row["gpu"] else row["gpu"]
        capacity = int(find_gpu(_gpu_name(gpu)).memory_bytes)
    stack = source_stack(row["source_name"])
    method = band.band_method(priced["spec"], setup.adaptation)
    _, entry = band.lookup(method, stack, "device", model if model and model.get("bands") else None)
    return Comparison(
        source="published",
        row_id=row["row_id"] + ("/smi" if statistic else ""),
        model=key,
        config=describe_setup(setup),
        statistic=stat,
        measured=measured,
        estimate=int(value),
        capacity=capacity,
        estimate_phase=phase_family(phase),
        note=note,
        adaptation=method,  # the band class: "encoder" for an encoder (band.band_method)
        stack=stack,
        source_name=row["source_name"].split(" (")[0],
        high=int(device * max(entry["high"], 1.0)),
    )


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
    out += [compare_published_row(r, model, "device") for r in rows if device_figure(r) is not None and not isinstance(published_setup(r), str)]
    return out
