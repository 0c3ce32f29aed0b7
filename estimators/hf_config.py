"""config.json <-> ModelSpec. `spec_from_hf_config` maps a Hugging Face config.json dict to a ModelSpec the way
transformers 5 reads it (class defaults for absent keys included); `hf_config_from_spec` is its inverse, used to
build a model from a catalog row. The family tables are in estimators/families.py."""

from __future__ import annotations

from dataclasses import fields

from .config_checks import check_config
from .errors import EstimateError
from .families import FAMILIES, GEMMA3_TEXT_DEFAULTS
from .families_moe import MOE_KEYS
from .family_types import Family
from .hf_config_families import FALCON_ALIASES, GPT2_ALIASES, encoder_values, falcon_config, falcon_layout
from .model import ModelSpec

# Keys spec_from_hf_config requires (transformers has defaults for them too, but a config.json without them is
# not a real checkpoint's: better to say so than to price a made-up model).
_REQUIRED = {
    "dense": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"),
    "moe": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size", "num_experts_per_tok"),
    "gpt2": ("n_embd", "n_layer", "n_head", "vocab_size"),
}


class UnknownFamily(EstimateError):
    """A model_type with no table here: the resolver may still price it from a meta-device build."""

    def __init__(self, message: str, model_type: str):
        super().__init__(message)
        self.model_type = model_type


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
        raise UnknownFamily(f"{where}: unsupported model_type '{mt}' (supported: {', '.join(sorted(FAMILIES))}, gemma3)", mt)

    if fam.kind == "gpt2":  # GPT2Config's attribute_map: hidden_size -> n_embd, ...
        config = dict(config)
        for k, v in GPT2_ALIASES.items():
            if k not in config and v in config:
                config[k] = config[v]
    if mt == "falcon":  # FalconConfig's backward-compatible name
        config = {**{new: config[old] for old, new in FALCON_ALIASES.items() if old in config and new not in config}, **config}
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

    values: dict = {}
    for key, flag in fam.flags.items():
        values.update(flag.on if get(key) else flag.off)
    if fam.act_key:
        act = get(fam.act_key)
        if not isinstance(act, str) or not act:
            raise EstimateError(f"{where}: {fam.act_key} must name an activation function, got {act!r}")
        values["mlp_act"] = act
    if mt == "falcon":
        values.update(falcon_layout(bool(get("new_decoder_architecture")), bool(get("parallel_attn")), get("num_ln_in_parallel_attn")))
    values.update(
        name=name,
        model_type=mt,
        hidden_size=h,
        intermediate_size=inter,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv,
        vocab_size=vocab,
        head_dim=head_dim,
        max_positions=max_pos,
        tie_embeddings=bool(get("tie_word_embeddings")),
    )
    if fam.switches.get("encoder"):
        values.update(encoder_values(config, get, pos_int))
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
            raise UnknownFamily(
                f"{where}: {mt} configs that mix dense and expert layers (mlp_only_layers, decoder_sparse_step) have no table here", mt
            )
        experts = config.get(experts_key, config.get("num_experts", config.get("num_local_experts")))
        values["num_experts"] = pos_int(experts_key, experts)
        values["experts_per_token"] = pos_int("num_experts_per_tok", config["num_experts_per_tok"])
        if values["experts_per_token"] > values["num_experts"]:
            raise EstimateError(f"{where}: num_experts_per_tok {values['experts_per_token']} exceeds the {values['num_experts']} experts")
        if width_key:
            values["moe_intermediate_size"] = pos_int(width_key, config[width_key])
        if mt == "qwen2_moe":
            shared = config["shared_expert_intermediate_size"] or 0
            values["shared_expert_intermediate_size"] = pos_int("shared_expert_intermediate_size", shared) if shared else 0
    # last: what the modelling code fixes for every model of the family, whatever the config says (an encoder's
    # tie_word_embeddings ties no LM head)
    values.update(fam.switches)
    return ModelSpec(**values)


def _check_expressible(spec: ModelSpec, fam: Family) -> None:
    for k, v in fam.switches.items():
        if getattr(spec, k) != v:
            raise EstimateError(f"{spec.name}: {spec.model_type} models always have {k}={v!r}, the spec says {getattr(spec, k)!r}")


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
        c.update(
            n_embd=spec.hidden_size,
            n_layer=spec.num_layers,
            n_head=spec.num_heads,
            n_positions=spec.max_positions,
            n_inner=spec.intermediate_size,
            vocab_size=spec.vocab_size,
            tie_word_embeddings=spec.tie_embeddings,
        )
        if "multi_query" in fam.defaults:
            c["multi_query"] = spec.num_kv_heads == 1
    elif mt == "falcon":
        c.update(falcon_config(spec))
    else:
        c.update(
            hidden_size=spec.hidden_size,
            intermediate_size=spec.intermediate_size,
            num_hidden_layers=spec.num_layers,
            num_attention_heads=spec.num_heads,
            num_key_value_heads=spec.num_kv_heads,
            head_dim=spec.head_size,
            vocab_size=spec.vocab_size,
            max_position_embeddings=spec.max_positions,
            tie_word_embeddings=spec.tie_embeddings,
        )
    d = fam.defaults
    for key, flag in fam.flags.items():  # the written value whose Flag matches the spec (checked below)
        c[key] = flag.written[0] if all(getattr(spec, k) == v for k, v in flag.on.items()) else flag.written[1]
    if fam.act_key:
        c[fam.act_key] = spec.mlp_act
    if spec.encoder:
        c.update(type_vocab_size=spec.token_types, num_labels=spec.num_labels)
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
    diff = [
        f.name
        for f in fields(ModelSpec)
        if f.compare and f.name not in ("name", "hf_id", "source") and getattr(back, f.name) != getattr(spec, f.name)
    ]
    if diff:
        raise EstimateError(f"{spec.name}: a {mt} config.json cannot express {', '.join(diff)} as the spec sets them")
    return c


def is_generic(spec: ModelSpec) -> bool:
    """Whether the spec came from a meta-device build rather than a family table."""
    return isinstance(spec.extra, dict) and "census" in spec.extra
