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
    lm_head: int  # 0 when tied to the embedding (its bias, Phi's, counts here); an encoder's classification head
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


# Module names as transformers 5 spells them (LoRA target_modules match them), per family where they differ from
# the Llama-style default: q/k/v projections (or one fused "qkv"), the attention output "o", the non-gated MLP's
# "fc_in"/"fc_out", the MoE router, the attention block's own attribute "attn" (peft matches a target against the
# end of a module's path, so "attn.c_proj" names GPT-2's attention output and not its MLP's c_proj), and the token
# embedding "embed" and output head "head" that peft's modules_to_save copies. Read from each family's modeling_*.py.
_DEFAULT = {
    "q": "q_proj",
    "k": "k_proj",
    "v": "v_proj",
    "qkv": "qkv_proj",
    "o": "o_proj",
    "fc_in": "fc1",
    "fc_out": "fc2",
    "router": "gate",
    "attn": "self_attn",
    "embed": "embed_tokens",
    "head": "lm_head",
}
_GPT2 = {**_DEFAULT, "qkv": "c_attn", "o": "c_proj", "fc_in": "c_fc", "fc_out": "c_proj", "attn": "attn", "embed": "wte"}
# GPT-NeoX: transformers 5 renames the head embed_out -> lm_head when loading (conversion_mapping.py)
_NEOX = {
    **_DEFAULT,
    "qkv": "query_key_value",
    "o": "dense",
    "fc_in": "dense_h_to_4h",
    "fc_out": "dense_4h_to_h",
    "attn": "attention",
    "embed": "embed_in",
}
# BERT / RoBERTa: attention.self.{query,key,value}, attention.output.dense, intermediate.dense, output.dense. The three
# "dense" linears share a leaf name, so a bare "dense" target wraps them all (and the pooler's, outside the layers);
# "attention.output.dense" names the attention's alone. The head peft's SEQ_CLS task trains in full is `classifier`.
_ENCODER = {
    **_DEFAULT,
    "q": "query",
    "k": "key",
    "v": "value",
    "o": "dense",
    "fc_in": "dense",
    "fc_out": "dense",
    "attn": "attention.output",
    "embed": "word_embeddings",
    "head": "classifier",
}
LINEAR_NAMES: dict[str, dict[str, str]] = {
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "gpt2": _GPT2,
    "gpt_bigcode": _GPT2,
    "gpt_neox": _NEOX,
    "falcon": {**_NEOX, "attn": "self_attention", "embed": "word_embeddings"},
    "phi": {**_DEFAULT, "o": "dense"},  # q_proj, k_proj, v_proj, dense, fc1, fc2
    "starcoder2": {**_DEFAULT, "fc_in": "c_fc", "fc_out": "c_proj"},
    "granitemoe": {**_DEFAULT, "router": "router"},  # block_sparse_moe.router
}
# Leaf names of a query / value projection in families a meta-device census found (no table above).
QUERY_NAMES = ("q_proj", "query", "wq", "q")
VALUE_NAMES = ("v_proj", "value", "wv", "v")


def linear_names(m: ModelSpec) -> dict[str, str]:
    """The module names of `m`'s family; a meta-device census carries its own embedding, head and attention names."""
    names = LINEAR_NAMES.get(m.model_type, _DEFAULT)
    census = m.extra.get("census") if isinstance(m.extra, dict) else None
    return names | census["names"] if census and census.get("names") else names


_names = linear_names


def attention_linears(m: ModelSpec) -> list[Linear]:
    census = _census(m)
    if census is not None:
        return [x for x in census if x.group == "attention"]
    q, kv, h = m.q_width, m.kv_width, m.hidden_size
    n = _names(m)
    if m.fused_qkv:
        proj = [Linear(n["qkv"], h, q + 2 * kv, m.qkv_bias)]
    else:
        proj = [Linear(n["q"], h, q, m.qkv_bias), Linear(n["k"], h, kv, m.qkv_bias), Linear(n["v"], h, kv, m.qkv_bias)]
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
    census = _census(m)
    if census is not None:
        return [x for x in census if x.group != "attention"]
    h = m.hidden_size
    if not m.is_moe:
        if not m.gated_mlp:
            names = _names(m)
            return [
                Linear(names["fc_in"], h, m.intermediate_size, m.mlp_bias, 1, "mlp"),
                Linear(names["fc_out"], m.intermediate_size, h, m.mlp_bias, 1, "mlp"),
            ]
        return _gated(h, m.intermediate_size, m.mlp_bias, 1, "mlp", m.fused_gate_up)
    n = m.num_experts if experts is None else experts
    fused = m.experts_fused  # transformers 5: experts.gate_up_proj / experts.down_proj and gate.weight are raw parameters
    layers = [Linear(_names(m)["router"], h, m.num_experts, False, 1, "router", not fused)]
    layers += _gated(h, m.expert_intermediate, m.mlp_bias, n, "expert", m.fused_gate_up or fused, not fused)
    if m.shared_expert_intermediate_size:  # Qwen2-MoE: mlp.shared_expert.{gate,up,down}_proj + shared_expert_gate
        layers += _gated(h, m.shared_expert_intermediate_size, False, 1, "mlp", False)
        layers.append(Linear("shared_expert_gate", h, 1, False, 1, "router"))
    return layers


