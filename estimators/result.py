"""What pricing a step returns: the `Estimate` (phases of live tensors, the peak, the on-card figure and its band),
the categories every term belongs to, and the names of the LM-head terms that the training kinds re-price.
Estimators/sft.py builds one for single-GPU SFT, estimators/kinds.py for every other kind and layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from . import terms as t
from .band import Band, band_for, band_method, on_card
from .dtypes import ALLOC_BLOCK, GIB, MIB
from .model import ModelSpec
from .params import ParamCounts
from .setup import Setup
from .versions import version_of

CATEGORIES = ("parameters", "gradients", "optimizer", "activations", "temporaries", "other")

# CUDA context and kernel images: not allocated through PyTorch, but on the card. torch 2.x with lazy module
# loading measures about 0.5 GiB on A100/H100 (DESIGN.md: 0.3-1.3 GiB depending on the card and libraries).
# The figure used is per torch generation (estimators/band.py context_bytes); this is the torch >= 2 entry.
CUDA_CONTEXT = 512 * MIB
# Reserved over allocated: no longer one factor but the fitted allocator model of estimators/band.py
# (reserved_bytes; constants and the rows they were fitted on in calibration/device_model.json).

COVERS = (
    "model weights (quantised where the plan quantises)",
    "LoRA adapters",
    "gradients",
    "optimizer states",
    "activations saved for backward (per layer, per kernel, with or without checkpointing)",
    "the LM head and the loss: TRL's fused chunked log-probs (--loss fused) or the B x S x V logits (--loss full)",
    "the largest transient buffers of each phase",
)
EXCLUDES = (
    "CUDA context (reported separately)",
    "cuBLAS / flash-attention workspaces",
    "evaluation and generation during training",
    "data-loader pinned memory on the host",
)


@dataclass(frozen=True)
class Estimate:
    model: ModelSpec
    setup: Setup
    params: ParamCounts
    trainable: int
    phases: dict[str, tuple[t.TermValue, ...]]
    peak_phase: str
    paged_bytes: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    host_offload_bytes: int = 0  # host RAM per node that CPU offload needs (estimators/parallel.py)
    # The reward/value architecture priced when it is not the policy's (PPO; a reward stage is priced on it as `model`).
    reward_model: ModelSpec | None = None

    @property
    def terms(self) -> tuple[t.TermValue, ...]:
        return self.phases[self.peak_phase]

    @property
    def peak_allocated(self) -> int:
        return phase_total(self.terms)

    @property
    def peak_reserved(self) -> int:
        """The caching allocator's reserved peak (estimators/band.py: fitted on published rows)."""
        return self._card[0]

    @property
    def device_bytes(self) -> int:
        """What nvidia-smi would show: reserved plus the CUDA context (and NCCL buffers on several GPUs)."""
        return self._card[1]

    @cached_property
    def _card(self) -> tuple[int, int]:  # fits() is called in loops (advise, fit): price the card once
        return self._on_card()

    @property
    def context_bytes(self) -> int:
        return self.device_bytes - self.peak_reserved

    def _on_card(self, allocated: int | None = None) -> tuple[int, int]:
        """(reserved, device) for this estimate's peak, or for another allocated figure of the same step."""
        cats = self.categories()
        persistent = cats["parameters"] + cats["gradients"] + cats["optimizer"]
        return on_card(
            self.peak_allocated if allocated is None else allocated,
            persistent,
            cats["gradients"],
            self.setup.checkpointing,
            version_of(self.setup.versions, "torch"),
            self.setup.world_size,
        )

    @cached_property
    def band(self) -> Band:
        """The on-card figure's range on real GPUs: the device figure times the 10th-90th percentile of measured /
        estimated over published rows of this estimate's class (estimators/band.py)."""
        return band_for(band_method(self.model, self.setup.adaptation), getattr(self.setup, "stack", "trl"), self.device_bytes)

    def categories(self) -> dict[str, int]:
        out = dict.fromkeys(CATEGORIES, 0)
        for term in self.terms:
            out[term.category] += term.bytes
        return out

    def fits(self, capacity_bytes: float) -> bool:
        """Fits when the upper end of the band does: runs of this class measured up to that much on real GPUs."""
        return self.band.high_bytes <= capacity_bytes

    def headroom(self, capacity_bytes: float) -> float:
        """Capacity left above the band's upper end (the figure `fits` uses)."""
        return capacity_bytes - self.band.high_bytes


def round_up(n: int, block: int = ALLOC_BLOCK) -> int:
    return -(-n // block) * block


def phase_total(values) -> int:
    return sum(v.bytes for v in values)


def to_gib(n: float) -> float:
    return round(n / GIB, 3)


# Names of the LM-head terms (estimators/sft.py prices them; kinds.py and stack_heads.py re-price or drop them).
LOGITS_FORWARD, LOGITS_BACKWARD = "logits and loss", "loss gradients"
FUSED_SAVED, FUSED_FORWARD, FUSED_BACKWARD = "fused head: saved", "fused head: forward", "fused head: backward"
