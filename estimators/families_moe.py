"""The MoE rows of the family table (merged into estimators/families.py FAMILIES) and MOE_KEYS, the config.json keys
holding their expert count and width (read by estimators/hf_config.py): the expert keys next to the rows that need
them, and the dense table under ~300 lines. Mixtral and the Qwen MoEs were in the first table; Granite MoE and OLMoE
came with issue 15, read from transformers 5.24's modeling_*.py / configuration_*.py."""

from __future__ import annotations

from .family_types import Family, family

# As in estimators/families.py: `num_key_value_heads: None` means "same as num_attention_heads", `head_dim: None`
# means hidden // heads (what the config classes do); other values are the config-class defaults.
MOE_FAMILIES: dict[str, Family] = {
    "mixtral": family(
        "MixtralForCausalLM",
        {"experts_fused": True},
        "moe",
        num_key_value_heads=8,
        head_dim=None,
        max_position_embeddings=131072,
        tie_word_embeddings=False,
        sliding_window=None,
    ),
    "qwen2_moe": family(
        "Qwen2MoeForCausalLM",
        {"experts_fused": True},
        "moe",
        num_key_value_heads=16,
        head_dim=None,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        use_sliding_window=False,
        sliding_window=None,
        qkv_bias=True,
        shared_expert_intermediate_size=0,
    ),
    "qwen3_moe": family(
        "Qwen3MoeForCausalLM",
        {"qk_norm": "head", "experts_fused": True},
        "moe",
        num_key_value_heads=4,
        head_dim=None,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        attention_bias=False,
        use_sliding_window=False,
        sliding_window=None,
    ),
    # Granite MoE (granite-3.0-1b-a400m / 3b-a800m, PowerMoE): transformers 5 stacks the experts as raw
    # parameters and the router (block_sparse_moe.router) is a raw [E, h] weight.
    "granitemoe": family(
        "GraniteMoeForCausalLM",
        {"experts_fused": True},
        "moe",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=False,
    ),
    # OLMoE: OLMo 2's full-width q/k RMSNorms over a 64-expert MoE, experts stacked as raw parameters.
    "olmoe": family(
        "OlmoeForCausalLM",
        {"qk_norm": "full", "experts_fused": True},
        "moe",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        attention_bias=False,
    ),
}

# MoE families: the config key holding the expert count, and the one holding one expert's width (None: the
# config's intermediate_size is the expert width, as in Mixtral).
MOE_KEYS = {
    "mixtral": ("num_local_experts", None),
    "granitemoe": ("num_local_experts", None),
    "olmoe": ("num_experts", None),
    "qwen2_moe": ("num_experts", "moe_intermediate_size"),
    "qwen3_moe": ("num_experts", "moe_intermediate_size"),
}
