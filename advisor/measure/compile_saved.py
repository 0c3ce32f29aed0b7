"""Bytes one decoder layer saves for backward, eager vs torch.compile (Inductor), measured on CPU with real bf16
tensors under bf16 autocast (as the HF Trainer runs): the evidence behind `--compile` (estimators/terms.py
`compiled_layer_saved`, checked against this file's recorded output by tests/test_compile_saved.py).

A saved-tensors hook sees every tensor autograd keeps, the compiled graph's saved outputs included (AOTAutograd
saves them through ctx.save_for_backward). Counted per token: each distinct storage with a dimension equal to the
token count, the layer input included (eager keeps no copy of it in this family, the compiled graph keeps it to
recompute the first norm) and the rotary cos/sin excluded (one pair shared by every layer). Set apart: parameter-shaped tensors (the compute-dtype casts of fp32 LoRA weights, per layer, not per
token). Modes: "full" every weight trained; "lora" peft LoRA r 16 on every linear (fp32 adapters, frozen base) with
lora_dropout 0 and 0.05. Families: Llama (multi-head and grouped-query) and Qwen3 (per-head q/k RMSNorm).

    .venv/bin/python -m advisor.measure.compile_saved     # recorded output: bench/compile_saved.txt (~10-25 min)
    .venv/bin/python -m advisor.measure.compile_saved qwen3-gqa lora-dropout     # one layer
"""

from __future__ import annotations

import json
import sys

import torch

TOKENS = 1000  # equal to no width below, so a tensor with a dimension of 1000 is per token
CONFIGS = {  # name: (model_type, config fields)
    "llama-mha": ("llama", {"hidden_size": 512, "intermediate_size": 1376, "num_attention_heads": 8, "num_key_value_heads": 8}),
    "llama-gqa": ("llama", {"hidden_size": 768, "intermediate_size": 2048, "num_attention_heads": 12, "num_key_value_heads": 4}),
    "qwen3-gqa": ("qwen3", {"hidden_size": 512, "intermediate_size": 1376, "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 64}),
}
MODES = {"full": None, "lora": 0.0, "lora-dropout": 0.05}  # mode: lora_dropout (None = no adapters, every weight trained)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _classes(model_type: str):
    if model_type == "qwen3":
        from transformers.models.qwen3.modeling_qwen3 import Qwen3DecoderLayer, Qwen3RotaryEmbedding

        return Qwen3DecoderLayer, Qwen3RotaryEmbedding
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    return LlamaDecoderLayer, LlamaRotaryEmbedding


def _config(model_type: str, fields: dict):
    from transformers import AutoConfig

    cfg = AutoConfig.for_model(model_type, num_hidden_layers=1, max_position_embeddings=TOKENS, vocab_size=256, **fields)
    cfg._attn_implementation = "sdpa"
    return cfg


def _layer(model_type: str, cfg, dropout: float | None):
    layer_cls, _ = _classes(model_type)
    torch.manual_seed(0)
    layer = layer_cls(cfg, 0).to(torch.bfloat16)
    if dropout is None:
        return layer
    from peft import LoraConfig, inject_adapter_in_model

    for p in layer.parameters():
        p.requires_grad_(False)
    layer = inject_adapter_in_model(LoraConfig(r=16, lora_alpha=32, lora_dropout=dropout, target_modules=LORA_TARGETS), layer)
    for name, p in layer.named_parameters():
        if "lora_" in name:  # peft's fp32 adapters over a bf16 base (autocast_adapter_dtype=True)
            p.data = p.data.float()
            p.requires_grad_(True)
    return layer


def saved(layer, model_type: str, cfg) -> dict:
    """One forward and backward of `layer` on a [1, TOKENS, h] bf16 input needing a gradient; what autograd kept."""
    _, rotary_cls = _classes(model_type)
    x = torch.randn(1, TOKENS, cfg.hidden_size, dtype=torch.bfloat16, requires_grad=True)
    pos = torch.arange(TOKENS)[None]
    cos, sin = rotary_cls(cfg)(x, pos)
    skip = {cos.untyped_storage().data_ptr(), sin.untyped_storage().data_ptr()}
    skip |= {p.untyped_storage().data_ptr() for p in layer.parameters()}
    seen: set[int] = set()
    per_token: list[list] = []
    other = [0]

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip and ptr not in seen:
            seen.add(ptr)
            if TOKENS in t.shape:
                per_token.append([list(t.shape), str(t.dtype).removeprefix("torch."), t.untyped_storage().nbytes() / TOKENS])
            else:
                other[0] += t.untyped_storage().nbytes()
        return t

    with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x, position_embeddings=(cos, sin), attention_mask=None, position_ids=pos)
        out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()
    return {"per_token": sum(row[2] for row in per_token), "tensors": per_token, "other_bytes": other[0]}


def measure(name: str, mode: str) -> dict:
    model_type, fields = CONFIGS[name]
    cfg = _config(model_type, fields)
    eager = saved(_layer(model_type, cfg, MODES[mode]), model_type, cfg)
    torch._dynamo.reset()  # a fresh compile each time: with 9 layers in one process dynamo would hit its recompile limit
    compiled_layer = torch.compile(_layer(model_type, cfg, MODES[mode]))
    saved(compiled_layer, model_type, cfg)  # compiles
    compiled = saved(compiled_layer, model_type, cfg)
    return {
        "config": name,
        "model_type": model_type,
        **fields,
        "mode": mode,
        "lora_dropout": MODES[mode],
        "tokens": TOKENS,
        "eager_per_token": eager["per_token"],
        "compiled_per_token": compiled["per_token"],
        "compiled_other_bytes": compiled["other_bytes"],
        "compiled_tensors": compiled["tensors"],
    }


def main() -> None:
    import transformers

    print(
        f"# .venv/bin/python -m advisor.measure.compile_saved   (CPU, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, bf16 autocast, {TOKENS} tokens; bytes per token of one decoder layer)"
    )
    only = sys.argv[1:]  # e.g. `qwen3-gqa lora-dropout`: one config and mode
    for name in [only[0]] if only else CONFIGS:
        for mode in [only[1]] if len(only) > 1 else MODES:
            print(json.dumps(measure(name, mode)), flush=True)
            print(f"# {name} {mode} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
