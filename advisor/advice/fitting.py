"""Fitting a pipeline to the GPUs: each stage with the first knob set that fits, its micro-batch sized toward the
effective batch (a Candidate per adaptation), and the search that tries the adaptations in order and shortens
sequences only when none fits at the asked length."""

from __future__ import annotations

import math
from dataclasses import dataclass

from estimators.checks import PROMPT_ROOM
from estimators.fit import SEQ_STEP, largest, max_micro_batch, max_seq_len
from estimators.fit_options import knob_weight
from estimators.kind_models import REWARD_VALUE_KINDS
from estimators.model import ModelSpec
from estimators.pricing import estimate
from estimators.result import Estimate
from estimators.setup import Setup

from ..planning import PIPELINES
from .hardware import Hw

EFFECTIVE_BATCH = 16  # sequences per optimizer step the batch sizing aims at (micro-batch x accumulation x GPUs)
MIN_SEQ = 256  # the shortest sequence the advisor cuts to when nothing fits at the asked length
ROLLOUT_KINDS = ("grpo", "ppo")  # kinds whose memory grows with gradient accumulation (estimators/kinds.py)

# The orders `search` tries adaptations in (sizing.fit_order puts a §6 row's adaptations first).
QUALITY_ORDER = ("full", "lora", "qlora")  # §5: full = best performance; LoRA slight loss; QLoRA 4-bit
COST_ORDER = ("lora", "qlora", "full")


@dataclass(frozen=True)
class StageFit:
    name: str
    train: str
    setup: Setup
    estimate: Estimate  # of `setup` as planned (micro-batch sized)
    fits: bool
    max_micro_batch: int = 0
    base_bytes: int = 0  # on the card at micro-batch 1: what adaptations are compared by


@dataclass(frozen=True)
class Candidate:
    pipeline: str
    adaptation: str
    seq_len: int
    stages: tuple[StageFit, ...]
    reward_model: ModelSpec | None = None  # the reward/value architecture when it is not the policy's (RLHF)

    @property
    def fits(self) -> bool:
        return all(s.fits for s in self.stages)

    @property
    def peak(self) -> StageFit:
        return max(self.stages, key=lambda s: s.estimate.device_bytes)

    @property
    def device_bytes(self) -> int:
        return self.peak.estimate.device_bytes

    @property
    def base_bytes(self) -> int:
        """The largest stage at micro-batch 1: the memory an adaptation needs at least."""
        return max(s.base_bytes for s in self.stages)


