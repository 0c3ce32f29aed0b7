"""One GPU as the estimators read it: usable memory, speed, links and price (a row of rules/gpus.toml, or a card
given only by its size). estimators/gpus.py loads the table; estimators/gpu_names.py resolves what people type."""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import GIB

# How GPUs talk to each other inside one machine; multi-node runs add the network (see estimators/comm.py).
INTERCONNECTS = ("nvlink", "pcie", "infinity-fabric")


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    memory_gib: float
    bf16: bool
    source: str
    # A card that usually also drives a display (GeForce RTX): the desktop takes some of its memory and the
    # card is "personal" in the source document's sense (§6). Datacenter and workstation cards: False.
    consumer: bool = False
    # Dense tensor-core peaks in TFLOP/s (no 2:4 sparsity), with FP32 accumulation as training uses it
    # (GeForce cards run FP32-accumulate at half their FP16-accumulate rate). None: not known.
    bf16_tflops: float | None = None
    fp16_tflops: float | None = None
    # Plain FP32 (no tensor cores, no TF32), for runs that compute in fp32.
    fp32_tflops: float | None = None
    # Peak DRAM bandwidth, GB/s (1e9 bytes/s).
    memory_gbs: float | None = None
    # GPU-to-GPU link inside one machine and its bandwidth per GPU per direction, GB/s.
    interconnect: str = "pcie"
    interconnect_gbs: float | None = None
    # Host link (CPU offload, data loading), GB/s per direction.
    pcie_gbs: float | None = None
    fp8: bool = False
    flash_attention: bool = False
    perf_source: str = ""
    # On-demand price per GPU-hour in US dollars; None: no stable on-demand list price (see price_source).
    price_usd_per_hour: float | None = None
    price_date: str = ""
    price_source: str = ""

    @property
    def memory_bytes(self) -> float:
        return self.memory_gib * GIB

    @property
    def peak_flops(self) -> float | None:
        """The dense half-precision tensor peak training runs at, FLOP/s: bf16 where the card has it, else fp16."""
        tflops = self.bf16_tflops if self.bf16 and self.bf16_tflops else self.fp16_tflops
        return tflops * 1e12 if tflops else None

    @property
    def memory_bytes_per_s(self) -> float | None:
        return self.memory_gbs * 1e9 if self.memory_gbs else None

    @property
    def timed(self) -> bool:
        """Whether the table has what the time model needs (a tensor peak and a memory bandwidth)."""
        return self.peak_flops is not None and self.memory_gbs is not None
