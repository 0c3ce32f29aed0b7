"""Which model the user means: the offline catalog (rules/models.toml), size shorthands, local config.json files
and the local Hugging Face cache, turned into a `ModelSpec`. Standard library only; never touches the network.

    resolve_model("7b")                      -> Llama 2 7B from the catalog
    resolve_model("Qwen/Qwen2.5-7B-Instruct") -> catalog (alias of qwen2.5-7b)
    resolve_model("./my-model")              -> that directory's config.json
    resolve_model("org/name")                -> config.json of a snapshot in the local Hugging Face cache

`spec_from_hf_config` maps a config.json dict to a ModelSpec the way transformers 5 reads it (class defaults for
absent keys included); `hf_config_from_spec` is its inverse, used to build a model from a catalog row.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

from .errors import EstimateError
from .config_checks import check_config, check_model_text, parse_config_text
from .model import ModelSpec

CATALOG_PATH = Path(__file__).resolve().parent.parent / "rules" / "models.toml"


# ------------------------------------------------------------------------------------------------ families
@dataclass(frozen=True)
class Flag:
    """A config.json key that sets ModelSpec fields: `on` when its value is truthy (a dropout > 0, a True switch),
    `off` otherwise. `written` is what hf_config_from_spec writes for on / off (0.1 for a dropout probability:
    any p > 0 keeps the same masks)."""

    on: dict
    off: dict
    written: tuple = (True, False)


def _switch(field_: str, on=True, off=False) -> Flag:
    return Flag({field_: on}, {field_: off})


def _dropout(field_: str) -> Flag:
    return Flag({field_: True}, {field_: False}, (0.1, 0.0))


_ALL_BIASES = Flag({"qkv_bias": True, "o_bias": True, "mlp_bias": True}, {"qkv_bias": False, "o_bias": False, "mlp_bias": False})


@dataclass(frozen=True)
class Family:
    arch: str  # the *ForCausalLM class transformers builds for the model_type
    switches: dict  # ModelSpec fields the modeling code fixes for every model of the family
    defaults: dict  # transformers 5.24 config-class defaults for keys a config.json may omit
    kind: str = "dense"  # dense | moe | gpt2 (GPT-2's n_embd / n_layer / n_head keys)
    flags: dict = field(default_factory=dict)  # config key -> Flag
    required: tuple = ()  # config keys this family needs, when not its kind's (Falcon has no intermediate_size)
    act_key: str = ""  # non-gated MLPs: the config key naming the activation (ModelSpec.mlp_act)


def _F(arch: str, switches: dict | None = None, kind: str = "dense", flags: dict | None = None,
       required: tuple = (), act_key: str = "", **defaults) -> Family:
    return Family(arch, switches or {}, defaults, kind, flags or {}, required, act_key)


# Non-gated MLP, LayerNorm with bias: the GPT-2 / GPT-NeoX layout.
_LN_FC = {"norm": "layer", "gated_mlp": False}
_FUSED_LN_FC = {**_LN_FC, "fused_qkv": True}
_PHI_SWITCHES = {**_LN_FC, "norms_per_layer": 1, "parallel_block": True, "qkv_bias": True, "o_bias": True,
                 "mlp_bias": True, "lm_head_bias": True}

# `num_key_value_heads: None` means "same as num_attention_heads", `head_dim: None` means hidden // heads: that is
# what the config classes do. Other values are the class defaults (e.g. Qwen2Config's 32 kv heads).
FAMILIES: dict[str, Family] = {
    "llama": _F("LlamaForCausalLM", num_key_value_heads=None, head_dim=None, max_position_embeddings=2048,
                tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    "mistral": _F("MistralForCausalLM", num_key_value_heads=8, head_dim=None, max_position_embeddings=131072,
                  tie_word_embeddings=False, sliding_window=4096),
    "mixtral": _F("MixtralForCausalLM", {"experts_fused": True}, "moe", num_key_value_heads=8, head_dim=None,
                  max_position_embeddings=131072, tie_word_embeddings=False, sliding_window=None),
    "qwen2": _F("Qwen2ForCausalLM", {"qkv_bias": True}, num_key_value_heads=32, head_dim=None,
                max_position_embeddings=32768, tie_word_embeddings=False, use_sliding_window=False, sliding_window=None),
    "qwen2_moe": _F("Qwen2MoeForCausalLM", {"experts_fused": True}, "moe", num_key_value_heads=16, head_dim=None,
                    max_position_embeddings=32768, tie_word_embeddings=False, use_sliding_window=False,
                    sliding_window=None, qkv_bias=True, shared_expert_intermediate_size=0),
    "qwen3": _F("Qwen3ForCausalLM", {"qk_norm": "head"}, num_key_value_heads=32, head_dim=128,
                max_position_embeddings=32768, tie_word_embeddings=False, attention_bias=False,
                use_sliding_window=False, sliding_window=None),
    "qwen3_moe": _F("Qwen3MoeForCausalLM", {"qk_norm": "head", "experts_fused": True}, "moe", num_key_value_heads=4,
                    head_dim=None, max_position_embeddings=32768, tie_word_embeddings=False, attention_bias=False,
                    use_sliding_window=False, sliding_window=None),
    "gemma": _F("GemmaForCausalLM", num_key_value_heads=16, head_dim=256, max_position_embeddings=8192,
                tie_word_embeddings=True, attention_bias=False),
    "gemma2": _F("Gemma2ForCausalLM", {"norms_per_layer": 4}, num_key_value_heads=4, head_dim=256,
                 max_position_embeddings=8192, tie_word_embeddings=True, attention_bias=False, sliding_window=4096,
                 final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
    "gemma3_text": _F("Gemma3ForCausalLM", {"norms_per_layer": 4, "qk_norm": "head"}, num_key_value_heads=4,
                      head_dim=256, max_position_embeddings=131072, tie_word_embeddings=True, attention_bias=False,
                      sliding_window=4096, final_logit_softcapping=None, attn_logit_softcapping=None),
    "phi3": _F("Phi3ForCausalLM", {"fused_qkv": True, "fused_gate_up": True}, num_key_value_heads=None, head_dim=None,
               max_position_embeddings=4096, tie_word_embeddings=False, sliding_window=None),
    "olmo2": _F("Olmo2ForCausalLM", {"qk_norm": "full"}, num_key_value_heads=None, head_dim=None,
                max_position_embeddings=2048, tie_word_embeddings=False, attention_bias=False),
    "gpt2": _F("GPT2LMHeadModel", {"gated_mlp": False, "qkv_bias": True, "o_bias": True, "mlp_bias": True,
                                   "norm": "layer", "learned_positions": True, "fused_qkv": True}, "gpt2",
               {"resid_pdrop": _dropout("resid_dropout"), "embd_pdrop": _dropout("embed_dropout")},
               act_key="activation_function", n_positions=1024, n_inner=None, tie_word_embeddings=True,
               resid_pdrop=0.1, embd_pdrop=0.1, activation_function="gelu_new"),
    # ---- issue 15: the families below were read from transformers 5.24's modeling_*.py / configuration_*.py
    # Phi 1 / 1.5 / 2: one LayerNorm feeding attention and MLP in parallel, biases everywhere (lm_head too),
    # partial rotary (no parameters), gelu_new MLP; resid_pdrop is 0.1 in Phi-2's config.
    "phi": _F("PhiForCausalLM", _PHI_SWITCHES,
              flags={"qk_layernorm": _switch("qk_norm", "head", ""), "resid_pdrop": _dropout("resid_dropout"),
                     "embd_pdrop": _dropout("embed_dropout")}, act_key="hidden_act",
              num_key_value_heads=None, head_dim=None, max_position_embeddings=2048, tie_word_embeddings=False,
              qk_layernorm=False, resid_pdrop=0.0, embd_pdrop=0.0, hidden_act="gelu_new"),
    # GPT-NeoX (Pythia, StableLM-alpha, GPT-NeoX-20B): fused query_key_value (3 x hidden, no GQA), two LayerNorms
    # per layer also under the parallel residual, MLP biases always, gelu.
    "gpt_neox": _F("GPTNeoXForCausalLM", {**_FUSED_LN_FC, "mlp_bias": True},
                   flags={"use_parallel_residual": _switch("parallel_block"), "hidden_dropout": _dropout("resid_dropout")},
                   act_key="hidden_act", head_dim=None, max_position_embeddings=2048, tie_word_embeddings=False,
                   attention_bias=True, use_parallel_residual=True, hidden_dropout=0.0, hidden_act="gelu"),
    # Falcon: fused query_key_value (multi-query for 7B, grouped for the new decoder architecture of 40B/180B), one
    # `bias` switch for every linear, parallel attention; see _falcon_values for the norms and kv heads.
    "falcon": _F("FalconForCausalLM", _FUSED_LN_FC,
                 flags={"bias": _ALL_BIASES, "hidden_dropout": _dropout("resid_dropout")},
                 required=("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"),
                 act_key="activation", activation="gelu",
                 num_kv_heads=None, max_position_embeddings=2048, tie_word_embeddings=True, bias=False,
                 parallel_attn=True, new_decoder_architecture=False, multi_query=True, num_ln_in_parallel_attn=None,
                 ffn_hidden_size=None, hidden_dropout=0.0),
    # StableLM 2 / StableLM-3B-4E1T: LayerNorm with bias, gated SiLU MLP, q/k/v bias switch, optional per-head
    # q/k LayerNorms and parallel residual (StableLM 2 12B).
    "stablelm": _F("StableLmForCausalLM", {"norm": "layer"},
                   flags={"use_qkv_bias": _switch("qkv_bias"), "qk_layernorm": _switch("qk_norm", "per_head", ""),
                          "use_parallel_residual": Flag({"parallel_block": True, "norms_per_layer": 1},
                                                        {"parallel_block": False, "norms_per_layer": 2}),
                          "hidden_dropout": _dropout("resid_dropout")},
                   num_key_value_heads=32, head_dim=None, max_position_embeddings=4096, tie_word_embeddings=False,
                   use_qkv_bias=False, qk_layernorm=False, use_parallel_residual=False, hidden_dropout=0.0),
    # OLMo (1): LayerNorm without parameters, Llama-style otherwise.
    "olmo": _F("OlmoForCausalLM", {"norm": "none"}, num_key_value_heads=None, head_dim=None,
               max_position_embeddings=2048, tie_word_embeddings=False, attention_bias=False),
    # Cohere (Command R, Aya): one weight-only LayerNorm feeding attention and MLP in parallel, tied head.
    "cohere": _F("CohereForCausalLM", {"norm": "layer_nobias", "norms_per_layer": 1, "parallel_block": True},
                 flags={"use_qk_norm": _switch("qk_norm", "per_head", "")},
                 num_key_value_heads=None, head_dim=None, max_position_embeddings=8192, tie_word_embeddings=True,
                 attention_bias=False, use_qk_norm=False),
    # StarCoder 2: LayerNorm with bias, `use_bias` on every linear, c_fc / c_proj MLP with gelu (tanh), GQA.
    "starcoder2": _F("Starcoder2ForCausalLM", _LN_FC,
                     flags={"use_bias": _ALL_BIASES, "residual_dropout": _dropout("resid_dropout"),
                            "embedding_dropout": _dropout("embed_dropout")},
                     act_key="hidden_act", hidden_act="gelu_pytorch_tanh",
                     num_key_value_heads=2, head_dim=None, max_position_embeddings=4096, tie_word_embeddings=True,
                     use_bias=True, residual_dropout=0.0, embedding_dropout=0.0, sliding_window=None),
    # Granite 3.x / PowerLM: Llama's layout plus scalar multipliers (no parameters).
    "granite": _F("GraniteForCausalLM", num_key_value_heads=None, head_dim=None, max_position_embeddings=2048,
                  tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
    # SantaCoder / StarCoder 1: GPT-2's layout with multi-query attention (c_attn = h + 2 head_dim), nn.Linear
    # modules (not Conv1D), gelu (tanh).
    "gpt_bigcode": _F("GPTBigCodeForCausalLM", {"gated_mlp": False, "qkv_bias": True, "o_bias": True, "mlp_bias": True,
                                                "norm": "layer", "learned_positions": True, "fused_qkv": True},
                      "gpt2", {"resid_pdrop": _dropout("resid_dropout"), "embd_pdrop": _dropout("embed_dropout")},
                      act_key="activation_function", activation_function="gelu_pytorch_tanh",
                      n_positions=1024, n_inner=None, tie_word_embeddings=True, resid_pdrop=0.1, embd_pdrop=0.1,
                      multi_query=True),
    # Granite MoE (granite-3.0-1b-a400m / 3b-a800m, PowerMoE): transformers 5 stacks the experts as raw
    # parameters and the router (block_sparse_moe.router) is a raw [E, h] weight.
    "granitemoe": _F("GraniteMoeForCausalLM", {"experts_fused": True}, "moe", num_key_value_heads=None, head_dim=None,
                     max_position_embeddings=2048, tie_word_embeddings=False, attention_bias=False),
    # OLMoE: OLMo 2's full-width q/k RMSNorms over a 64-expert MoE, experts stacked as raw parameters.
    "olmoe": _F("OlmoeForCausalLM", {"qk_norm": "full", "experts_fused": True}, "moe", num_key_value_heads=None,
                head_dim=None, max_position_embeddings=4096, tie_word_embeddings=False, attention_bias=False),
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
GEMMA3_TEXT_DEFAULTS = {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                        "num_hidden_layers": 26, "num_attention_heads": 8}

# Keys spec_from_hf_config requires (transformers has defaults for them too, but a config.json without them is
# not a real checkpoint's: better to say so than to price a made-up model).
_REQUIRED = {
    "dense": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"),
    "moe": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size",
            "num_experts_per_tok"),
    "gpt2": ("n_embd", "n_layer", "n_head", "vocab_size"),
}
_GPT2_ALIASES = {"n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
                 "n_positions": "max_position_embeddings"}  # GPT2Config.attribute_map

_ROW_ONLY = {"key", "aliases", "note"}  # catalog row keys that are not ModelSpec fields (note: provenance remarks)
_SPEC_FIELDS = {f.name for f in fields(ModelSpec)}


# ------------------------------------------------------------------------------------------------ config.json
class UnknownFamily(EstimateError):
    """A model_type with no table here: the resolver may still price it from a meta-device build."""

    def __init__(self, message: str, model_type: str):
        super().__init__(message)
        self.model_type = model_type


# FalconConfig.__post_init__ still accepts the first checkpoints' `n_embed`; transformers 5 ignores their other
# old names (n_layer, n_head, n_head_kv), and so does this mapping.
_FALCON_ALIASES = {"n_embed": "hidden_size"}


def _falcon_layout(new_arch: bool, parallel: bool, num_ln) -> dict:
    """FalconDecoderLayer's norms: without parallel attention input_layernorm and post_attention_layernorm; with it
    ln_attn and ln_mlp when num_ln_in_parallel_attn is 2 (its default for the new decoder architecture: 40B,
    180B), else one input_layernorm feeding both (7B, Falcon 2 11B). Attention and MLP are added to the residual
    together under either flag."""
    if not parallel:
        norms = 2
    else:
        norms = 2 if (num_ln if num_ln is not None else (2 if new_arch else 1)) == 2 else 1
    return {"norms_per_layer": norms, "parallel_block": new_arch or parallel}


def _origin(name: str, origin: str) -> str:
    return origin or name or "config.json"


def spec_from_hf_config(config: dict, name: str, origin: str = "") -> ModelSpec:
    """A ModelSpec from a Hugging Face config.json dict; `origin` (the file) is named in errors."""
    where = _origin(name, origin)
    if not isinstance(config, dict):
        raise EstimateError(f"{where}: a config.json must hold a JSON object, got {type(config).__name__}")
    mt = config.get("model_type")
    if mt == "gemma3":  # multimodal: the decoder is text_config, filled from Gemma3TextConfig's defaults
        text = config.get("text_config")
        if not isinstance(text, dict):
            raise EstimateError(f"{where}: gemma3 config is missing key(s): text_config")
        top_tie = {"tie_word_embeddings": config["tie_word_embeddings"]} if "tie_word_embeddings" in config else {}
        config = {**GEMMA3_TEXT_DEFAULTS, **top_tie, **text, "model_type": "gemma3_text"}
        mt = "gemma3_text"
    if not mt:
        raise EstimateError(f"{where}: missing key(s): model_type")
    check_config(config, where)  # values no real model has, one line each (estimators/config_checks.py)
    fam = FAMILIES.get(mt)
    if fam is None:
        raise UnknownFamily(f"{where}: unsupported model_type '{mt}' (supported: {', '.join(sorted(FAMILIES))}, gemma3)",
                            mt)

    if fam.kind == "gpt2":  # GPT2Config's attribute_map: hidden_size -> n_embd, ...
        config = dict(config)
        for k, v in _GPT2_ALIASES.items():
            if k not in config and v in config:
                config[k] = config[v]
    if mt == "falcon":  # FalconConfig's backward-compatible name
        config = {**{new: config[old] for old, new in _FALCON_ALIASES.items() if old in config and new not in config},
                  **config}
    required = fam.required or _REQUIRED[fam.kind]
    if fam.kind == "moe":
        experts_key, width_key = MOE_KEYS[mt]
        required += (experts_key,) + ((width_key,) if width_key else ())
        if mt == "qwen2_moe":
            required += ("shared_expert_intermediate_size",)
    present = set(config)
    if "num_experts" in present or "num_local_experts" in present:  # Mixtral/Qwen3-MoE attribute_map
        present |= {"num_experts", "num_local_experts"}
    missing = [k for k in required if k not in present]
    if missing:
        raise EstimateError(f"{where}: {mt} config is missing key(s): {', '.join(missing)}")

    def get(key: str, default=None):
        """The config value; the class default only when the key is absent (an explicit null stays None)."""
        return config[key] if key in config else fam.defaults.get(key, default)

    def pos_int(key: str, value) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise EstimateError(f"{where}: {key} must be a positive integer, got {value!r}")
        return value

    if fam.kind == "gpt2":
        h = pos_int("n_embd", config["n_embd"])
        heads = pos_int("n_head", config["n_head"])
        layers = pos_int("n_layer", config["n_layer"])
        inter = pos_int("n_inner", get("n_inner") or 4 * h)
        max_pos = pos_int("n_positions", get("n_positions"))
        kv, head_dim = (1 if get("multi_query") else heads), 0  # GPTBigCode: multi-query attention
    elif mt == "falcon":
        h = pos_int("hidden_size", config["hidden_size"])
        heads = pos_int("num_attention_heads", config["num_attention_heads"])
        layers = pos_int("num_hidden_layers", config["num_hidden_layers"])
        inter = pos_int("ffn_hidden_size", get("ffn_hidden_size") or 4 * h)
        max_pos = pos_int("max_position_embeddings", get("max_position_embeddings"))
        kv = pos_int("num_kv_heads", get("num_kv_heads") or heads)
        if not get("new_decoder_architecture") and get("multi_query"):
            kv = 1  # FalconAttention: num_kv_heads only counts for the new architecture or without multi-query
        head_dim = 0
    else:
        h = pos_int("hidden_size", config["hidden_size"])
        heads = pos_int("num_attention_heads", config["num_attention_heads"])
        layers = pos_int("num_hidden_layers", config["num_hidden_layers"])
        inter = pos_int("intermediate_size", config["intermediate_size"])
        max_pos = pos_int("max_position_embeddings", get("max_position_embeddings"))
        kv = pos_int("num_key_value_heads", get("num_key_value_heads") or heads)
        head_dim = get("head_dim") or 0
        if head_dim:
            head_dim = pos_int("head_dim", head_dim)
    vocab = pos_int("vocab_size", config["vocab_size"])
    if not head_dim and h % heads:
        raise EstimateError(f"{where}: hidden size {h} is not a multiple of the {heads} attention heads and no head_dim is given")
    if heads % kv:
        raise EstimateError(f"{where}: {heads} attention heads are not a multiple of {kv} key/value heads")
    if head_dim and head_dim * heads == h:
        head_dim = 0  # ModelSpec: 0 means hidden_size // num_heads

    values: dict = dict(fam.switches)
    for key, flag in fam.flags.items():
        values.update(flag.on if get(key) else flag.off)
    if fam.act_key:
        act = get(fam.act_key)
        if not isinstance(act, str) or not act:
            raise EstimateError(f"{where}: {fam.act_key} must name an activation function, got {act!r}")
        values["mlp_act"] = act
    if mt == "falcon":
        values.update(_falcon_layout(bool(get("new_decoder_architecture")), bool(get("parallel_attn")),
                                     get("num_ln_in_parallel_attn")))
    values.update(name=name, model_type=mt, hidden_size=h, intermediate_size=inter, num_layers=layers, num_heads=heads,
                  num_kv_heads=kv, vocab_size=vocab, head_dim=head_dim, max_positions=max_pos,
                  tie_embeddings=bool(get("tie_word_embeddings")))
    if "attention_bias" in fam.defaults:  # one switch for q, k, v and o
        values["qkv_bias"] = values["o_bias"] = bool(get("attention_bias"))
    if "mlp_bias" in fam.defaults:
        values["mlp_bias"] = bool(get("mlp_bias"))
    if mt == "qwen2_moe":  # q/k/v only
        values["qkv_bias"] = bool(get("qkv_bias"))
    if "sliding_window" in fam.defaults:
        window = get("sliding_window") or 0
        if "use_sliding_window" in fam.defaults and not get("use_sliding_window"):
            window = 0  # Qwen configs carry a window they do not use
        values["sliding_window"] = pos_int("sliding_window", window) if window else 0
    if "final_logit_softcapping" in fam.defaults:
        values["logit_softcap"] = float(get("final_logit_softcapping") or 0.0)
        values["attn_softcap"] = float(get("attn_logit_softcapping") or 0.0)
    if fam.kind == "moe":
        if config.get("mlp_only_layers") or (config.get("decoder_sparse_step") or 1) != 1:
            # the table prices one layer kind; the resolver's meta-device build counts mixed layers exactly
            raise UnknownFamily(f"{where}: {mt} configs that mix dense and expert layers (mlp_only_layers, "
                                "decoder_sparse_step) have no table here", mt)
        experts = config.get(experts_key, config.get("num_experts", config.get("num_local_experts")))
        values["num_experts"] = pos_int(experts_key, experts)
        values["experts_per_token"] = pos_int("num_experts_per_tok", config["num_experts_per_tok"])
        if values["experts_per_token"] > values["num_experts"]:
            raise EstimateError(f"{where}: num_experts_per_tok {values['experts_per_token']} exceeds the "
                                f"{values['num_experts']} experts")
        if width_key:
            values["moe_intermediate_size"] = pos_int(width_key, config[width_key])
        if mt == "qwen2_moe":
            shared = config["shared_expert_intermediate_size"] or 0
            values["shared_expert_intermediate_size"] = pos_int("shared_expert_intermediate_size", shared) if shared else 0
    return ModelSpec(**values)


def _check_expressible(spec: ModelSpec, fam: Family) -> None:
    for k, v in fam.switches.items():
        if getattr(spec, k) != v:
            raise EstimateError(f"{spec.name}: {spec.model_type} models always have {k}={v!r}, the spec says {getattr(spec, k)!r}")


def _falcon_config(spec: ModelSpec) -> dict:
    """FalconConfig keys for `spec`: the old architecture when one of its two layouts fits (multi-query or full
    attention, parallel or sequential), else the new decoder architecture (grouped kv heads, 1 or 2 norms)."""
    new = spec.num_kv_heads not in (1, spec.num_heads) or (spec.parallel_block and spec.norms_per_layer == 2)
    c = {"hidden_size": spec.hidden_size, "ffn_hidden_size": spec.intermediate_size,
         "num_hidden_layers": spec.num_layers, "num_attention_heads": spec.num_heads, "num_kv_heads": spec.num_kv_heads,
         "vocab_size": spec.vocab_size, "max_position_embeddings": spec.max_positions,
         "tie_word_embeddings": spec.tie_embeddings, "new_decoder_architecture": new, "alibi": False,
         "parallel_attn": spec.parallel_block, "multi_query": not new and spec.num_kv_heads == 1}
    if new:
        c["num_ln_in_parallel_attn"] = spec.norms_per_layer
    if spec.qkv_bias != spec.o_bias or spec.o_bias != spec.mlp_bias:
        raise EstimateError(f"{spec.name}: falcon has one `bias` switch for every linear; the spec's biases differ")
    return c


def hf_config_from_spec(spec: ModelSpec) -> dict:
    """The config.json dict transformers needs to build `spec` (inverse of spec_from_hf_config).

    Raises EstimateError when the spec sets a switch its family cannot express (e.g. a qwen2 spec without q/k/v
    bias). Extra keys (rope_theta, ...) can ride along in `spec.extra["hf"]`.
    """
    if is_generic(spec) and "hf_config" in spec.extra:  # a meta-device build: the user's own config.json
        return dict(spec.extra["hf_config"])
    fam = FAMILIES.get(spec.model_type)
    if fam is None:
        raise EstimateError(f"{spec.name}: no Hugging Face config for model_type '{spec.model_type}'")
    _check_expressible(spec, fam)
    mt = spec.model_type
    c: dict = {"model_type": mt, "architectures": [fam.arch]}
    if fam.kind == "gpt2":
        c.update(n_embd=spec.hidden_size, n_layer=spec.num_layers, n_head=spec.num_heads, n_positions=spec.max_positions,
                 n_inner=spec.intermediate_size, vocab_size=spec.vocab_size, tie_word_embeddings=spec.tie_embeddings)
        if "multi_query" in fam.defaults:
            c["multi_query"] = spec.num_kv_heads == 1
    elif mt == "falcon":
        c.update(_falcon_config(spec))
    else:
        c.update(hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
                 num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
                 num_key_value_heads=spec.num_kv_heads, head_dim=spec.head_size, vocab_size=spec.vocab_size,
                 max_position_embeddings=spec.max_positions, tie_word_embeddings=spec.tie_embeddings)
    d = fam.defaults
    for key, flag in fam.flags.items():  # the written value whose Flag matches the spec (checked below)
        c[key] = flag.written[0] if all(getattr(spec, k) == v for k, v in flag.on.items()) else flag.written[1]
    if fam.act_key:
        c[fam.act_key] = spec.mlp_act
    if "attention_bias" in d:
        if spec.qkv_bias != spec.o_bias:
            raise EstimateError(f"{spec.name}: {mt} has one attention_bias switch for q/k/v and o; qkv_bias and o_bias differ")
        c["attention_bias"] = spec.qkv_bias
    if "mlp_bias" in d:
        c["mlp_bias"] = spec.mlp_bias
    if mt == "qwen2_moe":
        c["qkv_bias"] = spec.qkv_bias
    if "sliding_window" in d:
        c["sliding_window"] = spec.sliding_window or None
        if "use_sliding_window" in d:
            c["use_sliding_window"] = bool(spec.sliding_window)
    if "final_logit_softcapping" in d:
        c["final_logit_softcapping"] = spec.logit_softcap or None
        c["attn_logit_softcapping"] = spec.attn_softcap or None
    if fam.kind == "moe":
        experts_key, width_key = MOE_KEYS[mt]
        c[experts_key] = spec.num_experts
        if width_key:
            c.update({width_key: spec.expert_intermediate, "decoder_sparse_step": 1, "mlp_only_layers": []})
        c["num_experts_per_tok"] = spec.experts_per_token
        if mt == "qwen2_moe":
            c["shared_expert_intermediate_size"] = spec.shared_expert_intermediate_size
    c.update(spec.extra.get("hf", {}) if isinstance(spec.extra, dict) else {})
    back = spec_from_hf_config(c, spec.name)
    diff = [f.name for f in fields(ModelSpec) if f.compare and f.name not in ("name", "hf_id", "source")
            and getattr(back, f.name) != getattr(spec, f.name)]
    if diff:
        raise EstimateError(f"{spec.name}: a {mt} config.json cannot express {', '.join(diff)} as the spec sets them")
    return c


def read_config_json(path: Path | str, name: str = "") -> ModelSpec:
    """Read and map a config.json file; every failure is one EstimateError line naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EstimateError(f"cannot read {path}: {e.strerror or e}") from None
    config = parse_config_text(text, path)  # one-line errors, also for 5000-digit numbers and deep nesting
    if not name:
        name = path.parent.name if path.name == "config.json" else path.stem
    try:
        return spec_from_hf_config(config, name, origin=str(path))
    except UnknownFamily as e:
        return generic_spec(config, name, str(path), e)


