"""The error band of the on-card figure: what real GPUs showed for estimates of the same class.

An estimate's point figure is one number; published runs of the same kind of set-up landed above and below it. The
band is the estimate's device figure times the 10th and 90th percentile of measured / estimated over the published
rows of its class (adaptation x stack x statistic), so "7.4 GiB on the card (7.1-8.2 on real GPUs)" says how far
real runs of that class strayed. `Estimate.fits` uses the upper end: a plan that fits only at the point figure fails
on one run in ten of its class.

The percentiles live in estimators/calibration/device_model.json, written by `advisor accuracy` (estimators/
band_fit.py) from the published rows; reading it here keeps `advisor estimate` free of the CSV and fast. A class
with fewer than `MIN_ROWS` rows falls back to the coarser class named in the band (adaptation x any stack, then
every row of the statistic), and the band says so.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from .dtypes import GIB

MODEL_PATH = Path(__file__).resolve().parent / "calibration" / "device_model.json"
ANY = "any"


class Band(NamedTuple):  # a NamedTuple, not a dataclass: it is built on `advisor estimate`'s start-up path
    """The range real GPUs showed for an estimate of this class, in bytes of the given statistic."""

    low_bytes: int
    high_bytes: int
    klass: str  # "qlora x hf-trainer x device": the class whose rows gave the percentiles
    n_rows: int  # published rows in that class
    source: str  # which rows, and the fallback taken when the asked-for class had too few
    statistic: str = "device"
    asked: str = ""  # the class the estimate belongs to (differs from klass after a fallback)
    low_ratio: float = 1.0
    high_ratio: float = 1.0

    @property
    def fallback(self) -> bool:
        return bool(self.asked) and self.asked != self.klass

    def to_dict(self) -> dict:
        return {
            "statistic": self.statistic,
            "low": {"bytes": self.low_bytes, "gib": round(self.low_bytes / GIB, 3)},
            "high": {"bytes": self.high_bytes, "gib": round(self.high_bytes / GIB, 3)},
            "ratios": {"low": self.low_ratio, "high": self.high_ratio, "of": "measured / estimated, 10th and 90th percentile"},
            "class": self.klass,
            "asked_class": self.asked or self.klass,
            "fallback": self.fallback,
            "n_rows": self.n_rows,
            "source": self.source,
            "fits_uses": "high",
        }


@lru_cache(maxsize=1)
def device_model() -> dict:
    """The fitted reserved/context constants and the band table (estimators/calibration/device_model.json)."""
    return json.loads(MODEL_PATH.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ the point figure
# What the card holds beyond the allocated peak (constants fitted by estimators/band_fit.py, each with its rows):
#   reserved = allocated + frag x (transient bytes at the peak) + grad_frag x (gradients at the peak), to 2 MiB
#     PyTorch's caching allocator keeps freed blocks for reuse. Tensors allocated once (weights, optimizer states)
#     never leave holes; the activations and scratch of a step are allocated and freed in a different order every
#     layer (and, under checkpointing, again in backward), so a share of them stays reserved but unusable at the peak.
#     Gradients are allocated during backward between those activations (set_to_none frees them each step).
#     Large blocks are rounded to 2 MiB (c10/cuda/CUDACachingAllocator.cpp kRoundLarge).
#   device = reserved + CUDA context (per torch generation) + a multi-GPU constant (NCCL buffers, FSDP blocks)
#     the context (driver state, kernel images) and NCCL's cudaMalloc buffers are outside the allocator; FSDP
#     all-gathers each unit's full parameters on a side stream whose blocks stay cached (fitted on the 2-GPU rows).
def context_bytes(torch_version: str, world_size: int = 1, model: dict | None = None) -> int:
    """The CUDA context of one process, plus communicator buffers for multi-GPU runs."""
    consts = (model or device_model())["constants"]
    version = tuple(int(x) for x in (torch_version or "2").split(".")[:2] if x.isdigit()) or (2,)
    entry = next(row for row in consts["context"] if version >= tuple(row["torch_from"]))
    return int(entry["mib"] * 2**20 + (consts["multi_gpu_gib"]["value"] * GIB if world_size > 1 else 0))


def reserved_bytes(allocated: int, transient: int, gradients: int, checkpointing: bool, model: dict | None = None) -> int:
    """The caching allocator's reserved peak for an allocated peak with this much transient and gradient memory."""
    consts = (model or device_model())["constants"]
    frag = consts["frag_checkpointed" if checkpointing else "frag_saved"]["value"]
    extra = frag * max(transient, 0) + consts["grad_frag"]["value"] * gradients
    block = 2 * 2**20
    return -(-int(allocated + extra) // block) * block


def reserved_model_text(checkpointing: bool) -> str:
    consts = device_model()["constants"]
    frag = consts["frag_checkpointed" if checkpointing else "frag_saved"]["value"]
    return f"allocated + {frag:.2f} x transient + {consts['grad_frag']['value']:.2f} x gradients, to 2 MiB"


def context_model_text(torch_version: str, world_size: int = 1) -> str:
    """What the context figure holds, for the output."""
    consts = device_model()["constants"]
    version = tuple(int(x) for x in (torch_version or "2").split(".")[:2] if x.isdigit()) or (2,)
    entry = next(row for row in consts["context"] if version >= tuple(row["torch_from"]))
    text = f"{entry['mib']} MiB for torch {torch_version or '2.x'}, outside PyTorch's allocator"
    if world_size > 1:
        text += f"; + {consts['multi_gpu_gib']['value']:.2f} GiB on > 1 GPU (NCCL, FSDP)"
    return text


def on_card(
    allocated: int, persistent: int, gradients: int, checkpointing: bool, torch_version: str = "", world_size: int = 1, model: dict | None = None
) -> tuple[int, int]:
    """(reserved, device) bytes for an allocated peak of which `persistent` are weights, gradients and optimizer
    states (`gradients` of them gradients)."""
    reserved = reserved_bytes(allocated, allocated - persistent, gradients, checkpointing, model)
    return reserved, reserved + context_bytes(torch_version, world_size, model)


ENCODER = "encoder"  # the class of encoder models (BERT, RoBERTa), whatever their adaptation


def band_method(model, adaptation_: str) -> str:
    """The class an estimate's error is judged in: its adaptation for a causal LM, "encoder" for an encoder. Encoders
    are a class apart, outside the pooled fallback decoders use: their rows (a classifier head, another torch
    generation) say nothing about a decoder's error, and a decoder's band must not narrow because they fit well."""
    return ENCODER if model.encoder else adaptation_


def adaptation(method: str) -> str:
    return method if method in ("full", "lora", "qlora", ENCODER) else "lora"


def class_name(method: str, stack: str, statistic: str) -> str:
    return f"{adaptation(method)} x {stack} x {statistic}"


def lookup(method: str, stack: str, statistic: str = "device", table: dict | None = None) -> tuple[str, dict]:
    """The band-table entry for a class, falling back to coarser classes when it has too few rows."""
    bands = (table or device_model())["bands"]
    minimum = (table or device_model())["min_rows"]
    for name in (class_name(method, stack, statistic), class_name(method, ANY, statistic), f"{ANY} x {ANY} x {statistic}"):
        entry = bands.get(name)
        if entry and entry["n"] >= minimum:
            return name, entry
    raise KeyError(f"no band for {statistic}")  # the table always has the pooled class (band_fit.py)


def band_for(method: str, stack: str, point_bytes: int, statistic: str = "device") -> Band:
    """The band of one estimate: `point_bytes` (its figure of `statistic`) times its class's percentiles."""
    name, entry = lookup(method, stack, statistic)
    asked = class_name(method, stack, statistic)
    source = entry["source"]
    if name != asked:
        source = f"{asked} has fewer than {device_model()['min_rows']} published rows; {name}: {source}"
    return Band(
        low_bytes=int(point_bytes * entry["low"]),
        high_bytes=int(point_bytes * max(entry["high"], 1.0)),  # the upper end never undercuts the point figure
        klass=name,
        n_rows=entry["n"],
        source=source,
        statistic=statistic,
        asked=asked,
        low_ratio=entry["low"],
        high_ratio=entry["high"],
    )
