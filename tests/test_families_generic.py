"""Issue 15 §1: any other config.json is priced from a meta-device build (advisor/measure/census.py) when torch and
transformers are installed; the estimate says so; known families never load torch; without the train extra the
refusal names the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from estimators.catalog import catalog, resolve_model
from estimators.config_json import generic_spec
from estimators.errors import EstimateError
from estimators.hf_config import UnknownFamily, hf_config_from_spec, is_generic
from estimators.params import count_params, layer_linears

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from advisor.measure.census import census_spec  # noqa: E402

CATALOG = catalog()
ONE_PER_FAMILY = {}
for _key, _spec in CATALOG.items():
    if not _spec.encoder:  # the census builds a causal LM; encoders are priced as classifiers from their table
        ONE_PER_FAMILY.setdefault(_spec.model_type, _key)

# Families with no table, as small configs (transformers 5.24 builds each as a causal LM).
UNKNOWN = {
    "opt": {"hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100, "word_embed_proj_dim": 64},
    "bloom": {"hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100},
    "gptj": {"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100, "rotary_dim": 8},
    "deepseek_v3": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 4,
        "num_experts_per_tok": 2,
        "n_shared_experts": 1,
        "first_k_dense_replace": 1,
        "vocab_size": 100,
        "q_lora_rank": 16,
        "kv_lora_rank": 16,
        "qk_rope_head_dim": 8,
        "qk_nope_head_dim": 8,
        "v_head_dim": 8,
        "n_group": 1,
        "topk_group": 1,
    },
}


def _rows(linears):
    return sorted((x.name, x.in_features, x.out_features, x.count, x.bias, x.module, x.group) for x in linears)


@pytest.mark.parametrize("key", sorted(ONE_PER_FAMILY.values()))
def test_census_equals_the_family_tables(key):
    """The meta-device census gives every table family's exact counts and layer linears (groups included), so
    the generic path prices what the tables would."""
    spec = CATALOG[key]
    generic = census_spec(hf_config_from_spec(spec), key, "test")
    assert count_params(generic) == count_params(spec)
    assert _rows(layer_linears(generic)) == _rows(layer_linears(spec))
    for f in (
        "hidden_size",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "vocab_size",
        "tie_embeddings",
        "gated_mlp",
        "fused_qkv",
        "num_experts",
        "experts_per_token",
        "experts_fused",
        "learned_positions",
        "head_size",
    ):
        assert getattr(generic, f) == getattr(spec, f), f


def _write(tmp_path, mt: str) -> str:
    d = tmp_path / mt
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": mt, **UNKNOWN[mt]}))
    return str(d)


@pytest.mark.parametrize("mt", sorted(UNKNOWN))
def test_unknown_family_is_priced_from_a_meta_build(tmp_path, mt):
    from estimators.pricing import estimate
    from estimators.setup import Setup

    r = resolve_model(_write(tmp_path, mt))
    assert is_generic(r.spec) and "meta-device build" in r.how and mt in r.how
    cfg = AutoConfig.for_model(mt, **UNKNOWN[mt])
    with torch.device("meta"):
        real = sum(p.numel() for p in AutoModelForCausalLM.from_config(cfg).parameters())
    pc = count_params(r.spec)
    assert pc.total == real
    assert pc.total == pc.embedding + pc.lm_head + pc.linear + pc.linear_bias + pc.norm + pc.raw_linear
    est = estimate(r.spec, Setup(adaptation="lora", seq_len=256))
    assert est.peak_allocated > pc.total * 2  # the bf16 weights at least
    assert hf_config_from_spec(r.spec)["model_type"] == mt  # the tracer builds the user's own config


def test_moe_census_counts_active_experts(tmp_path):
    spec = resolve_model(_write(tmp_path, "deepseek_v3")).spec
    pc = count_params(spec)
    assert spec.num_experts == 4 and spec.experts_per_token == 2 and spec.experts_fused
    assert pc.raw_linear > 0 and pc.active < pc.total


def test_a_config_transformers_does_not_know_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no_such_family", "hidden_size": 8}))
    with pytest.raises(EstimateError) as e:
        resolve_model(str(tmp_path))
    assert "no_such_family" in str(e.value) and "\n" not in str(e.value)


def test_without_the_train_extra_the_refusal_names_the_fix(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    refused = UnknownFamily("x: unsupported model_type 'opt'", "opt")
    with pytest.raises(EstimateError, match=r"unsupported model_type 'opt'.*pip install 'advisor\[train\]'"):
        generic_spec({"model_type": "opt"}, "x", "x", refused)


PROBE = """
import json, sys
from estimators.catalog import resolve_model
from estimators.pricing import estimate
from estimators.setup import Setup
r = resolve_model({path!r})
estimate(r.spec, Setup(adaptation="lora"))
print(json.dumps(["torch" in sys.modules, "transformers" in sys.modules, r.how]))
"""


def test_known_family_config_json_loads_no_torch(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(hf_config_from_spec(CATALOG["falcon-7b"])))
    out = subprocess.run([sys.executable, "-c", PROBE.format(path=str(tmp_path))], capture_output=True, text=True, check=True)
    torch_loaded, transformers_loaded, how = json.loads(out.stdout.strip().splitlines()[-1])
    assert not torch_loaded and not transformers_loaded and "meta-device" not in how


@pytest.mark.slow  # a fresh interpreter that imports torch and transformers
def test_unknown_family_probe_does_load_torch(tmp_path):
    """The probe above can fail: the generic path is the one that imports torch."""
    path = _write(tmp_path, "opt")
    out = subprocess.run([sys.executable, "-c", PROBE.format(path=path)], capture_output=True, text=True, check=True)
    torch_loaded, _, how = json.loads(out.stdout.strip().splitlines()[-1])
    assert torch_loaded and "meta-device" in how


def test_moe_mixing_dense_layers_goes_to_the_meta_build(tmp_path):
    """Qwen3-MoE with mlp_only_layers: the table prices one layer kind, so the resolver counts the build instead."""
    config = {
        "model_type": "qwen3_moe",
        "hidden_size": 64,
        "intermediate_size": 128,
        "moe_intermediate_size": 32,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "vocab_size": 100,
        "mlp_only_layers": [0],
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    r = resolve_model(str(tmp_path))
    assert is_generic(r.spec) and "meta-device build" in r.how
    cfg = dict(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    assert count_params(r.spec).total == sum(p.numel() for p in model.parameters())
