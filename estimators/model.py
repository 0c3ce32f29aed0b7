"""The architecture numbers of a language model (decoders, and BERT-style encoders for classification): what the
memory model needs, nothing more.

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
    # "rms" (weight only), "layer" (LayerNorm: weight and bias), "layer_nobias" (LayerNorm with a weight and no
    # bias: Cohere), "none" (OLMo 1's LayerNorm without parameters)
    norm: str = "rms"
    # Gemma 2/3 have four (pre/post attention and MLP); 1 = one norm feeding both attention and MLP (parallel
    # blocks of Phi, Falcon 7B, Cohere)
    norms_per_layer: int = 2
    # "" none; "head" one norm over head_dim shared by all heads (Qwen3, Gemma 3, Phi's qk_layernorm); "full" one
    # over the whole q and k width (OLMo 2); "per_head" one weight-only norm per head (StableLM 2 12B, Command R+)
    qk_norm: str = ""
    # attention and MLP both read the layer input and are added to it together (Phi, GPT-NeoX, Falcon, Cohere);
    # with norms_per_layer 2 (GPT-NeoX, Falcon 40B) each has its own norm of that input
    parallel_block: bool = False
    lm_head_bias: bool = False  # Phi: the output head has a bias (vocab_size parameters)
    # nn.Dropout after attention and after the MLP with p > 0 in training (GPT-2, Phi-2, StarCoder 2, SantaCoder):
    # the fused CUDA kernel keeps a one-byte mask per element; embed_dropout likewise after the embedding
    resid_dropout: bool = False
    embed_dropout: bool = False
    # the non-gated MLP's activation as the config names it (hidden_act / activation_function / activation):
    # "gelu_new" (GPT-2, Phi: the tanh formula written out op by op), "gelu_fast" (SantaCoder, likewise),
    # "gelu" or "gelu_pytorch_tanh" (one fused op: GPT-NeoX, Falcon, StarCoder 2); unused for gated MLPs
    mlp_act: str = "gelu_new"
    final_norm: bool = True
    learned_positions: bool = False  # GPT-2's wpe table
    fused_qkv: bool = False  # Phi-3 qkv_proj / GPT-2 c_attn / GPT-NeoX and Falcon query_key_value
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
    # Encoders fine-tuned for sequence classification (BERT, RoBERTa: AutoModelForSequenceClassification):
    # bidirectional attention with a [B, 1, 1, S] padding mask instead of a causal one, post-LayerNorm blocks, a
    # LayerNorm after the embeddings instead of a final one, and a two-layer head on the first token (BERT's pooler
    # dense + tanh and classifier, RoBERTa's dense + tanh and out_proj) instead of an LM head: no B x S x V logits.
    encoder: bool = False
    token_types: int = 0  # type_vocab_size: BERT's token-type embedding rows (2; RoBERTa 1)
    num_labels: int = 2  # the classifier's outputs (transformers' default config has 2 labels)
    # nn.Dropout on the attention probabilities with p > 0 (BERT's attention_probs_dropout_prob, GPT-2's attn_pdrop):
    # eager attention keeps its mask and dropped S x S copy; the flash kernel drops inside (nothing extra kept)
    attn_dropout: bool = False
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
    def norm_params_per_width(self) -> int:
        """Parameters per normalised element: weight and bias, weight only, or none."""
        return {"layer": 2, "rms": 1, "layer_nobias": 1, "none": 0}[self.norm]

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def expert_intermediate(self) -> int:
        return self.moe_intermediate_size or self.intermediate_size

    def with_(self, **changes) -> "ModelSpec":
        return replace(self, **changes)


SPEC_FIELDS = {f.name for f in fields(ModelSpec)}
