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
import json
import os
import tomllib
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

from .errors import EstimateError
from .model import ModelSpec

CATALOG_PATH = Path(__file__).resolve().parent.parent / "rules" / "models.toml"


# ------------------------------------------------------------------------------------------------ families
@dataclass(frozen=True)
class Family:
    arch: str  # the *ForCausalLM class transformers builds for the model_type
    switches: dict  # ModelSpec fields the modeling code fixes for every model of the family
    defaults: dict  # transformers 5.24 config-class defaults for keys a config.json may omit
    kind: str = "dense"  # dense | moe | gpt2


def _F(arch: str, switches: dict | None = None, kind: str = "dense", **defaults) -> Family:
    return Family(arch, switches or {}, defaults, kind)


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
               n_positions=1024, n_inner=None, tie_word_embeddings=True),
}

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

_ROW_ONLY = {"key", "aliases"}  # catalog row keys that are not ModelSpec fields
_SPEC_FIELDS = {f.name for f in fields(ModelSpec)}


# ------------------------------------------------------------------------------------------------ config.json
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
    fam = FAMILIES.get(mt)
    if fam is None:
        raise EstimateError(f"{where}: unsupported model_type '{mt}' (supported: {', '.join(sorted(FAMILIES))}, gemma3)")

    if fam.kind == "gpt2":  # GPT2Config's attribute_map: hidden_size -> n_embd, ...
        config = dict(config)
        for k, v in _GPT2_ALIASES.items():
            if k not in config and v in config:
                config[k] = config[v]
    required = _REQUIRED[fam.kind]
    if mt == "mixtral":
        required += ("num_local_experts",)
    elif fam.kind == "moe":
        required += ("num_experts", "moe_intermediate_size")
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
        kv, head_dim = heads, 0
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
            raise EstimateError(f"{where}: MoE configs that mix dense and expert layers (mlp_only_layers, "
                                "decoder_sparse_step) are not supported")
        experts = config.get("num_local_experts", config.get("num_experts"))
        values["num_experts"] = pos_int("num_experts", experts)
        values["experts_per_token"] = pos_int("num_experts_per_tok", config["num_experts_per_tok"])
        if values["experts_per_token"] > values["num_experts"]:
            raise EstimateError(f"{where}: num_experts_per_tok {values['experts_per_token']} exceeds the "
                                f"{values['num_experts']} experts")
        if mt != "mixtral":
            values["moe_intermediate_size"] = pos_int("moe_intermediate_size", config["moe_intermediate_size"])
        if mt == "qwen2_moe":
            shared = config["shared_expert_intermediate_size"] or 0
            values["shared_expert_intermediate_size"] = pos_int("shared_expert_intermediate_size", shared) if shared else 0
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
    fam = FAMILIES.get(spec.model_type)
    if fam is None:
        raise EstimateError(f"{spec.name}: no Hugging Face config for model_type '{spec.model_type}'")
    _check_expressible(spec, fam)
    mt = spec.model_type
    c: dict = {"model_type": mt, "architectures": [fam.arch]}
    if fam.kind == "gpt2":
        c.update(n_embd=spec.hidden_size, n_layer=spec.num_layers, n_head=spec.num_heads, n_positions=spec.max_positions,
                 n_inner=spec.intermediate_size, vocab_size=spec.vocab_size, tie_word_embeddings=spec.tie_embeddings)
    else:
        c.update(hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
                 num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
                 num_key_value_heads=spec.num_kv_heads, head_dim=spec.head_size, vocab_size=spec.vocab_size,
                 max_position_embeddings=spec.max_positions, tie_word_embeddings=spec.tie_embeddings)
    d = fam.defaults
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
        if mt == "mixtral":
            c["num_local_experts"] = spec.num_experts
        else:
            c.update(num_experts=spec.num_experts, moe_intermediate_size=spec.expert_intermediate,
                     decoder_sparse_step=1, mlp_only_layers=[])
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
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise EstimateError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not name:
        name = path.parent.name if path.name == "config.json" else path.stem
    return spec_from_hf_config(config, name, origin=str(path))


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
        values = {**fam.switches, **{k: v for k, v in row.items() if k in _SPEC_FIELDS}}
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


def resolve_model(text: str) -> Resolved:
    """Catalog key -> catalog hub id (or alias) -> shorthand -> local directory / config.json -> local HF cache."""
    raw = (text or "").strip()
    if not raw:
        raise EstimateError("no model given (a catalog key, size like 7b, hub id or path; see `advisor models`)")
    specs, shorts, alias = _load()
    low = raw.lower()
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
        return Resolved(read_config_json(cfg, path.resolve().name), raw, f"config.json at {cfg}")
    if path.is_file():
        return Resolved(read_config_json(path), raw, f"config.json at {path}")
    if _looks_like_repo_id(raw):
        cfg = cached_config(raw)
        if cfg is not None:
            spec = replace(read_config_json(cfg, raw), hf_id=raw)
            return Resolved(spec, raw, f"local Hugging Face cache ({cfg})")
    hits = _suggest(raw)
    if hits:
        raise EstimateError(f"unknown model '{raw}'; did you mean: {', '.join(hits)}? (see `advisor models`)")
    raise EstimateError(f"unknown model '{raw}': not in the catalog, not a local config.json, not in the local "
                        "Hugging Face cache (see `advisor models`)")
