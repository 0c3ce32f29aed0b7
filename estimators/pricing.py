"""The estimator's one entry: `estimate(model, setup)` prices a training step of any kind and layout.

The set-up is first made the one that runs (estimators/effective.py). Single-GPU SFT is then priced phase by
phase in estimators/sft.py; every other kind (reward, DPO, PPO, GRPO) and every parallel layout in
estimators/kinds.py and parallel.py, which build on those SFT phases."""

from __future__ import annotations

from dataclasses import replace

from .effective import adjustments, effective_setup
from .model import ModelSpec
from .result import Estimate
from .setup import Setup
from .sft import estimate_sft, is_single_gpu_sft


def estimate(model: ModelSpec, setup: Setup, reward_model: ModelSpec | None = None) -> Estimate:
    """Price one training step of `setup` on `model`; the peak over its phases is the answer. `reward_model`: the
    reward and value models' architecture when it is not the policy's (PPO: a smaller model of its family; a reward
    stage then trains that model, so it is priced on it); None prices them at the policy's."""
    runs = effective_setup(model, setup)
    if reward_model is not None:
        from .kind_models import reward_value_spec  # refuses a kind without one and another vocabulary

        reward_model = reward_value_spec(model, runs, reward_model)
        if runs.train == "reward" and reward_model is not None:
            model, runs = reward_model, effective_setup(reward_model, setup)
    if is_single_gpu_sft(runs):
        est = estimate_sft(model, runs)
    else:
        from .kinds import estimate_kind  # training kinds and parallel layouts: loaded only when asked for

        est = estimate_kind(model, runs, reward_model)
    notes = adjustments(setup, runs)
    return replace(est, warnings=tuple(dict.fromkeys([*notes, *est.warnings]))) if notes else est