GENERIC_HOW = "counts and linear shapes from a meta-device build by transformers (no table for model_type '{}')"


def generic_spec(config: dict, name: str, where: str, refused: UnknownFamily) -> ModelSpec:
    """A family with no table: counts and per-layer shapes from a meta-device build (advisor.measure.census),
    when torch and transformers (the train extra) are installed; otherwise the table's refusal, with the fix.
    Imported here, lazily, so that known families never load torch."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
        raise EstimateError(f"{refused}; with the train extra installed (pip install 'advisor[train]') it is priced "
                            "from a meta-device build") from None
    from advisor.measure.census import census_spec

    return census_spec(config, name, where)


def is_generic(spec: ModelSpec) -> bool:
    """Whether the spec came from a meta-device build rather than a family table."""
    return isinstance(spec.extra, dict) and "census" in spec.extra


# ------------------------------------------------------------------------------------------------ catalog
@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, ModelSpec], dict[str, str], dict[str, str]]:
    try:
        data = tomllib.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise EstimateError(f"cannot read the model catalog {CATALOG_PATH}: {e}") from None
    specs: dict[str, ModelSpec] = {}
    aliases: dict[str, str] = {}
    for row in data.get("models", []):
        key = row.get("key")
        if not key:
            raise EstimateError(f"{CATALOG_PATH}: a [[models]] row has no key")
        unknown = set(row) - _SPEC_FIELDS - _ROW_ONLY - {"hf"}
        if unknown:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: unknown field(s) {', '.join(sorted(unknown))}")
        fam = FAMILIES.get(row.get("model_type", ""))
        if fam is None:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: unsupported model_type {row.get('model_type')!r}")
        values = {**flag_defaults(fam), **fam.switches, **{k: v for k, v in row.items() if k in _SPEC_FIELDS}}
        if "hf" in row:
            values["extra"] = {"hf": dict(row["hf"])}
        try:
            spec = ModelSpec(**values)
        except TypeError as e:
            raise EstimateError(f"{CATALOG_PATH}: row {key}: {e}") from None
        if spec.head_dim and spec.head_dim * spec.num_heads == spec.hidden_size:
            spec = replace(spec, head_dim=0)
        specs[key] = spec
        for a in row.get("aliases", []):
            aliases[a] = key
    shorthands = {str(k).lower(): v for k, v in data.get("shorthands", {}).items()}
    bad = [f"{k} -> {v}" for k, v in shorthands.items() if v not in specs]
    if bad:
        raise EstimateError(f"{CATALOG_PATH}: shorthand(s) name unknown keys: {', '.join(bad)}")
    return specs, shorthands, aliases


def catalog() -> dict[str, ModelSpec]:
    """Catalog key -> ModelSpec, in file order (a fresh dict; the specs are shared and frozen)."""
    return dict(_load()[0])


def shorthands() -> dict[str, str]:
    """Size shorthand ("7b") -> catalog key."""
    return dict(_load()[1])


def aliases() -> dict[str, str]:
    """Other hub ids with a catalog row's architecture (instruct variants, old names) -> catalog key."""
    return dict(_load()[2])