def layer_linears(m: ModelSpec, experts: int | None = None) -> list[Linear]:
    return attention_linears(m) + mlp_linears(m, experts)


# ---------------------------------------------------------------------------------------------- LoRA presets by role
def query_value_targets(m: ModelSpec) -> tuple[str, ...]:
    """peft target names of the query and value projections (the "qv" preset); () when `m` has none that can be told
    apart. A fused q/k/v projection is one module, so it is that module: peft then adapts the whole fused matrix."""
    attn = [x for x in attention_linears(m) if x.module]
    if m.fused_qkv:
        fused = [x.name for x in attn if x.in_features == m.hidden_size and x.out_features == m.q_width + 2 * m.kv_width]
        return tuple(fused[:1])
    names = [x.name for x in attn]
    q = next((n for n in QUERY_NAMES if n in names), None)
    v = next((n for n in VALUE_NAMES if n in names), None)
    return (q, v) if q and v else ()


def attention_targets(m: ModelSpec) -> tuple[str, ...]:
    """peft target names of every attention linear (the "attention" preset). A name an MLP linear shares (GPT-2's
    c_proj) is qualified by the attention block's attribute ("attn.c_proj"), so the MLP's stays frozen."""
    mlp = {x.name for x in mlp_linears(m)}
    scope = linear_names(m)["attn"]
    return tuple(dict.fromkeys(f"{scope}.{x.name}" if x.name in mlp else x.name for x in attention_linears(m) if x.module))


def targets_linear(m: ModelSpec, target: str, lin: Linear) -> bool:
    """Whether peft's target name `target` wraps `lin`: peft matches it against the end of a module's path, so a bare
    name wraps every linear of that name and "attn.c_proj" only the attention block's."""
    scope, _, leaf = target.rpartition(".")
    return leaf == lin.name and (not scope or (lin.group == "attention" and scope == linear_names(m)["attn"]))


def embedding_modules(m: ModelSpec) -> dict[str, str]:
    """modules_to_save role -> the module name in `m`'s family: the token embedding ("embed_tokens" in Llama's
    spelling, GPT-2's wte, GPT-NeoX's embed_in, Falcon's word_embeddings) and the output head ("lm_head")."""
    n = linear_names(m)
    return {"embed_tokens": n["embed"], "lm_head": n["head"]}


def _norm_params(m: ModelSpec, width: int) -> int:
    return width * m.norm_params_per_width


def _qk_norm_params(m: ModelSpec) -> int:
    """The q and k norms of one layer."""
    if m.qk_norm == "head":  # Qwen3, Gemma 3, Phi: one norm over head_dim each for q and k, shared by all heads
        return 2 * _norm_params(m, m.head_size)
    if m.qk_norm == "full":  # OLMo 2: RMSNorm over the whole q (heads x head_dim) and k (kv heads x head_dim)
        return _norm_params(m, m.q_width) + _norm_params(m, m.kv_width)
    if m.qk_norm == "per_head":  # StableLM / Cohere: a weight-only LayerNorm(head_dim) per q and per kv head
        return m.q_width + m.kv_width
    return 0


def _layer_norm_params(m: ModelSpec) -> int:
    return m.norms_per_layer * _norm_params(m, m.hidden_size) + _qk_norm_params(m)


def encoder_head_params(m: ModelSpec) -> int:
    """An encoder's sequence-classification head, in the head slot of ParamCounts: BERT's pooler Linear(h, h) and
    classifier Linear(h, num_labels), RoBERTa's RobertaClassificationHead dense Linear(h, h) and out_proj
    Linear(h, num_labels); both with biases."""
    h = m.hidden_size
    return h * h + h + h * m.num_labels + m.num_labels


def count_params(m: ModelSpec) -> ParamCounts:
    census = m.extra.get("census") if isinstance(m.extra, dict) else None
    if census is not None:  # a meta-device build (advisor.measure.census): its counts, exactly
        return ParamCounts(**census["counts"])
    h, L = m.hidden_size, m.num_layers
    embedding = (m.vocab_size + (m.max_positions if m.learned_positions else 0) + m.token_types) * h
    lm_head = encoder_head_params(m) if m.encoder else (0 if m.tie_embeddings else m.vocab_size * h) + (m.vocab_size if m.lm_head_bias else 0)
    linears = layer_linears(m)
    linear = L * sum(x.weight_params for x in linears if x.module)
    raw_linear = L * sum(x.weight_params for x in linears if not x.module)
    linear_bias = L * sum(x.bias_params for x in linears)
    norm = L * _layer_norm_params(m) + (_norm_params(m, h) if m.final_norm else 0)
    total = embedding + lm_head + linear + raw_linear + linear_bias + norm
    active = total
    if m.is_moe:
        routed = layer_linears(m, m.experts_per_token)
        active = total - L * sum(x.weight_params + x.bias_params for x in linears) + L * sum(x.weight_params + x.bias_params for x in routed)
    return ParamCounts(total, embedding, lm_head, linear, linear_bias, norm, active, raw_linear)


def _census(m: ModelSpec) -> list[Linear] | None:
    """The per-layer linears a meta-device build found (a model family with no table here), else None."""
    census = m.extra.get("census") if isinstance(m.extra, dict) else None
    if census is None:
        return None
    return [Linear(**x) for x in census["linears"]]
