"""The estimator's one entry: `estimate(model, setup)` prices a training step of any kind and layout.

Single-GPU SFT is priced phase by phase in estimators/sft.py; every other kind (reward, DPO, PPO, GRPO) and every
parallel layout in estimators/kinds.py and parallel.py, which build on those SFT phases."""

from __future__ import annotations

from .model import ModelSpec
from .result import Estimate
from .setup import Setup
from .sft import estimate_sft, is_single_gpu_sft, normalised


def estimate(model: ModelSpec, setup: Setup) -> Estimate:
    """Price one training step of `setup` on `model`; the peak over its phases is the answer."""
    setup = normalised(model, setup)
    if is_single_gpu_sft(setup):
        return estimate_sft(model, setup)
    from .kinds import estimate_kind  # training kinds and parallel layouts: loaded only when asked for

    return estimate_kind(model, setup)
