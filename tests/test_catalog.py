"""The model catalog and resolve_model: catalog keys, hub ids, shorthands, local config.json files and a fake
Hugging Face cache. No torch here: this is the light path."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from estimators.catalog import Resolved, aliases, catalog, resolve_model, shorthands
from estimators.errors import EstimateError
from estimators.families import FAMILIES
from estimators.hf_config import hf_config_from_spec, spec_from_hf_config
from estimators.model import ModelSpec

CATALOG = catalog()

REQUIRED_KEYS = """
llama-2-7b llama-2-13b llama-2-70b llama-3-8b llama-3-70b llama-3.1-8b llama-3.1-70b llama-3.1-405b llama-3.2-1b
llama-3.2-3b llama-3.3-70b mistral-7b-v0.1 mistral-7b-v0.3 mixtral-8x7b mixtral-8x22b qwen2-0.5b qwen2-1.5b qwen2-7b
qwen2-72b qwen2.5-0.5b qwen2.5-1.5b qwen2.5-3b qwen2.5-7b qwen2.5-14b qwen2.5-32b qwen2.5-72b qwen3-0.6b qwen3-1.7b
qwen3-4b qwen3-8b qwen3-14b qwen3-32b qwen3-30b-a3b gemma-2b gemma-7b gemma-2-2b gemma-2-9b gemma-2-27b gemma-3-1b
gemma-3-4b gemma-3-12b gemma-3-27b phi-3-mini-4k phi-3-medium-4k phi-3.5-mini phi-4 gpt2 gpt2-medium gpt2-large
gpt2-xl tinyllama-1.1b smollm2-135m smollm2-360m smollm2-1.7b olmo-2-7b olmo-2-13b
""".split()


def same(a: ModelSpec, b: ModelSpec) -> bool:
    """Equal architecture (names and provenance aside)."""
    return replace(a, name="", hf_id="", source="") == replace(b, name="", hf_id="", source="")


def write_config(path, config: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    return path


# ------------------------------------------------------------------------------------------------ the catalog
def test_catalog_size_and_families():
    assert len(CATALOG) >= 40
    assert set(REQUIRED_KEYS) <= set(CATALOG)
    assert {s.model_type for s in CATALOG.values()} == set(FAMILIES)


@pytest.mark.parametrize("key", list(CATALOG))
def test_every_entry_is_sourced_and_sane(key):
    s = CATALOG[key]
    assert s.name and s.hf_id
    assert s.source == f"https://huggingface.co/{s.hf_id}/blob/main/config.json"
    assert s.num_heads % s.num_kv_heads == 0
    assert s.head_dim or s.hidden_size % s.num_heads == 0
    assert s.model_type in FAMILIES
    if s.is_moe:
        assert 0 < s.experts_per_token <= s.num_experts and s.experts_fused


def test_hf_ids_and_aliases_are_unique():
    ids = [s.hf_id.lower() for s in CATALOG.values()]
    assert len(ids) == len(set(ids))
    for alias, key in aliases().items():
        assert key in CATALOG and alias.lower() not in ids


def test_required_shorthands():
    sh = shorthands()
    assert {"0.5b", "1b", "3b", "7b", "8b", "13b", "14b", "70b"} <= set(sh)
    assert sh["7b"] == "llama-2-7b" and sh["8b"] == "llama-3.1-8b"
    assert sh["13b"] == "llama-2-13b" and sh["70b"] == "llama-3.1-70b"


@pytest.mark.parametrize("short", sorted(shorthands()))
def test_every_shorthand_resolves(short):
    key = shorthands()[short]
    for text in (short, short.upper()):
        r = resolve_model(text)
        assert r.key == key and r.spec == CATALOG[key]
    assert r.how.startswith(f"shorthand {short.upper()} → {CATALOG[key].name} ({CATALOG[key].hf_id})")


def test_shorthand_how_phrase():
    assert resolve_model("7b").how == "shorthand 7b → Llama 2 7B (meta-llama/Llama-2-7b-hf)"


def test_catalog_is_cached_and_copied():
    a, b = catalog(), catalog()
    assert a == b and a is not b
    a.clear()
    assert len(catalog()) == len(CATALOG)


# ------------------------------------------------------------------------------------------------ resolving
def test_resolve_catalog_key_case_insensitive():
    r = resolve_model("Llama-3.1-8B")
    assert isinstance(r, Resolved)
    assert (r.key, r.how) == ("llama-3.1-8b", "catalog")
    assert r.spec.hidden_size == 4096 and r.spec.vocab_size == 128256


def test_resolve_hf_id():
    r = resolve_model("meta-llama/Llama-2-7b-hf")
    assert r.key == "llama-2-7b" and r.how == "catalog"
    assert resolve_model("qwen/qwen2.5-7b").key == "qwen2.5-7b"


def test_resolve_alias_keeps_the_named_hub_id():
    r = resolve_model("Qwen/Qwen2.5-7B-Instruct")
    assert r.key == "qwen2.5-7b"
    assert r.spec.hf_id == "Qwen/Qwen2.5-7B-Instruct"
    assert same(r.spec, CATALOG["qwen2.5-7b"])
    assert "Qwen2.5 7B" in r.how


LLAMA_2_7B_CONFIG = {  # meta-llama/Llama-2-7b-hf config.json
    "architectures": ["LlamaForCausalLM"],
    "bos_token_id": 1,
    "eos_token_id": 2,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "transformers_version": "4.31.0.dev0",
    "use_cache": True,
    "vocab_size": 32000,
}


def test_resolve_local_directory(tmp_path):
    write_config(tmp_path / "my-llama" / "config.json", LLAMA_2_7B_CONFIG)
    r = resolve_model(str(tmp_path / "my-llama"))
    assert r.how == f"config.json at {tmp_path / 'my-llama' / 'config.json'}"
    assert r.spec.name == "my-llama"
    assert same(r.spec, CATALOG["llama-2-7b"])


def test_resolve_config_json_path(tmp_path):
    cfg = write_config(tmp_path / "m" / "config.json", LLAMA_2_7B_CONFIG)
    r = resolve_model(str(cfg))
    assert r.how == f"config.json at {cfg}"
    assert same(r.spec, CATALOG["llama-2-7b"])


def test_directory_without_config_json(tmp_path):
    with pytest.raises(EstimateError, match="has no config.json"):
        resolve_model(str(tmp_path))


def _fake_cache(root, repo: str, config: dict, rev: str = "abc123", stale: dict | None = None):
    folder = root / ("models--" + repo.replace("/", "--"))
    write_config(folder / "snapshots" / rev / "config.json", config)
    if stale is not None:
        write_config(folder / "snapshots" / "old000" / "config.json", stale)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(rev)
    return folder


@pytest.fixture
def no_real_cache(tmp_path, monkeypatch):
    """HOME and every cache variable point into tmp_path: the real cache is never read."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return tmp_path