# ------------------------------------------------------------------------------------------------ resolving
@dataclass(frozen=True)
class Resolved:
    spec: ModelSpec
    key: str  # catalog key, or what the user typed for a path / cached hub id
    how: str  # human phrase: where the numbers came from


def _describe(spec: ModelSpec) -> str:
    return f"{spec.name} ({spec.hf_id})" if spec.hf_id else spec.name


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, as huggingface_hub finds it (read only, never created)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    ok = all(p and all(ch.isalnum() or ch in "-_." for ch in p) and p not in (".", "..") for p in parts)
    return ok and 1 <= len(parts) <= 2


def cached_config(repo_id: str) -> Path | None:
    """config.json of the snapshot refs/main names (else the newest snapshot) of a cached hub repo, or None."""
    cache = hf_hub_cache()
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    if not folder.is_dir():
        try:
            want = folder.name.lower()
            folder = next((p for p in cache.iterdir() if p.name.lower() == want and p.is_dir()), None)
        except OSError:
            folder = None
        if folder is None:
            return None
    snapshots = folder / "snapshots"
    ref = folder / "refs" / "main"
    if ref.is_file():
        rev = ref.read_text(encoding="utf-8").strip()
        if (snapshots / rev / "config.json").is_file():
            return snapshots / rev / "config.json"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime, reverse=True) if snapshots.is_dir() else []
    if found:
        return found[0]
    raise EstimateError(f"'{repo_id}' is in the local Hugging Face cache ({folder}) but no snapshot has a config.json")


