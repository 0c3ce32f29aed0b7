"""The model families the estimator has a table for: per transformers `model_type`, the *ForCausalLM class, the
ModelSpec switches its modeling code fixes, its config class's defaults and the config keys that set switches.
Read by the config.json mapping (estimators/hf_config.py) and the catalog (estimators/catalog.py). The MoE rows are
in estimators/families_moe.py, the types and constructors the rows are written with in estimators/family_types.py."""

from __future__ import annotations

from .families_encoder import ENCODER_FAMILIES
from .families_moe import MOE_FAMILIES
from .family_types import ALL_BIASES, FUSED_LN_FC, LN_FC, Family, Flag, dropout, family, switch

_PHI_SWITCHES = {**LN_FC, "norms_per_layer": 1, "parallel_block": True, "qkv_bias": True, "o_bias": True, "mlp_bias": True, "lm_head_bias": True}

# `num_key_value_heads: None` means "same as num_attention_heads", `head_dim: None` means hidden // heads: that is
# what the config classes do. Other values are the class defaults (e.g. Qwen2Config's 32 kv heads).
FAMILIES: dict[str, Family] = {
    "llama": family(
        "LlamaForCausalLM",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
    ),
    "mistral": family(
        "MistralForCausalLM", num_key_value_heads=8, head_dim=None, max_position_embeddings=131072, tie_word_embeddings=False, sliding_window=4096
    ),
    "qwen2": family(
        "Qwen2ForCausalLM",
        {"qkv_bias": True},
        num_key_value_heads=32,
        head_dim=None,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        use_sliding_window=False,
        sliding_window=None,
    ),
    "qwen3": family(
        "Qwen3ForCausalLM",
        {"qk_norm": "head"},
        num_key_value_heads=32,
        head_dim=128,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        attention_bias=False,
        use_sliding_window=False,
        sliding_window=None,
    ),
    "gemma": family(
        "GemmaForCausalLM", num_key_value_heads=16, head_dim=256, max_position_embeddings=8192, tie_word_embeddings=True, attention_bias=False
    ),
    "gemma2": family(
        "Gemma2ForCausalLM",
        {"norms_per_layer": 4},
        num_key_value_heads=4,
        head_dim=256,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        attention_bias=False,
        sliding_window=4096,
        final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0,
    ),
    "gemma3_text": family(
        "Gemma3ForCausalLM",
        {"norms_per_layer": 4, "qk_norm": "head"},
        num_key_value_heads=4,
        head_dim=256,
        max_position_embeddings=131072,
        tie_word_embeddings=True,
        attention_bias=False,
        sliding_window=4096,
        final_logit_softcapping=None,
        attn_logit_softcapping=None,
    ),
    "phi3": family(
        "Phi3ForCausalLM",
        {"fused_qkv": True, "fused_gate_up": True},
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        sliding_window=None,
    ),
    "olmo2": family(
        "Olmo2ForCausalLM",
        {"qk_norm": "full"},
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=False,
    ),
    "gpt2": family(
        "GPT2LMHeadModel",
        {"gated_mlp": False, "qkv_bias": True, "o_bias": True, "mlp_bias": True, "norm": "layer", "learned_positions": True, "fused_qkv": True},
        "gpt2",
        {"resid_pdrop": dropout("resid_dropout"), "embd_pdrop": dropout("embed_dropout"), "attn_pdrop": dropout("attn_dropout")},
        act_key="activation_function",
        n_positions=1024,
        n_inner=None,
        tie_word_embeddings=True,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        attn_pdrop=0.1,
        activation_function="gelu_new",
    ),
    # ---- issue 15: the families below were read from transformers 5.24's modeling_*.py / configuration_*.py
    # Phi 1 / 1.5 / 2: one LayerNorm feeding attention and MLP in parallel, biases everywhere (lm_head too),
    # partial rotary (no parameters), gelu_new MLP; resid_pdrop is 0.1 in Phi-2's config.
    "phi": family(
        "PhiForCausalLM",
        _PHI_SWITCHES,
        flags={"qk_layernorm": switch("qk_norm", "head", ""), "resid_pdrop": dropout("resid_dropout"), "embd_pdrop": dropout("embed_dropout")},
        act_key="hidden_act",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        qk_layernorm=False,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        hidden_act="gelu_new",
    ),
    # GPT-NeoX (Pythia, StableLM-alpha, GPT-NeoX-20B): fused query_key_value (3 x hidden, no GQA), two LayerNorms
    # per layer also under the parallel residual, MLP biases always, gelu.
    "gpt_neox": family(
        "GPTNeoXForCausalLM",
        {**FUSED_LN_FC, "mlp_bias": True},
        flags={"use_parallel_residual": switch("parallel_block"), "hidden_dropout": dropout("resid_dropout")},
        act_key="hidden_act",
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=True,
        use_parallel_residual=True,
        hidden_dropout=0.0,
        hidden_act="gelu",
    ),
    # Falcon: fused query_key_value (multi-query for 7B, grouped for the new decoder architecture of 40B/180B), one
    # `bias` switch for every linear, parallel attention; see hf_config_families.falcon_layout for the norms and kv heads.
    "falcon": family(
        "FalconForCausalLM",
        FUSED_LN_FC,
        flags={"bias": ALL_BIASES, "hidden_dropout": dropout("resid_dropout")},
        required=("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"),
        act_key="activation",
        activation="gelu",
        num_kv_heads=None,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bias=False,
        parallel_attn=True,
        new_decoder_architecture=False,
        multi_query=True,
        num_ln_in_parallel_attn=None,
        ffn_hidden_size=None,
        hidden_dropout=0.0,
    ),
    # StableLM 2 / StableLM-3B-4E1T: LayerNorm with bias, gated SiLU MLP, q/k/v bias switch, optional per-head
    # q/k LayerNorms and parallel residual (StableLM 2 12B).
    "stablelm": family(
        "StableLmForCausalLM",
        {"norm": "layer"},
        flags={
            "use_qkv_bias": switch("qkv_bias"),
            "qk_layernorm": switch("qk_norm", "per_head", ""),
            "use_parallel_residual": Flag({"parallel_block": True, "norms_per_layer": 1}, {"parallel_block": False, "norms_per_layer": 2}),
            "hidden_dropout": dropout("resid_dropout"),
        },
        num_key_value_heads=32,
        head_dim=None,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        use_qkv_bias=False,
        qk_layernorm=False,
        use_parallel_residual=False,
        hidden_dropout=0.0,
    ),
    # OLMo (1): LayerNorm without parameters, Llama-style otherwise.
    "olmo": family(
        "OlmoForCausalLM",
        {"norm": "none"},
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=False,
    ),
    # Cohere (Command R, Aya): one weight-only LayerNorm feeding attention and MLP in parallel, tied head.
    "cohere": family(
        "CohereForCausalLM",
        {"norm": "layer_nobias", "norms_per_layer": 1, "parallel_block": True},
        flags={"use_qk_norm": switch("qk_norm", "per_head", "")},
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        attention_bias=False,
        use_qk_norm=False,
    ),
    # StarCoder 2: LayerNorm with bias, `use_bias` on every linear, c_fc / c_proj MLP with gelu (tanh), GQA.
    "starcoder2": family(
        "Starcoder2ForCausalLM",
        LN_FC,
        flags={"use_bias": ALL_BIASES, "residual_dropout": dropout("resid_dropout"), "embedding_dropout": dropout("embed_dropout")},
        act_key="hidden_act",
        hidden_act="gelu_pytorch_tanh",
        num_key_value_heads=2,
        head_dim=None,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        use_bias=True,
        residual_dropout=0.0,
        embedding_dropout=0.0,
        sliding_window=None,
    ),
    # Granite 3.x / PowerLM: Llama's layout plus scalar multipliers (no parameters).
    "granite": family(
        "GraniteForCausalLM",
        num_key_value_heads=None,
        head_dim=None,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
    ),
    # SantaCoder / StarCoder 1: GPT-2's layout with multi-query attention (c_attn = h + 2 head_dim), nn.Linear
    # modules (not Conv1D), gelu (tanh).
    "gpt_bigcode": family(
        "GPTBigCodeForCausalLM",
        {"gated_mlp": False, "qkv_bias": True, "o_bias": True, "mlp_bias": True, "norm": "layer", "learned_positions": True, "fused_qkv": True},
        "gpt2",
        {"resid_pdrop": dropout("resid_dropout"), "embd_pdrop": dropout("embed_dropout"), "attn_pdrop": dropout("attn_dropout")},
        act_key="activation_function",
        activation_function="gelu_pytorch_tanh",
        n_positions=1024,
        n_inner=None,
        tie_word_embeddings=True,
        resid_pdrop=0.1,
        embd_pdrop=0.1,
        attn_pdrop=0.1,
        multi_query=True,
    ),
    **MOE_FAMILIES,
    **ENCODER_FAMILIES,
}


def flag_defaults(fam: Family) -> dict:
    """The ModelSpec fields a family's flags (and activation key) give when the config leaves them at the class
    defaults."""
    out: dict = {}
    for key, flag in fam.flags.items():
        out.update(flag.on if fam.defaults.get(key) else flag.off)
    if fam.act_key:
        out["mlp_act"] = fam.defaults[fam.act_key]
    return out


# Gemma 3 multimodal checkpoints (model_type "gemma3") nest the decoder under "text_config" and rely on
# Gemma3TextConfig's defaults for most numbers (the 4B text_config names only 5 keys).
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26, "num_attention_heads": 8}
