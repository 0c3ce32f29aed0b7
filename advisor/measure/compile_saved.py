"""Bytes one Llama decoder layer saves for backward, eager vs torch.compile (Inductor), on CPU with real bf16 tensors
(issue 15 §2: what torch.compile changes). A saved-tensors hook counts every distinct storage autograd keeps (the
layer input and parameters excluded), per token; "trained" = every weight trained, "frozen" = frozen weights with
the input needing a gradient (as under LoRA, without the adapters). Evidence only: estimates price eager runs.

    .venv/bin/python -m advisor.measure.compile_saved     # recorded output: bench/compile_saved.txt
"""
import json

import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

h, i, T = 512, 1376, 1024
cfg = LlamaConfig(hidden_size=h, intermediate_size=i, num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=T)
cfg._attn_implementation = "sdpa"
torch.manual_seed(0)
def saved_bytes(layer, frozen):
    for p in layer.parameters():
        p.requires_grad_(not frozen)
    x = torch.randn(1, T, h, dtype=torch.bfloat16, requires_grad=True)
    rot = LlamaRotaryEmbedding(cfg)
    pos = torch.arange(T)[None]
    cos_sin = rot(x, pos)
    seen, total = set(), [0]
    def pack(t):
        st = t.untyped_storage()
        if st.data_ptr() not in seen and not isinstance(t, torch.nn.Parameter) and t is not x:
            seen.add(st.data_ptr())
            total[0] += st.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x, position_embeddings=cos_sin, attention_mask=None, position_ids=pos)
        out = out[0] if isinstance(out, tuple) else out
    out.float().sum().backward()
    return total[0]


def main() -> None:
    res = {}
    for frozen in (False, True):
        layer = LlamaDecoderLayer(cfg, 0).to(torch.bfloat16)
        eager = saved_bytes(layer, frozen)
        comp = torch.compile(layer)
        saved_bytes(comp, frozen)  # compile
        compiled = saved_bytes(comp, frozen)
        res["frozen" if frozen else "trained"] = {"eager_per_token": eager / T, "compiled_per_token": compiled / T}
    print(json.dumps({"torch": torch.__version__, "hidden": h, "intermediate": i, "tokens": T, **res}, indent=1))


if __name__ == "__main__":
    main()