def _suggest(text: str) -> list[str]:
    specs, shorts, alias = _load()
    names = {k.lower(): k for k in specs}
    names.update({s.hf_id.lower(): s.hf_id for s in specs.values() if s.hf_id})
    names.update({a.lower(): a for a in alias})
    names.update({k: k for k in shorts})
    t = text.strip().lower()
    hits = difflib.get_close_matches(t, list(names), n=3, cutoff=0.5)
    if not hits and "/" in t:  # "org/some-name": compare the name part with the keys
        hits = difflib.get_close_matches(t.rsplit("/", 1)[1], list(names), n=3, cutoff=0.5)
    return [names[h] for h in hits]


def _how(spec: ModelSpec, where: str) -> str:
    return f"{where}; {GENERIC_HOW.format(spec.model_type)}" if is_generic(spec) else where


TINY = "tiny"  # a 2-layer random Llama built locally by the generated script: the offline default
# What the memory model prices for TINY: a 2-layer Llama of hidden size 64 (its memory is negligible either way).
TINY_SPEC = ModelSpec(
    name="tiny random Llama (2 layers, built locally)", model_type="llama", hidden_size=64, intermediate_size=256,
    num_layers=2, num_heads=4, num_kv_heads=4, vocab_size=1024, max_positions=2048, source="built by the script",
)


