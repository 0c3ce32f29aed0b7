"""CUDA mode: the same set-up with real tensors on a GPU, measured by the CUDA caching allocator.

torch.cuda.reset_peak_memory_stats() before the first step; at every phase boundary the allocator's
max_memory_allocated / max_memory_reserved since the last boundary are read and the peaks reset, so each phase gets
its own figures; device-level used memory (cudaMemGetInfo: total - free, which includes the CUDA context and any
other process on the card) is sampled at the same points. The tracker runs alongside to split the peak into
categories. The first step is a warm-up (optimizer state created, allocator segments grown); the row reports the
peak over all steps, as the HF Trainer's memory metrics do.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from estimators.effective import effective_setup
from estimators.setup import Setup

GIB = 2**30


@dataclass
class PhaseStats:
    """Per-phase allocator peaks, in bytes; `add` folds one reading in (pure Python, tested without a GPU)."""

    allocated: dict[str, int] = field(default_factory=dict)
    reserved: dict[str, int] = field(default_factory=dict)
    device: dict[str, int] = field(default_factory=dict)

    def add(self, phase: str, allocated: int, reserved: int, device_used: int) -> None:
        self.allocated[phase] = max(self.allocated.get(phase, 0), int(allocated))
        self.reserved[phase] = max(self.reserved.get(phase, 0), int(reserved))
        self.device[phase] = max(self.device.get(phase, 0), int(device_used))

    def peak(self) -> tuple[str, int, int, int]:
        """(phase of the allocated peak, allocated, reserved, device used) over all phases."""
        if not self.allocated:
            return "", 0, 0, 0
        phase = max(self.allocated, key=lambda k: self.allocated[k])
        return phase, self.allocated[phase], max(self.reserved.values()), max(self.device.values())


def cuda_row(
    model_key: str,
    setup: Setup,
    stats: PhaseStats,
    *,
    categories: dict,
    device_name: str,
    attention: str,
    quantization: str,
    params: int,
    trainable: int,
    seconds: float,
    baseline: dict,
) -> dict:
    """The JSONL row of a CUDA measurement (see record.trace_row for the common fields)."""
    from . import record

    phase, allocated, reserved, device_used = stats.peak()
    setup_dict = setup.public_dict()  # keyed as traces.jsonl rows are (method), so re-measuring keeps the id
    return {
        "schema": record.SCHEMA,
        "id": record.row_id(model_key, setup_dict, "cuda"),
        "date": time.strftime("%Y-%m-%d"),
        "device": device_name,
        "mode": "cuda",
        "versions": record.versions(),
        "model": model_key,
        "setup": setup_dict,
        "attention": attention,
        "quantization": quantization,
        "statistic": "allocated",
        "peak": {"allocated": allocated, "reserved": reserved, "device": device_used},
        "peak_phase": phase,
        "categories": categories,
        "phase_peaks": dict(stats.allocated),
        "phase_reserved": dict(stats.reserved),
        "phase_device": dict(stats.device),
        "baseline": baseline,
        "params": params,
        "trainable": trainable,
        "seconds": round(seconds, 1),
        "notes": ["allocated/reserved: torch.cuda.max_memory_* per phase; device: cudaMemGetInfo total - free"],
    }


def measure_cuda(spec, setup: Setup, model_key: str, steps: int = 3) -> dict:
    import torch

    from .build import build_model, sft_batch
    from .hfmodel import compute_dtype, cuda_attn_implementation
    from .optim import make_optimizer
    from .step import train_step
    from .tracker import CATEGORIES, MemoryTracker

    if not torch.cuda.is_available():
        raise ValueError("no CUDA device: use --mode trace")
    setup = effective_setup(spec, setup)  # as the stack runs it on this model (e.g. no dropout on fused experts)
    if setup.train != "sft" or setup.world_size > 1 or setup.parallel != "none":
        raise ValueError("cuda mode measures single-GPU sft set-ups only")
    t0 = time.time()
    torch.cuda.empty_cache()
    free0, total = torch.cuda.mem_get_info()
    baseline = {"device_used_before": total - free0, "total": total}
    model, quant = build_model(spec, setup, device="cuda")
    optimizer = make_optimizer(model, setup)
    batch = sft_batch(spec, setup, device="cuda")
    stats = PhaseStats()
    tracker = MemoryTracker()

    @contextlib.contextmanager
    def phase(name: str):
        with tracker.in_phase(name):
            yield
        torch.cuda.synchronize()
        free, _ = torch.cuda.mem_get_info()
        stats.add(name, torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved(), total - free)
        torch.cuda.reset_peak_memory_stats()

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    for t in list(model.parameters()) + list(model.buffers()):
        tracker.track(t, "parameters")
    for t in batch.values():
        tracker.track(t, "other")
    tracker.reset_peak()
    with tracker:
        for p in model.parameters():
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(lambda p: tracker.track(p.grad, "gradients"))
        for _ in range(steps):
            train_step(model, optimizer, batch, compute_dtype(setup), tracker, setup.grad_accum, phase=phase, device_type="cuda", loss=setup.loss)
    return cuda_row(
        model_key,
        setup,
        stats,
        categories={k: tracker.peak_categories.get(k, 0) for k in CATEGORIES},
        device_name=f"{torch.cuda.get_device_name()} ({total / GIB:.0f} GiB), CUDA {torch.version.cuda}",
        attention=cuda_attn_implementation(spec, setup),
        quantization=quant.split(" run through")[0] + " (bitsandbytes CUDA kernels)" if quant else "",
        params=sum(p.numel() for p in model.parameters()),
        trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
        seconds=time.time() - t0,
        baseline=baseline,
    )