def base_setup(train: str, adaptation: str, hw: Hw, seq_len: int) -> Setup:
    world = hw.count
    parallel = "none" if world == 1 else ("fsdp" if adaptation == "full" else "ddp")
    # Probed with the accumulation the plan will use at micro-batch 1 (gradients live across micro-steps, and
    # the estimator prices that), except GRPO and PPO, whose rollouts grow with accumulation (GRPO's round, PPO's
    # stored rollout logits): _micro_batch raises it there as far as it fits.
    accum = 1 if train in ROLLOUT_KINDS else _accum(1, world)
    setup = Setup(
        train=train, adaptation=adaptation, precision=hw.precision(adaptation), seq_len=seq_len, gpus=world, parallel=parallel, grad_accum=accum
    )
    if train in ("ppo", "grpo") and setup.response_len + PROMPT_ROOM > seq_len:
        # PPO/GRPO sequences are prompt + response: a short sequence gets half of it as the response
        setup = setup.with_(response_len=max(1, seq_len // 2))
    return setup


def knob_variants(base: Setup) -> list[Setup]:
    """The knob sets tried for one stage, cheapest in speed and quality first as `advisor fit` ranks them
    (estimators/fit_options.py KNOB_WEIGHTS); the last saves the most memory. (Offloading and more GPUs are left to
    `advisor fit`: they change the launcher or the hardware.)"""
    if base.adaptation == "full":
        out = [
            base.with_(grad_ckpt=False),
            base.with_(grad_ckpt=False, optimizer="adamw8bit"),
            base.with_(grad_ckpt=True),
            base.with_(grad_ckpt=True, optimizer="adamw8bit"),
            base.with_(grad_ckpt=True, optimizer="paged_adamw8bit"),
        ]
    else:
        out = [base.with_(grad_ckpt=True), base.with_(grad_ckpt=True, optimizer="adamw8bit"), base.with_(grad_ckpt=True, optimizer="paged_adamw8bit")]
        if base.world_size > 1:  # shard the base weights too when replicas do not fit
            out += [s.with_(parallel="fsdp") for s in out]
    unsharded = base.with_(grad_ckpt=False)
    return sorted(out, key=lambda s: (s.parallel != base.parallel, knob_weight(s, unsharded)))  # stable: ties keep their order


def stage_reward(train: str, reward_model: ModelSpec | None) -> ModelSpec | None:
    """What `estimate(..., reward_model=)` gets for a stage of kind `train`: the reward/value model for the reward and
    PPO stages, None for the others (they have none)."""
    return reward_model if train in REWARD_VALUE_KINDS else None


def _micro_batch(spec: ModelSpec, setup: Setup, hw: Hw, reward_model: ModelSpec | None = None) -> tuple[Setup, int]:
    """The setup with micro-batch (a power of two that fits with the margin kept) and gradient accumulation
    toward EFFECTIVE_BATCH; also the largest micro-batch that fits at all. Powers of two divide GRPO's
    num_generations (8) or are multiples of it, so a round never grows to lcm(G, batch)."""
    biggest = max(1, max_micro_batch(spec, setup, hw.capacity, hw.keep, reward_model))
    target = max(1, EFFECTIVE_BATCH // setup.world_size)
    mb = 1 << int(math.log2(min(biggest, target)))
    sized = setup.with_(micro_batch=mb, grad_accum=_accum(mb, setup.world_size))
    # GRPO generates a whole round (micro-batch x accumulation completions) at once and PPO keeps the fp32 logits of
    # micro-batch x accumulation rollouts, so a larger accumulation costs memory there: halve it until it fits
    # again (halving keeps GRPO's round a multiple of G or a divisor of it).
    while setup.train in ROLLOUT_KINDS and sized.grad_accum > 1 and not hw.fits(estimate(spec, sized, reward_model)):
        sized = sized.with_(grad_accum=sized.grad_accum // 2)
    return (sized if hw.fits(estimate(spec, sized, reward_model)) else setup), biggest


def _accum(micro_batch: int, world: int) -> int:
    return max(1, math.ceil(EFFECTIVE_BATCH / (micro_batch * world)))


def fit_candidate(spec: ModelSpec, pipeline: str, adaptation: str, hw: Hw, seq_len: int, reward_model: ModelSpec | None = None) -> Candidate:
    """Each stage of `pipeline` with the first knob set that fits (sized to the effective batch), or with the
    most memory-saving one when none does. `reward_model`: the reward and PPO stages' reward/value model when it
    is not the policy's (the reward stage trains it)."""
    stages = []
    for name, train, *_ in PIPELINES[pipeline]:
        variants = knob_variants(base_setup(train, adaptation, hw, seq_len))
        rm = stage_reward(train, reward_model)
        chosen = None
        for setup in variants:
            est = estimate(spec, setup, rm)
            if hw.fits(est):
                sized, biggest = _micro_batch(spec, setup, hw, rm)
                chosen = StageFit(name, train, sized, estimate(spec, sized, rm), True, biggest, est.device_bytes)
                break
        if chosen is None:
            setup = min(variants, key=lambda s: estimate(spec, s, rm).device_bytes)
            setup = setup.with_(grad_accum=_accum(1, setup.world_size))
            est = estimate(spec, setup, rm)
            chosen = StageFit(name, train, setup, est, False, 0, est.device_bytes)
        stages.append(chosen)
    return Candidate(pipeline, adaptation, seq_len, tuple(stages), reward_model)


def longest_fitting_seq(spec: ModelSpec, pipeline: str, adaptation: str, hw: Hw, seq_len: int, reward_model: ModelSpec | None = None) -> int:
    """The longest sequence (a multiple of SEQ_STEP, at most seq_len) at which every stage fits; 0 if none."""
    longest = seq_len
    for _, train, *_ in PIPELINES[pipeline]:
        rm = stage_reward(train, reward_model)
        if train in ROLLOUT_KINDS:
            best = _longest_rollout_seq(spec, train, adaptation, hw, seq_len, rm)
        else:
            base = base_setup(train, adaptation, hw, seq_len)
            best = max(max_seq_len(spec, v, hw.capacity, hw.keep, rm) for v in knob_variants(base))
        longest = min(longest, best)
    return (longest // SEQ_STEP) * SEQ_STEP


def _longest_rollout_seq(spec: ModelSpec, train: str, adaptation: str, hw: Hw, seq_len: int, rm: ModelSpec | None) -> int:
    """PPO/GRPO: a shorter sequence is split into prompt and response afresh (base_setup), so each length is probed
    as the plan would be built at it, not as the asked length's split with fewer tokens (whose response may not even
    fit the sequence). Searched over multiples of SEQ_STEP as max_seq_len searches (memory grows with the length);
    0 when not even MIN_SEQ fits (the search does not shorten below it)."""

    def fits(steps: int) -> bool:
        return any(hw.fits(estimate(spec, v, rm)) for v in knob_variants(base_setup(train, adaptation, hw, steps * SEQ_STEP)))

    low = min(MIN_SEQ, seq_len) // SEQ_STEP
    steps = largest(fits, low, seq_len // SEQ_STEP) if low >= 1 else 0
    return steps * SEQ_STEP if steps >= low >= 1 else 0


@dataclass(frozen=True)
class Search:
    chosen: Candidate
    tried: dict[str, Candidate]  # adaptation -> its candidate at the asked sequence length
    order: tuple[str, ...]
    shortened: bool = False


def search(spec: ModelSpec, pipeline: str, order: tuple[str, ...], hw: Hw, seq_len: int, reward_model: ModelSpec | None = None) -> Search:
    """The first adaptation in `order` that fits at `seq_len`; else the one that fits the longest sequence
    (at least MIN_SEQ; ties in `order`); else the least memory-hungry attempt, which does not fit. `reward_model`:
    fit_candidate's."""
    tried = {a: fit_candidate(spec, pipeline, a, hw, seq_len, reward_model) for a in order}
    for a in order:
        if tried[a].fits:
            return Search(tried[a], tried, order)
    longest = {a: longest_fitting_seq(spec, pipeline, a, hw, seq_len, reward_model) for a in order}
    for a in sorted(order, key=lambda a: -longest[a]):  # the adaptation that keeps the longest sequence first
        # The probe varies the length alone; a candidate built at a shorter length also splits a PPO/GRPO sequence
        # into prompt and response afresh (base_setup), which may cost a little more: step down until one fits.
        for seq in range(longest[a], MIN_SEQ - 1, -SEQ_STEP):
            candidate = fit_candidate(spec, pipeline, a, hw, seq, reward_model)
            if candidate.fits:
                return Search(candidate, tried, order, shortened=True)
    least = min(tried.values(), key=lambda c: c.base_bytes)
    return Search(least, tried, order)