def resolve_model(text: str) -> Resolved:
    """Catalog key -> catalog hub id (or alias) -> shorthand -> local directory / config.json -> local HF cache."""
    raw = (text or "").strip()
    if not raw:
        raise EstimateError("no model given (a catalog key, size like 7b, hub id or path; see `advisor models`)")
    check_model_text(raw)  # control characters, over-long names: one line, not os.stat's OSError
    low = raw.lower()
    if low == TINY:  # every command takes the offline smoke-test model (`advisor estimate --model tiny` too)
        return Resolved(TINY_SPEC, TINY, "built by the script")
    specs, shorts, alias = _load()
    for key, spec in specs.items():
        if key.lower() == low:
            return Resolved(spec, key, "catalog")
    for key, spec in specs.items():
        if spec.hf_id.lower() == low:
            return Resolved(spec, key, "catalog")
    for a, key in alias.items():
        if a.lower() == low:  # same numbers, but the hub id the user named (the script must load that one)
            spec = replace(specs[key], hf_id=a, source=f"https://huggingface.co/{a}/blob/main/config.json")
            return Resolved(spec, key, f"catalog: {a} has the architecture of {_describe(specs[key])}")
    if low in shorts:
        key = shorts[low]
        return Resolved(specs[key], key, f"shorthand {raw} → {_describe(specs[key])}")
    path = Path(raw).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise EstimateError(f"directory {path} has no config.json")
        spec = read_config_json(cfg, path.resolve().name)
        return Resolved(spec, raw, _how(spec, f"config.json at {cfg}"))
    if path.is_file():
        spec = read_config_json(path)
        return Resolved(spec, raw, _how(spec, f"config.json at {path}"))
    if _looks_like_repo_id(raw):
        cfg = cached_config(raw)
        if cfg is not None:
            spec = replace(read_config_json(cfg, raw), hf_id=raw)
            return Resolved(spec, raw, _how(spec, f"local Hugging Face cache ({cfg})"))
    hits = _suggest(raw)
    if hits:
        raise EstimateError(f"unknown model '{raw}'; did you mean: {', '.join(hits)}? (see `advisor models`)")
    raise EstimateError(f"unknown model '{raw}': not in the catalog, not a local config.json, not in the local "
                        "Hugging Face cache (see `advisor models`)")
