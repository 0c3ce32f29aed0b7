"""What LLaMA-Adapter (peft AdaptionPromptConfig) keeps for backward, per decoder layer, measured on CPU.

Builds small Llama and Mistral models from a config (no download, random weights, bf16 like the generated scripts'
pure-bf16 runs), runs one forward under bf16 autocast and records every tensor autograd saves (torch.autograd.graph
.saved_tensors_hooks: a storage counts once, at the layer that saved it first; parameters are not counted). Three
set-ups per model:

  frozen   every weight frozen, the embedding output requiring grad (what a frozen base keeps: the baseline)
  adapter  peft AdaptionPromptConfig(adapter_len, adapter_layers), input grads on (what gradient checkpointing runs:
           TRL's SFTTrainer calls enable_input_require_grads for a peft model under checkpointing)
  no-grad  the same adapter without input grads (no checkpointing): layers below the adapted ones keep nothing

Then one real training step (forward, backward, AdamW step twice) of the adapter model, whose gradients must reach
every adaption_prompt / adaption_gate, with and without checkpointing (non-reentrant, as transformers 5 enables it).

    .venv/bin/python bench/llama_adapter_saved.py            # writes bench/results/llama_adapter_saved.txt

The closed form it is compared with (estimators/adapter_prompt_terms.py): per adapted layer, beyond the frozen layer,
2 T q_width (the rotated query peft recomputes, kept by the score matmul) + 8 B H S adapter_len (the fp32 softmax, its
bf16 cast kept by the gate product, the gated scores kept by the value matmul) + 4 B adapter_len q_width (the adapter
keys and values repeated to every head and batch row).
"""

from __future__ import annotations

import argparse
import contextlib
import sys

import torch
from peft import AdaptionPromptConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

MODELS = {
    "llama": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=8, vocab_size=2000),
    ),
    "llama-gqa": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=2, vocab_size=2000),
    ),
    "mistral": (
        MistralConfig,
        MistralForCausalLM,
        dict(
            hidden_size=512,
            intermediate_size=1792,
            num_hidden_layers=6,
            num_attention_heads=16,
            num_key_value_heads=4,
            vocab_size=2000,
            sliding_window=None,
        ),
    ),
    # q narrower than hidden (head_dim x heads = 512 < 640, as Mistral NeMo), with a hidden / kv ratio peft's view can take
    "mistral-narrow-q": (
        MistralConfig,
        MistralForCausalLM,
        dict(
            hidden_size=640,
            intermediate_size=1792,
            num_hidden_layers=6,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=64,
            vocab_size=2000,
            sliding_window=None,
        ),
    ),
}


def build(name: str, adapter_len: int, adapter_layers: int, peft: bool):
    config_cls, model_cls, kw = MODELS[name]
    torch.manual_seed(0)
    model = model_cls(config_cls(**kw, attn_implementation="sdpa")).to(torch.bfloat16)
    if peft:
        model = get_peft_model(model, AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=adapter_len, adapter_layers=adapter_layers))
    else:
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def layers_of(model):
    inner = model
    while not hasattr(inner, "layers"):
        inner = inner.model
    return inner.layers


def saved_per_layer(model, batch: int, seq: int, input_grads: bool) -> list[int]:
    """Bytes of the storages autograd saves in each decoder layer's forward (first saver counts)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    layers = layers_of(model)
    current = [-1]
    seen: dict[int, int] = {}
    per = [0] * (len(layers) + 1)  # the last slot: outside the layers (final norm, head)
    hooks = []
    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_pre_hook(lambda mod, args, i=i: current.__setitem__(0, i)))
        hooks.append(layer.register_forward_hook(lambda mod, args, out: current.__setitem__(0, -1)))

    def pack(t):
        st = t.untyped_storage()
        key = st.data_ptr()
        if key not in params and key not in seen and st.nbytes():
            seen[key] = st.nbytes()
            per[current[0]] += st.nbytes()
        return t

    if input_grads:
        model.enable_input_require_grads()
    ids = torch.randint(0, 2000, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(input_ids=ids, labels=ids, use_cache=False)
    for h in hooks:
        h.remove()
    del out
    return per


def closed_form(name: str, batch: int, seq: int, adapter_len: int) -> int:
    kw = MODELS[name][2]
    q = kw["num_attention_heads"] * kw.get("head_dim", kw["hidden_size"] // kw["num_attention_heads"])  # num_heads x head_dim
    heads = kw["num_attention_heads"]
    return 2 * batch * seq * q + 8 * batch * heads * seq * adapter_len + 4 * batch * adapter_len * q


def train_step(name: str, adapter_len: int, adapter_layers: int, ckpt: bool) -> str:
    model = build(name, adapter_len, adapter_layers, peft=True)
    if ckpt:
        model.gradient_checkpointing_enable()  # transformers 5: non-reentrant
        model.enable_input_require_grads()  # TRL's SFTTrainer does this for a peft model under checkpointing
    model.train()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([p for _, p in trained], lr=1e-2)
    ids = torch.randint(0, 2000, (2, 64))
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        grads = [p.grad is not None and bool(p.grad.abs().sum() > 0) for _, p in trained]
        opt.step()
        opt.zero_grad(set_to_none=True)
    states = sum(s.nbytes() for p in opt.state.values() for s in (p["exp_avg"].untyped_storage(), p["exp_avg_sq"].untyped_storage()))
    return (
        f"{name} ckpt={ckpt}: {len(trained)} trained tensors ({', '.join(sorted({str(p.dtype) for _, p in trained}))}), "
        f"{sum(p.numel() for _, p in trained)} params, gradients reach {sum(grads)}/{len(grads)}, AdamW states {states} bytes"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/llama_adapter_saved.txt")
    args = ap.parse_args(argv)
    lines = [
        f"torch {torch.__version__}, transformers {sys.modules['transformers'].__version__}, "
        f"peft {sys.modules['peft'].__version__}; bf16 weights, CPU bf16 autocast, sdpa"
    ]
    ok = True
    for name in MODELS:
        for batch, seq, alen, nlay in ((1, 256, 10, 4), (2, 128, 10, 4), (2, 256, 16, 6), (1, 512, 4, 1)):
            frozen = saved_per_layer(build(name, alen, nlay, False), batch, seq, True)
            adapter = saved_per_layer(build(name, alen, nlay, True), batch, seq, True)
            nograd = saved_per_layer(build(name, alen, nlay, True), batch, seq, False)
            n = len(frozen) - 1
            first = n - nlay
            deltas = [adapter[i] - frozen[i] for i in range(n)]
            want = closed_form(name, batch, seq, alen)
            match = all(d == (want if i >= first else 0) for i, d in enumerate(deltas))
            ok &= match
            lines.append(f"{name} B={batch} S={seq} adapter_len={alen} adapter_layers={nlay}/{n}:")
            lines.append(f"  frozen  per layer {frozen[:n]}  outside {frozen[n]}")
            lines.append(f"  adapter per layer {adapter[:n]}  outside {adapter[n]}")
            lines.append(f"  adapter - frozen  {deltas}  closed form {want} per adapted layer: {'MATCH' if match else 'DIFFER'}")
            lines.append(
                f"  no input grads    {nograd[:n]}  outside {nograd[n]}  (first adapted layer {first}: "
                f"frozen {frozen[first]} -> {nograd[first]}, i.e. {adapter[first] - nograd[first]} less than with input grads)"
            )
    for name in MODELS:
        for ckpt in (False, True):
            lines.append(train_step(name, 10, 4, ckpt))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with contextlib.suppress(OSError):
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