def test_resolve_from_hf_hub_cache(no_real_cache, monkeypatch):
    cache = no_real_cache / "hubcache"
    gpt2 = {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}
    _fake_cache(cache, "acme/tiny-gpt", gpt2, stale=dict(gpt2, n_layer=2))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    r = resolve_model("acme/tiny-gpt")
    cfg = cache / "models--acme--tiny-gpt" / "snapshots" / "abc123" / "config.json"
    assert r.how == f"local Hugging Face cache ({cfg})"
    assert r.key == "acme/tiny-gpt" and r.spec.hf_id == "acme/tiny-gpt"
    assert same(r.spec, CATALOG["gpt2"])  # refs/main's snapshot, not the stale one


def test_resolve_from_hf_home(no_real_cache, monkeypatch):
    home = no_real_cache / "hfhome"
    _fake_cache(home / "hub", "acme/llama-like", LLAMA_2_7B_CONFIG)
    monkeypatch.setenv("HF_HOME", str(home))
    assert same(resolve_model("acme/llama-like").spec, CATALOG["llama-2-7b"])


def test_resolve_from_default_cache_under_home(no_real_cache):
    _fake_cache(no_real_cache / "home" / ".cache" / "huggingface" / "hub", "acme/llama-like", LLAMA_2_7B_CONFIG)
    assert same(resolve_model("acme/llama-like").spec, CATALOG["llama-2-7b"])


def test_cache_without_refs_uses_a_snapshot(no_real_cache, monkeypatch):
    cache = no_real_cache / "c"
    folder = _fake_cache(cache, "acme/x", LLAMA_2_7B_CONFIG)
    (folder / "refs" / "main").unlink()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert same(resolve_model("acme/x").spec, CATALOG["llama-2-7b"])


