"""Properties of the time model that must hold for any set-up: more work never takes less time, a card that is no
faster on any roof is never faster, more GPUs never make a token slower while communication is small."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.catalog import resolve_model
from estimators.gpus import gpus
from estimators.setup import Setup
from estimators.time_report import Dataset, time_dict
from estimators.timing import step_time

MODELS = [resolve_model(k).spec for k in ("qwen2.5-0.5b", "llama-3.1-8b", "mixtral-8x7b")]
ADAPTATIONS = ("full", "lora", "qlora")
TRAINS = ("sft", "dpo", "reward", "grpo")
H100, A100 = gpus()["h100"], gpus()["a100-80gb"]
NOISE = 1 + 1e-9  # float rounding: in the launch-bound regime the step time is the same sum computed two ways

setups = st.builds(
    Setup,
    train=st.sampled_from(TRAINS),
    adaptation=st.sampled_from(ADAPTATIONS),
    micro_batch=st.integers(1, 16),
    seq_len=st.integers(64, 8192),
    grad_accum=st.integers(1, 8),
    grad_ckpt=st.booleans(),
    lora_targets=st.sampled_from(("qv", "attention", "all-linear")),
).map(lambda s: s.with_(response_len=max(1, min(s.response_len, s.seq_len // 2))))  # GRPO: prompt + response


@settings(max_examples=60, deadline=None)
@given(s=setups, m=st.sampled_from(MODELS), extra=st.integers(1, 4096))
def test_longer_sequences_never_take_less_time(s, m, extra):
    shorter = step_time(m, s, H100).seconds
    longer = step_time(m, s.with_(seq_len=s.seq_len + extra), H100).seconds
    assert longer * NOISE >= shorter


@settings(max_examples=60, deadline=None)
@given(s=setups.filter(lambda s: s.train != "grpo"), m=st.sampled_from(MODELS), more=st.integers(1, 8))
def test_more_sequences_per_step_never_take_less_time(s, m, more):
    # Not GRPO: its generation batch is lcm(G, micro_batch x grad_accum), and a bigger generation batch decodes
    # more completions per second, so a step with a larger micro-batch can rightly take its share in less time.
    assert step_time(m, s.with_(micro_batch=s.micro_batch + more), A100).seconds * NOISE >= step_time(m, s, A100).seconds
    assert step_time(m, s.with_(grad_accum=s.grad_accum + more), A100).seconds * NOISE >= step_time(m, s, A100).seconds


@settings(max_examples=40, deadline=None)
@given(s=setups, m=st.sampled_from(MODELS), tokens=st.integers(10**5, 10**9), factor=st.floats(1.0, 10.0))
def test_more_tokens_never_take_less_time(s, m, tokens, factor):
    few = time_dict(m, s, H100, Dataset(tokens=tokens))["hours"]["total"]
    many = time_dict(m, s, H100, Dataset(tokens=int(tokens * factor)))["hours"]["total"]
    assert many * NOISE >= few


def _dominated(a, b) -> bool:
    """Card a is nowhere faster than card b: tensor peak, bandwidth, fp32, links."""
    return (
        a.peak_flops <= b.peak_flops
        and a.memory_gbs <= b.memory_gbs
        and a.fp32_tflops
        and b.fp32_tflops
        and a.fp32_tflops <= b.fp32_tflops
        and a.interconnect_gbs <= b.interconnect_gbs
        and a.pcie_gbs <= b.pcie_gbs
        and (a.bf16 <= b.bf16)
    )


PAIRS = [(a, b) for a, b in itertools.permutations(gpus().values(), 2) if _dominated(a, b) and a.id != b.id]


def test_there_are_dominated_pairs_to_check():
    assert len(PAIRS) > 30
    assert any(a.id == "rtx3060" and b.id == "h100" for a, b in PAIRS)


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
@pytest.mark.parametrize("train", ("sft", "dpo", "grpo"))
def test_smaller_gpus_never_take_less_time(adaptation, train):
    m = MODELS[1]
    s = Setup(train=train, adaptation=adaptation, micro_batch=2, seq_len=1024, precision="fp16")
    for slow, fast in PAIRS:
        assert step_time(m, s, slow).seconds * NOISE >= step_time(m, s, fast).seconds, (slow.id, fast.id)


@pytest.mark.parametrize("adaptation", ("lora", "qlora"))
def test_more_gpus_never_more_time_per_token_while_communication_is_small(adaptation):
    """DDP over NVLink with LoRA's few gradients: the per-GPU step time barely changes, so the whole run's
    hours fall as GPUs are added (tokens per GPU per step are the same)."""
    m = MODELS[1]
    hours = []
    for n in (1, 2, 4, 8):
        s = Setup(adaptation=adaptation, micro_batch=4, seq_len=2048, gpus=n, parallel="ddp" if n > 1 else "none")
        hours.append(time_dict(m, s, H100, Dataset(tokens=10**8))["hours"]["total"])
    assert hours == sorted(hours, reverse=True)
    assert hours[-1] < hours[0] / 6  # close to linear: 8 GPUs, small gradients
