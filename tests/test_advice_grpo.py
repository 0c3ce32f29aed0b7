"""Issue 13 item 5: GRPO's generation round is lcm(G, micro-batch x GPUs x accumulation) completions, so a
micro-batch that does not divide G multiplies the KV cache: say so, and let fit and advise prefer micro-batches
that divide well. And the seq-len sweep that dipped at 1024 tokens (a pricing bug: the embedding gradient was
matched as logits by its byte count)."""

from __future__ import annotations

import math

from advisor.advice.advise import advise
from advisor.answers import Answers
from estimators import Setup, estimate
from estimators.catalog import resolve_model
from estimators.fit import SEQ_STEP, fit_report
from estimators.gpus import find_gpu
from estimators.kind_rollout import grpo_divides_well, grpo_generation_batch

SPEC = resolve_model("7b").spec


def _round_is_smallest(s: Setup) -> bool:
    per_step = s.micro_batch * s.world_size * s.grad_accum
    return math.lcm(s.num_generations, per_step) == max(s.num_generations, per_step)


def test_a_micro_batch_that_does_not_divide_g_is_warned_about():
    three = estimate(SPEC, Setup(train="grpo", adaptation="qlora", micro_batch=3))
    four = estimate(SPEC, Setup(train="grpo", adaptation="qlora", micro_batch=4))
    assert grpo_generation_batch(three.setup) == 24 and grpo_generation_batch(four.setup) == 8
    assert three.device_bytes > four.device_bytes  # the jump: 3 completions per step cost more than 4
    jump = [w for w in three.warnings if "lcm(num_generations 8" in w]
    assert len(jump) == 1 and "= 24 completions per round" in jump[0] and "micro-batch 1, 2, 4, 8" in jump[0]
    assert not any("lcm(" in w for w in four.warnings)


def test_the_warning_reaches_advisor_estimate_once(advisor_main):
    out = advisor_main("estimate", "--train", "grpo", "--method", "qlora", "--micro-batch", "3")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("completions per round") == 1


def test_divides_well():
    assert all(grpo_divides_well(Setup(train="grpo", micro_batch=b)) for b in (1, 2, 4, 8, 16))
    assert not any(grpo_divides_well(Setup(train="grpo", micro_batch=b)) for b in (3, 5, 6, 7, 12))
    assert grpo_divides_well(Setup(train="grpo", micro_batch=3, grad_accum=8, num_generations=6))  # 24 = 4 x 6


def test_fit_prefers_a_micro_batch_that_divides_g():
    setup = Setup(train="grpo", adaptation="qlora", micro_batch=3)
    capacity = find_gpu("a100-40gb").memory_bytes
    report = fit_report(SPEC, setup, capacity)
    assert not report.fits and report.fixes
    first = report.fixes[0]
    assert first.fits and _round_is_smallest(first.setup)
    assert "divides num_generations 8" in first.label
    # every fix that cuts the micro-batch lands on one whose round divides well
    assert all(_round_is_smallest(f.setup) for f in report.fixes if "micro_batch" in f.changes)


def test_advise_grpo_plans_round_divides_well():
    for gpu in ("rtx4090", "a100-80gb", "h100"):
        plan = advise(Answers.from_mapping(dict(goal="reasoning", data=["reward_signal"], gpu=gpu, model="7b")))
        for stage in plan.stages:
            if stage.setup.train == "grpo":
                assert _round_is_smallest(stage.setup), (gpu, stage.setup)


def test_grpo_sweep_over_seq_len_never_dips():
    """--model 3b --train grpo --method full --precision bf16-mixed --optimizer sgd --grad-ckpt --micro-batch 2 gave
    42.4 GiB at seq 640 and 40.9 at 1024: at 2 x 1024 tokens the logits' bytes (2048 x V x 12) equal the embedding
    gradient's (V x h x 8), and the byte-count match re-priced the gradient on completion tokens."""
    spec = resolve_model("3b").spec
    base = Setup(train="grpo", adaptation="full", precision="bf16-mixed", optimizer="sgd", grad_ckpt=True, micro_batch=2)
    previous = 0
    embedding = set()
    for seq in range(640, 1600, SEQ_STEP):
        est = estimate(spec, base.with_(seq_len=seq))
        assert est.device_bytes >= previous, seq
        previous = est.device_bytes
        embedding |= {v.bytes for v in est.phases["backward (end)"] if v.name == "embedding gradient"}
    assert len(embedding) == 1  # V x h whatever the sequence
