"""`advisor launch`'s throughput check (issue 16): the time model's tokens/s for a stage next to what the script
measures, an ETA from the measured pace, and one JSON line per stage appended to a local file, so that users
(and the project) can check the time model on their own hardware.

The file is ~/.cache/advisor/throughput.jsonl, or $ADVISOR_THROUGHPUT_LOG. It is only ever appended to, one
complete line per write (open in "a" mode, write, close): a crash loses at most the line being written, never the
earlier ones. Torch-free: the prediction is estimators/timing.py's, the measurement the scripts' `log` events
(`tokens_per_s`: the Trainer's num_input_tokens_seen over wall time, summed over all processes).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV = "ADVISOR_THROUGHPUT_LOG"
SCHEMA = "advisor.throughput/1"
# flags that make the run something else than the plan priced (another model): no prediction is compared then
UNPRICED_FLAGS = ("--model",)


def log_path(env: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if env is None else env
    if environ.get(ENV):
        return Path(environ[ENV]).expanduser()
    cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "advisor" / "throughput.jsonl"


def append_record(record: dict, path: Path | None = None) -> Path:
    """Append one JSON line (a whole line per write, flushed), creating the folder; returns the file."""
    path = path or log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def setup_summary(setup) -> str:
    """ "sft lora bf16, micro-batch 4 x 4 accum x 1 GPU, 2048 tokens, checkpointing on, adamw_torch, none"."""
    return (
        f"{setup.train} {setup.adaptation} {setup.precision}, micro-batch {setup.micro_batch} x {setup.grad_accum} accum "
        f"x {setup.world_size} GPU(s), {setup.seq_len} tokens, checkpointing {'on' if setup.checkpointing else 'off'}, "
        f"{setup.optimizer}, {setup.parallel}"
    )


@dataclass
class Prediction:
    """The time model's figures for one stage on one card."""

    gpu_id: str
    gpu_name: str
    tokens_per_s_per_gpu: float
    world: int  # GPUs the stage runs on

    @property
    def tokens_per_s(self) -> float:
        """All GPUs together: what the scripts' tokens_per_s measures."""
        return self.tokens_per_s_per_gpu * self.world


def predict(plan, stage, gpu_names: list[str] | None = None) -> Prediction | None:
    """The stage's predicted tokens/s on the card the launcher found (when the GPU table knows it by that name),
    else on the plan's card; None for the tiny smoke-test model or a card without speed figures."""
    from estimators.catalog import TINY
    from estimators.errors import EstimateError
    from estimators.gpus import find_gpu
    from estimators.timing import step_time

    from .errors import AdvisorError
    from .planning import stage_models

    if plan.model.key == TINY:
        return None
    gpu = None
    for name in (gpu_names or [])[:1]:
        try:
            gpu = find_gpu(name)
        except EstimateError:
            gpu = None
    try:
        if gpu is None or not gpu.timed:
            gpu = find_gpu(plan.hardware.gpu)
        if not gpu.timed:
            return None
        spec, reward = stage_models(plan, stage)
        st = step_time(spec, stage.setup, gpu, reward_model=reward)
    except (EstimateError, AdvisorError, OSError, ValueError):
        return None
    return Prediction(gpu.id, gpu.name, st.tokens_per_s, stage.setup.world_size)


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


@dataclass
class Meter:
    """What one stage's log events measured: tokens/s per log interval, and the pace in steps for an ETA."""

    prediction: Prediction | None = None
    rates: list[float] = field(default_factory=list)
    first: tuple[float, int] | None = None  # (time, step) of the first log event: the pace excludes start-up
    last: tuple[float, int] | None = None
    total_steps: int | None = None
    clock: Callable[[], float] = time.monotonic  # seconds; tests pass a fake clock

    def add(self, ev: dict) -> None:
        rate = ev.get("tokens_per_s")
        if isinstance(rate, (int, float)) and rate > 0:
            self.rates.append(float(rate))
        step, total = ev.get("step"), ev.get("total_steps")
        if isinstance(total, int) and total > 0:
            self.total_steps = total
        if isinstance(step, int):
            now = self.clock()
            self.first = self.first or (now, step)
            self.last = (now, step)

    @property
    def measured(self) -> float | None:
        """tokens/s (all GPUs): the median of the log intervals, the first left out when there are others (it
        includes compilation and the allocator's warm-up)."""
        rates = self.rates[1:] if len(self.rates) > 1 else self.rates
        return statistics.median(rates) if rates else None

    def eta_seconds(self) -> float | None:
        if not (self.first and self.last and self.total_steps) or self.last[1] <= self.first[1]:
            return None
        per_step = (self.last[0] - self.first[0]) / (self.last[1] - self.first[1])
        return per_step * max(0, self.total_steps - self.last[1])

    def text(self, eta: bool = True) -> str:
        """ "vs 2,600 predicted (-6 %), eta 1:23:45": the latest tokens/s against the prediction, and the ETA from the
        pace so far (the parts that are known)."""
        parts = []
        rate = self.rates[-1] if self.rates else None
        if self.prediction is not None and rate is not None:
            pct = 100 * (rate / self.prediction.tokens_per_s - 1)
            parts.append(f"vs {self.prediction.tokens_per_s:,.0f} predicted ({pct:+.0f} %)")
        left = self.eta_seconds() if eta else None
        if left is not None:
            parts.append(f"eta {_clock(left)}")
        return ", ".join(parts)

    def record(self, plan, stage, status: str, gpu_names: list[str] | None, extra: list[str] | None = None) -> dict | None:
        """The JSON line for the throughput file; None when nothing was measured."""
        measured = self.measured
        if measured is None:
            return None
        p = self.prediction
        world = stage.setup.world_size
        return {
            "schema": SCHEMA,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": plan.model.hf_id or plan.model.key,
            "model_params": plan.model.params_total,
            "stage": stage.name,
            "setup": setup_summary(stage.setup),
            "gpu_name": (gpu_names[0] if gpu_names else None) or plan.hardware.gpu_name or plan.hardware.gpu,
            "gpu_priced": p.gpu_name if p else None,
            "gpus": world,
            "predicted_tokens_per_s_per_gpu": round(p.tokens_per_s_per_gpu, 1) if p else None,
            "measured_tokens_per_s_per_gpu": round(measured / world, 1),
            "measured_intervals": len(self.rates),
            "status": status,
            "args": list(extra or []),
            "units": {"tokens_per_s": "tokens/s per GPU (the Trainer's input tokens, padding included)"},
        }
