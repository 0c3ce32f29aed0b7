"""The architecture numbers of a decoder-only language model: what the memory model needs, nothing more.

One `ModelSpec` describes every supported family through a few switches (gated MLP, biases, norms, fused
projections, experts). It is built from a catalog row or a Hugging Face `config.json`; it never needs torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace


@dataclass(frozen=True)
class ModelSpec:
    name: str
    model_type: str  # the Hugging Face `model_type` (llama, mistral, qwen2, gemma2, phi3, gpt2, ...)
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    head_dim: int = 0  # 0 means hidden_size // num_heads
    max_positions: int = 4096
    tie_embeddings: bool = False
    gated_mlp: bool = True  # gate/up/down (SwiGLU, GeGLU) vs. fc/proj (GPT-2)
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norm: str = "rms"  # "rms" (weight only) or "layer" (weight and bias)
    norms_per_layer: int = 2  # Gemma 2/3 have four (pre/post attention and MLP)
    qk_norm: str = ""  # "" none; "head" per-head q/k norm (Qwen3, Gemma 3); "full" over q and k width (OLMo 2)
    final_norm: bool = True
    learned_positions: bool = False  # GPT-2's wpe table
    fused_qkv: bool = False  # Phi-3 qkv_proj / GPT-2 c_attn
    fused_gate_up: bool = False  # Phi-3 gate_up_proj
    num_experts: int = 0  # 0 = dense
    experts_per_token: int = 0
    moe_intermediate_size: int = 0  # per expert; 0 means intermediate_size
    shared_expert_intermediate_size: int = 0  # Qwen2-MoE style shared expert (with its own sigmoid gate)
    sliding_window: int = 0
    logit_softcap: float = 0.0  # Gemma 2 final logit soft-capping (tanh over the logits: extra logits-sized tensors)
    attn_softcap: float = 0.0  # Gemma 2 attention logit soft-capping: sdpa cannot do it, HF runs eager attention
    # transformers 5 stores MoE experts as stacked 3-D nn.Parameters (`experts.gate_up_proj` [E, 2I, H] and
    # `experts.down_proj` [E, H, I], used through F.linear) and the router as a raw 2-D nn.Parameter
    # (`mlp.gate.weight`), not as nn.Linear modules. This matters: bitsandbytes only quantizes nn.Linear/Conv1D
    # (so QLoRA leaves experts and router in the compute dtype) and peft's "all-linear" only wraps nn.Linear
    # (so LoRA cannot adapt them). True for mixtral, qwen2_moe and qwen3_moe under transformers 5.x.
    experts_fused: bool = False
    hf_id: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def q_width(self) -> int:
        return self.num_heads * self.head_size

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_size

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def expert_intermediate(self) -> int:
        return self.moe_intermediate_size or self.intermediate_size

    def with_(self, **changes) -> "ModelSpec":
        return replace(self, **changes)


SPEC_FIELDS = {f.name for f in fields(ModelSpec)}
