"""Hw: the user's GPUs as the advice judges them: capacity, the margin kept free, §6's 'personal GPU' and the
precision each adaptation trains in."""

from __future__ import annotations

from dataclasses import dataclass

from estimators.gpus import Gpu, gpus
from estimators.margin import Margin
from estimators.result import Estimate


@dataclass(frozen=True)
class Hw:
    gpu: Gpu
    count: int
    margin: Margin | None = None  # None: automatic (the estimate's measured error; the display on a consumer card)

    @property
    def capacity(self) -> float:
        return self.gpu.memory_bytes

    @property
    def keep(self) -> Margin:
        """What a plan keeps free on each card (estimators/margin.py)."""
        return self.margin if self.margin is not None else Margin(display=self.gpu.consumer)

    def fits(self, est: Estimate) -> bool:
        return self.keep.fits(est, self.capacity)

    @property
    def personal(self) -> bool:
        """One consumer card (GeForce RTX, rules/gpus.toml `consumer`) or one card of at most 24 GiB given by
        size: §6's 'personal GPU'."""
        if self.count != 1:
            return False
        return self.gpu.consumer or (self.gpu.id not in gpus() and self.gpu.memory_gib <= 24)

    @property
    def label(self) -> str:
        return f"{self.count}× {self.gpu.name} ({self.gpu.memory_gib:g} GiB)"

    def precision(self, adaptation: str) -> str:
        if self.gpu.bf16:
            return "bf16"
        # No bf16 (T4, V100): adapters train in fp32 over an fp16 base; full fine-tuning needs fp32 master weights
        # under fp16 autocast (pure fp16 weights with AdamW do not train).
        return "fp16-mixed" if adaptation == "full" else "fp16"
