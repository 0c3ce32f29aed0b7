"""FLOP counts of estimators/flops.py against torch.utils.flop_counter.FlopCounterMode on tiny models built
locally from configs (no download), the way tests/test_params.py checks parameter counts against transformers.

Eager attention is used in the models so that the S x S matmuls are plain batched matmuls the counter sees;
`causal=False` is then the right count (eager computes every score and masks afterwards)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from estimators.flops import attention_flops, head_flops, layer_linear_flops, step_flops  # noqa: E402
from estimators.hf_config import spec_from_hf_config  # noqa: E402
from estimators.setup import Setup  # noqa: E402

B, S = 2, 12

CONFIGS = {
    "llama-gqa": dict(
        model_type="llama",
        hidden_size=64,
        intermediate_size=112,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=160,
        max_position_embeddings=64,
    ),
    "qwen2-bias": dict(
        model_type="qwen2",
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=128,
        max_position_embeddings=64,
    ),
    "gpt2": dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64),
}


def _build(cfg: dict):
    cfg = dict(cfg)
    model_type = cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **cfg)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager").float()
    spec = spec_from_hf_config(config.to_dict() | {"model_type": model_type}, name=model_type)
    return model, spec


def _count(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("key", list(CONFIGS))
def test_forward_flops_match_flop_counter(key):
    model, spec = _build(CONFIGS[key])
    ids = torch.randint(0, spec.vocab_size, (B, S))
    with torch.no_grad():
        counted = _count(lambda: model(input_ids=ids))
    ours = spec.num_layers * (layer_linear_flops(spec, B * S) + attention_flops(spec, B, S, causal=False)) + head_flops(spec, B * S)
    assert counted == ours


@pytest.mark.parametrize("key", ["llama-gqa", "gpt2"])
def test_full_finetune_step_flops_match_flop_counter(key):
    """Forward + backward of full fine-tuning: each linear's input and weight gradients, eager attention's two
    gradients per batched matmul, the head's three matmuls."""
    model, spec = _build(CONFIGS[key])
    ids = torch.randint(0, spec.vocab_size, (B, S))

    def step():
        model(input_ids=ids, labels=ids).loss.backward()

    counted = _count(step)
    setup = Setup(adaptation="full", micro_batch=B, seq_len=S, grad_ckpt=False, attention="eager", precision="fp32")
    assert counted == step_flops(spec, setup, causal=False).total


def test_lora_step_flops_match_flop_counter():
    """LoRA: frozen weights get no weight-gradient matmul, the adapters' small matmuls get all three, the frozen
    head only its input gradient. enable_input_require_grads makes every layer's input need a gradient (what
    gradient checkpointing in HF does), so the first layer's input gradient is counted too."""
    peft = pytest.importorskip("peft")
    model, spec = _build(CONFIGS["llama-gqa"])
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.0))
    lora.enable_input_require_grads()
    ids = torch.randint(0, spec.vocab_size, (B, S))
    counted = _count(lambda: lora(input_ids=ids, labels=ids).loss.backward())
    setup = Setup(
        adaptation="lora",
        lora_r=4,
        lora_alpha=8,
        lora_targets="q_proj,v_proj,down_proj",
        lora_dropout=0.0,
        micro_batch=B,
        seq_len=S,
        grad_ckpt=False,
        attention="eager",
        precision="fp32",
    )
    ours = step_flops(spec, setup, causal=False)
    assert ours.linear_backward_weight == 0 and ours.lora > 0
    assert counted == ours.total


def test_checkpointing_adds_one_forward_of_the_layers():
    _, spec = _build(CONFIGS["llama-gqa"])
    base = Setup(adaptation="full", micro_batch=B, seq_len=S, grad_ckpt=False, attention="eager", precision="fp32")
    off = step_flops(spec, base, causal=False)
    on = step_flops(spec, base.with_(grad_ckpt=True), causal=False)
    assert on.total - off.total == pytest.approx(off.linear_forward + off.attention_forward)
