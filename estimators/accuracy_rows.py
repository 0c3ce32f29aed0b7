"""The rows the estimator is compared with, and the shape of one comparison: the traced rows
(calibration/traces.jsonl) and the published rows (calibration/published_calibration.csv). Standard library only.

Like is compared with like: an allocated figure (max_memory_allocated, a trace) with the allocated estimate, a
reserved figure with the reserved estimate, an nvidia-smi / NVML figure with the device estimate (reserved plus
the CUDA context). An OOM row has no figure: the estimate must put it above the card. Rows the estimator cannot
express (other architectures, GPTQ, other PEFT methods, fused-kernel plugins) are listed with the reason.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .setup import Setup

CALIBRATION = Path(__file__).resolve().parent / "calibration"
TRACES_PATH = CALIBRATION / "traces.jsonl"
PUBLISHED_PATH = CALIBRATION / "published_calibration.csv"


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
    adaptation: str = ""  # Setup.adaptation (band class)
    stack: str = ""  # the stack the source ran (accuracy_setups.SOURCE_STACK)
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


def read_traces(path: Path | str = TRACES_PATH) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_published(path: Path | str = PUBLISHED_PATH) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def describe_setup(s: Setup) -> str:
    parts = [] if s.train == "sft" else [s.train]
    if s.llama_adapter:
        parts.append(f"llama-adapter len {s.adapter_len} x{s.adapter_layers}")
    else:
        parts.append(s.adaptation)
        if s.adaptation != "full":
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


def phase_family(phase: str) -> str:
    """The tracer's phase names: forward, backward, optimizer step (micro-step 2+ twins count as their phase)."""
    phase = phase.split(", micro-steps")[0]
    return "backward" if phase.startswith("backward") else phase
