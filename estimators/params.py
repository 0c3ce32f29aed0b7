"""Exact parameter counts from config arithmetic, and the shapes of every linear layer.

Counts are exact (a test compares every catalog model with a meta-device model built by transformers), because
LoRA shapes, QLoRA's quantized share and every byte term below are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelSpec


@dataclass(frozen=True)
class Linear:
    """One linear projection in a decoder layer; `count` > 1 for the experts of a MoE layer."""

    name: str
    in_features: int
    out_features: int
    bias: bool = False
    count: int = 1
    group: str = "attention"  # attention | mlp | expert | router
    # True: an nn.Linear (or GPT-2's transformers Conv1D) module, which bitsandbytes quantizes and peft's
    # "all-linear" wraps. False: a raw nn.Parameter applied with F.linear (transformers 5 MoE experts and
    # routers, see ModelSpec.experts_fused): neither quantized nor wrapped.
    module: bool = True

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features * self.count

    @property
    def bias_params(self) -> int:
        return self.out_features * self.count if self.bias else 0


@dataclass(frozen=True)
class ParamCounts:
    total: int
    embedding: int  # token (and learned position) embeddings
    lm_head: int  # 0 when tied to the embedding
    linear: int  # weights of the linear layers in all decoder layers (quantizable by bitsandbytes)
    linear_bias: int
    norm: int
    active: int  # per token: for MoE only the routed experts count
    raw_linear: int = 0  # linear-like weights that are raw nn.Parameters (fused MoE experts and router): not quantized

    # total == embedding + lm_head + linear + linear_bias + norm + raw_linear

    @property
    def non_linear(self) -> int:
        """Parameters that QLoRA leaves in the compute dtype (embeddings, head, norms, biases)."""
        return self.total - self.linear


# Module names as transformers 5 spells them (LoRA target_modules match them), per family where they differ.
_GPT2 = {"qkv": "c_attn", "o": "c_proj", "fc_in": "c_fc", "fc_out": "c_proj"}
_DEFAULT = {"qkv": "qkv_proj", "o": "o_proj", "fc_in": "fc1", "fc_out": "fc2"}


def _names(m: ModelSpec) -> dict[str, str]:
    return _GPT2 if m.model_type == "gpt2" else _DEFAULT


def attention_linears(m: ModelSpec) -> list[Linear]:
    q, kv, h = m.q_width, m.kv_width, m.hidden_size
    n = _names(m)
    if m.fused_qkv:
        proj = [Linear(n["qkv"], h, q + 2 * kv, m.qkv_bias)]
    else:
        proj = [Linear("q_proj", h, q, m.qkv_bias), Linear("k_proj", h, kv, m.qkv_bias), Linear("v_proj", h, kv, m.qkv_bias)]
    return proj + [Linear(n["o"], q, h, m.o_bias)]


def _gated(h: int, inter: int, bias: bool, count: int, group: str, fused: bool, module: bool = True) -> list[Linear]:
    if fused:
        return [
            Linear("gate_up_proj", h, 2 * inter, bias, count, group, module),
            Linear("down_proj", inter, h, bias, count, group, module),
        ]
    return [
        Linear("gate_proj", h, inter, bias, count, group, module),
        Linear("up_proj", h, inter, bias, count, group, module),
        Linear("down_proj", inter, h, bias, count, group, module),
    ]


def mlp_linears(m: ModelSpec, experts: int | None = None) -> list[Linear]:
    """The MLP of one layer; `experts` overrides the expert count (top-k for active parameters)."""
    h = m.hidden_size
    if not m.is_moe:
        if not m.gated_mlp:
            n = _names(m)
            return [
                Linear(n["fc_in"], h, m.intermediate_size, m.mlp_bias, 1, "mlp"),
                Linear(n["fc_out"], m.intermediate_size, h, m.mlp_bias, 1, "mlp"),
            ]
        return _gated(h, m.intermediate_size, m.mlp_bias, 1, "mlp", m.fused_gate_up)
    n = m.num_experts if experts is None else experts
    fused = m.experts_fused  # transformers 5: experts.gate_up_proj / experts.down_proj and gate.weight are raw parameters
    layers = [Linear("gate", h, m.num_experts, False, 1, "router", not fused)]
    layers += _gated(h, m.expert_intermediate, m.mlp_bias, n, "expert", m.fused_gate_up or fused, not fused)
    if m.shared_expert_intermediate_size:  # Qwen2-MoE: mlp.shared_expert.{gate,up,down}_proj + shared_expert_gate
        layers += _gated(h, m.shared_expert_intermediate_size, False, 1, "mlp", False)
        layers.append(Linear("shared_expert_gate", h, 1, False, 1, "router"))
    return layers


def layer_linears(m: ModelSpec, experts: int | None = None) -> list[Linear]:
    return attention_linears(m) + mlp_linears(m, experts)


def _norm_params(m: ModelSpec, width: int) -> int:
    return width * (2 if m.norm == "layer" else 1)


def _layer_norm_params(m: ModelSpec) -> int:
    n = m.norms_per_layer * _norm_params(m, m.hidden_size)
    if m.qk_norm == "head":  # Qwen3, Gemma 3: one RMSNorm(head_dim) each for q and k, shared by all heads
        n += 2 * _norm_params(m, m.head_size)
    elif m.qk_norm == "full":  # OLMo 2: RMSNorm over the whole q (heads x head_dim) and k (kv heads x head_dim)
        n += _norm_params(m, m.q_width) + _norm_params(m, m.kv_width)
    return n


def count_params(m: ModelSpec) -> ParamCounts:
    h, L = m.hidden_size, m.num_layers
    embedding = m.vocab_size * h + (m.max_positions * h if m.learned_positions else 0)
    lm_head = 0 if m.tie_embeddings else m.vocab_size * h
    linears = layer_linears(m)
    linear = L * sum(x.weight_params for x in linears if x.module)
    raw_linear = L * sum(x.weight_params for x in linears if not x.module)
    linear_bias = L * sum(x.bias_params for x in linears)
    norm = L * _layer_norm_params(m) + (_norm_params(m, h) if m.final_norm else 0)
    total = embedding + lm_head + linear + raw_linear + linear_bias + norm
    active = total
    if m.is_moe:
        routed = layer_linears(m, m.experts_per_token)
        active = total - L * sum(x.weight_params + x.bias_params for x in linears) + L * sum(
            x.weight_params + x.bias_params for x in routed
        )
    return ParamCounts(total, embedding, lm_head, linear, linear_bias, norm, active, raw_linear)