def test_cache_miss_is_unknown(no_real_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(no_real_cache / "empty"))
    with pytest.raises(EstimateError, match="unknown model 'acme/not-here'"):
        resolve_model("acme/not-here")


@pytest.mark.parametrize(
    "text, expected",
    [("llama-3-9b", "llama-3-8b"), ("qwen2.5-8b", "qwen2.5-7b"), ("mistral-7b", "mistral-7b-v0.1"), ("gemma2-9b", "gemma-2-9b")],
)
def test_unknown_names_suggest(no_real_cache, text, expected):
    with pytest.raises(EstimateError) as e:
        resolve_model(text)
    msg = str(e.value)
    assert msg.startswith(f"unknown model '{text}'; did you mean: ")
    assert expected in msg and msg.endswith("? (see `advisor models`)")
    assert "\n" not in msg


def test_unknown_without_close_match(no_real_cache):
    with pytest.raises(EstimateError, match=r"unknown model 'zzqqxx'.*advisor models"):
        resolve_model("zzqqxx")


def test_empty_name():
    with pytest.raises(EstimateError):
        resolve_model("  ")


# ------------------------------------------------------------------------------------------------ config.json
def test_malformed_json(tmp_path):
    cfg = tmp_path / "bad" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text('{"model_type": "llama", ')
    with pytest.raises(EstimateError) as e:
        resolve_model(str(cfg.parent))
    assert str(cfg) in str(e.value) and "not valid JSON" in str(e.value) and "\n" not in str(e.value)


def test_json_that_is_not_an_object(tmp_path):
    cfg = write_config(tmp_path / "config.json", [1, 2])
    with pytest.raises(EstimateError, match="JSON object"):
        resolve_model(str(cfg))


@pytest.mark.parametrize("drop", [("hidden_size",), ("num_hidden_layers", "vocab_size")])
def test_partial_config_names_missing_keys(tmp_path, drop):
    config = {k: v for k, v in LLAMA_2_7B_CONFIG.items() if k not in drop}
    cfg = write_config(tmp_path / "partial" / "config.json", config)
    with pytest.raises(EstimateError) as e:
        resolve_model(str(cfg))
    msg = str(e.value)
    assert str(cfg) in msg and "\n" not in msg
    assert all(k in msg for k in drop)


def test_missing_model_type(tmp_path):
    cfg = write_config(tmp_path / "config.json", {k: v for k, v in LLAMA_2_7B_CONFIG.items() if k != "model_type"})
    with pytest.raises(EstimateError, match="model_type"):
        resolve_model(str(cfg))


def test_unsupported_model_type():
    # falcon has a table since issue 15; a family without one is still refused by the table-driven mapping
    # (resolve_model may then price it from a meta-device build: tests/test_families_generic.py)
    with pytest.raises(EstimateError, match="unsupported model_type 'mamba'"):
        spec_from_hf_config({"model_type": "mamba", "hidden_size": 768}, "mamba-130m")


def test_bad_values():
    with pytest.raises(EstimateError, match="hidden_size must be a positive integer"):
        spec_from_hf_config(dict(LLAMA_2_7B_CONFIG, hidden_size="4096"), "x")
    with pytest.raises(EstimateError, match="key/value heads"):
        spec_from_hf_config(dict(LLAMA_2_7B_CONFIG, num_key_value_heads=5), "x")


def test_moe_config_missing_expert_keys():
    cfg = {
        "model_type": "qwen3_moe",
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "vocab_size": 151936,
    }
    with pytest.raises(EstimateError) as e:
        spec_from_hf_config(cfg, "q", origin="/x/config.json")
    assert all(k in str(e.value) for k in ("num_experts_per_tok", "num_experts", "moe_intermediate_size", "/x/config.json"))


