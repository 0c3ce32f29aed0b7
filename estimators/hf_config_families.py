"""config.json quirks of single families, read by estimators/hf_config.py: the key aliases of GPT-2's and Falcon's
config classes, Falcon's norm and attention layouts (both directions), and an encoder's token types and labels. Here so
that the mapping itself stays one page."""

from __future__ import annotations

from .errors import EstimateError
from .model import ModelSpec

GPT2_ALIASES = {
    "n_embd": "hidden_size",
    "n_layer": "num_hidden_layers",
    "n_head": "num_attention_heads",
    "n_positions": "max_position_embeddings",
}  # GPT2Config.attribute_map

# FalconConfig.__post_init__ still accepts the first checkpoints' `n_embed`; transformers 5 ignores their other
# old names (n_layer, n_head, n_head_kv), and so does this mapping.
FALCON_ALIASES = {"n_embed": "hidden_size"}


def falcon_layout(new_arch: bool, parallel: bool, num_ln) -> dict:
    """FalconDecoderLayer's norms: without parallel attention input_layernorm and post_attention_layernorm; with it
    ln_attn and ln_mlp when num_ln_in_parallel_attn is 2 (its default for the new decoder architecture: 40B,
    180B), else one input_layernorm feeding both (7B, Falcon 2 11B). Attention and MLP are added to the residual
    together under either flag."""
    if not parallel:
        norms = 2
    else:
        norms = 2 if (num_ln if num_ln is not None else (2 if new_arch else 1)) == 2 else 1
    return {"norms_per_layer": norms, "parallel_block": new_arch or parallel}


def encoder_values(config: dict, get, pos_int) -> dict:
    """An encoder's token types and classifier width: PretrainedConfig takes `num_labels`, or as many labels as
    `id2label` names (what a fine-tuned checkpoint's config.json stores), else 2."""
    labels = config.get("num_labels") or len(config.get("id2label") or {}) or 2
    return {"token_types": pos_int("type_vocab_size", get("type_vocab_size")), "num_labels": pos_int("num_labels", labels)}


def falcon_config(spec: ModelSpec) -> dict:
    """FalconConfig keys for `spec`: the old architecture when one of its two layouts fits (multi-query or full
    attention, parallel or sequential), else the new decoder architecture (grouped kv heads, 1 or 2 norms)."""
    new = spec.num_kv_heads not in (1, spec.num_heads) or (spec.parallel_block and spec.norms_per_layer == 2)
    c = {
        "hidden_size": spec.hidden_size,
        "ffn_hidden_size": spec.intermediate_size,
        "num_hidden_layers": spec.num_layers,
        "num_attention_heads": spec.num_heads,
        "num_kv_heads": spec.num_kv_heads,
        "vocab_size": spec.vocab_size,
        "max_position_embeddings": spec.max_positions,
        "tie_word_embeddings": spec.tie_embeddings,
        "new_decoder_architecture": new,
        "alibi": False,
        "parallel_attn": spec.parallel_block,
        "multi_query": not new and spec.num_kv_heads == 1,
    }
    if new:
        c["num_ln_in_parallel_attn"] = spec.norms_per_layer
    if spec.qkv_bias != spec.o_bias or spec.o_bias != spec.mlp_bias:
        raise EstimateError(f"{spec.name}: falcon has one `bias` switch for every linear; the spec's biases differ")
    return c
