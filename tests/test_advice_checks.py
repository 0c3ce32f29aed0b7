"""Issue 13 item 6: silent surprises get one line each, never repeated. Errors (exit 2, one line, no traceback)
for LoRA target names the model does not have, an empty target list, a rank above the hidden size and a
PPO/GRPO response with no room for a prompt; warnings for QLoRA costing more than LoRA and bf16 on a T4."""

from __future__ import annotations

import json

import pytest

from estimators import Setup, estimate
from estimators.catalog import resolve_model
from estimators.checks import valid_target_names
from estimators.errors import EstimateError


def _one_error_line(out, *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", [["estimate"], ["fit", "--gpu", "rtx4090"]])
def test_unknown_lora_target_names_the_valid_ones(advisor_main, command):
    out = advisor_main(*command, "--model", "7b", "--method", "lora", "--lora-targets", "q_proj,foo")
    line = _one_error_line(out, "'foo'", "Llama 2 7B")
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "all-linear"):
        assert name in line


def test_valid_names_follow_the_model():
    assert "c_attn" in valid_target_names(resolve_model("gpt2").spec)
    mixtral = resolve_model("mixtral-8x7b").spec
    assert {"w1", "w2", "w3"} <= set(valid_target_names(mixtral))  # peft's old expert names it re-targets
    estimate(mixtral, Setup(adaptation="lora", lora_targets="q_proj,w1,w3"))  # accepted: no error


def test_empty_lora_targets_is_an_error_not_all_linear(advisor_main):
    out = advisor_main("estimate", "--method", "lora", "--lora-targets", "")
    _one_error_line(out, "--lora-targets is empty", "all-linear")


def test_a_rank_above_the_hidden_size_is_refused(advisor_main):
    out = advisor_main("estimate", "--method", "lora", "--lora-r", "100000")
    _one_error_line(out, "--lora-r 100000", "hidden size 4096")
    estimate(resolve_model("7b").spec, Setup(adaptation="lora", lora_r=4096))  # the largest meaningful rank is fine


@pytest.mark.parametrize("train", ["grpo", "ppo"])
def test_a_response_longer_than_the_sequence_is_refused(advisor_main, train):
    out = advisor_main("estimate", "--train", train, "--method", "lora", "--seq-len", "1024", "--response-len", "2048")
    _one_error_line(out, "--response-len 2048", "--seq-len 1024", "prompt")
    with pytest.raises(EstimateError, match="no room for a prompt"):
        estimate(resolve_model("7b").spec, Setup(train=train, adaptation="lora", seq_len=512, response_len=512))


def test_qlora_costing_more_than_lora_is_one_warning(advisor_main):
    spec = resolve_model("mixtral-8x7b").spec
    qlora, lora = estimate(spec, Setup(adaptation="qlora")), estimate(spec, Setup(adaptation="lora"))
    assert qlora.device_bytes > lora.device_bytes  # the surprise itself
    out = advisor_main("estimate", "--model", "mixtral-8x7b", "--method", "qlora")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("QLoRA costs more than LoRA") == 1 and "--no-kbit-upcast" in out.stderr
    dense = advisor_main("estimate", "--model", "7b", "--method", "qlora")
    assert "QLoRA costs more" not in dense.stderr
    fixed = estimate(spec, Setup(adaptation="qlora", kbit_upcast=False))
    assert not any("QLoRA costs more" in w for w in fixed.warnings)


def test_fit_prints_each_warning_once(advisor_main):
    out = advisor_main("fit", "--model", "mixtral-8x7b", "--method", "qlora", "--gpu", "h100")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("advisor: warning:")]
    assert lines and len(lines) == len(set(lines))
    assert sum("LoRA also adapts" in line for line in lines) == 1
    assert sum("QLoRA costs more than LoRA" in line for line in lines) == 1
    data = json.loads(advisor_main("fit", "--model", "mixtral-8x7b", "--method", "qlora", "--gpu", "h100", "--json").stdout)
    assert len(data["warnings"]) == len(set(data["warnings"])) and any("QLoRA costs more" in w for w in data["warnings"])


def test_bf16_on_a_t4_is_warned_with_what_to_use(advisor_main):
    out = advisor_main("estimate", "--gpu", "t4", "--method", "lora")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("has no bf16") == 1 and "--precision fp16" in out.stderr
    full = advisor_main("estimate", "--gpu", "t4", "--method", "full", "--precision", "bf16-mixed")
    assert "--precision fp16-mixed" in full.stderr
    ok = advisor_main("estimate", "--gpu", "t4", "--method", "lora", "--precision", "fp16", "--json")
    assert "has no bf16" not in ok.stderr and not any("bf16" in w for w in json.loads(ok.stdout)["warnings"])
    h100 = advisor_main("estimate", "--gpu", "h100", "--method", "lora")
    assert "has no bf16" not in h100.stderr