# Real config.json contents (abridged to what matters plus typical noise) map to the catalog rows.
REAL_CONFIGS = {
    "mistral-7b-v0.3": {
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32768,
        "max_position_embeddings": 32768,
        "sliding_window": None,
        "rope_theta": 1000000.0,
        "tie_word_embeddings": False,
    },
    "mistral-7b-v0.1": {
        "model_type": "mistral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "sliding_window": 4096,
    },
    "mixtral-8x7b": {
        "model_type": "mixtral",
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
        "max_position_embeddings": 32768,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
        "sliding_window": None,
        "router_aux_loss_coef": 0.02,
    },
    "qwen2.5-7b": {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 131072,
        "sliding_window": 131072,
        "use_sliding_window": False,
        "max_window_layers": 28,
        "tie_word_embeddings": False,
    },
    "qwen2.5-0.5b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "sliding_window": 32768,
        "use_sliding_window": False,
        "tie_word_embeddings": True,
    },
    "qwen3-30b-a3b": {
        "model_type": "qwen3_moe",
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "moe_intermediate_size": 768,
        "num_hidden_layers": 48,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "head_dim": 128,
        "num_experts": 128,
        "num_experts_per_tok": 8,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "norm_topk_prob": True,
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "sliding_window": None,
        "attention_bias": False,
    },
    "qwen1.5-moe-a2.7b": {
        "model_type": "qwen2_moe",
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "moe_intermediate_size": 1408,
        "shared_expert_intermediate_size": 5632,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "num_experts": 60,
        "num_experts_per_tok": 4,
        "vocab_size": 151936,
        "max_position_embeddings": 8192,
        "decoder_sparse_step": 1,
        "tie_word_embeddings": False,
    },
    "gemma-7b": {
        "model_type": "gemma",
        "hidden_size": 3072,
        "intermediate_size": 24576,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
    },  # no tie_word_embeddings key: GemmaConfig ties by default
    "gemma-2-9b": {
        "model_type": "gemma2",
        "hidden_size": 3584,
        "intermediate_size": 14336,
        "num_hidden_layers": 42,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
        "final_logit_softcapping": 30.0,
        "attn_logit_softcapping": 50.0,
        "query_pre_attn_scalar": 256,
    },
    "gemma-3-1b": {
        "model_type": "gemma3_text",
        "hidden_size": 1152,
        "intermediate_size": 6912,
        "num_hidden_layers": 26,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 262144,
        "max_position_embeddings": 32768,
        "sliding_window": 512,
        "sliding_window_pattern": 6,
        "final_logit_softcapping": None,
        "attn_logit_softcapping": None,
    },
    # google/gemma-3-4b-it: the text_config names five keys, the rest are Gemma3TextConfig defaults
    "gemma-3-4b": {
        "model_type": "gemma3",
        "architectures": ["Gemma3ForConditionalGeneration"],
        "text_config": {
            "hidden_size": 2560,
            "intermediate_size": 10240,
            "model_type": "gemma3_text",
            "num_hidden_layers": 34,
            "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
            "sliding_window": 1024,
        },
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152},
    },
    "phi-3-mini-4k": {
        "model_type": "phi3",
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "max_position_embeddings": 4096,
        "sliding_window": 2047,
        "tie_word_embeddings": False,
    },
    "olmo-2-7b": {
        "model_type": "olmo2",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 100352,
        "max_position_embeddings": 4096,
        "attention_bias": False,
        "tie_word_embeddings": False,
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 768,
        "n_layer": 12,
        "n_head": 12,
        "n_ctx": 1024,
        "n_positions": 1024,
        "vocab_size": 50257,
        "activation_function": "gelu_new",
    },  # n_inner absent: 4 x n_embd
    "llama-3.2-1b": {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 64,
        "vocab_size": 128256,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": True,
        "attention_bias": False,
        "mlp_bias": False,
    },
}


@pytest.mark.parametrize("key", sorted(REAL_CONFIGS))
def test_real_configs_map_to_catalog_rows(key):
    spec = spec_from_hf_config(REAL_CONFIGS[key], key)
    assert same(spec, CATALOG[key]), [
        (f, getattr(spec, f), getattr(CATALOG[key], f)) for f in spec.__dataclass_fields__ if getattr(spec, f) != getattr(CATALOG[key], f)
    ]


@pytest.mark.parametrize("key", list(CATALOG))
def test_hf_config_round_trip(key):
    spec = CATALOG[key]
    cfg = hf_config_from_spec(spec)
    assert cfg["model_type"] == spec.model_type and cfg["architectures"] == [FAMILIES[spec.model_type].arch]
    assert same(spec_from_hf_config(json.loads(json.dumps(cfg)), spec.name), spec)


def test_hf_config_refuses_what_the_family_cannot_express():
    with pytest.raises(EstimateError, match="qkv_bias"):
        hf_config_from_spec(replace(CATALOG["qwen2.5-7b"], qkv_bias=False))
    with pytest.raises(EstimateError, match="attention_bias"):
        hf_config_from_spec(replace(CATALOG["llama-2-7b"], qkv_bias=True))
