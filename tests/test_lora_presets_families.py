"""LoRA presets and modules_to_save resolved per model family (issue 15 §1 and §2).

"qv" means the query and value projections, "attention" every attention linear, whatever the family calls them
(GPT-NeoX's fused query_key_value, GPT-2's c_attn and attn.c_proj); modules_to_save's roles embed_tokens / lm_head
become the family's own module names (GPT-2's wte, GPT-NeoX's embed_in, Falcon's word_embeddings). The estimate,
the generated script's LoraConfig and `advisor measure` read the one resolution in estimators/lora_targets.py, so what is
priced is what peft wraps: checked here on meta-device models built by transformers (no weights, no download).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from estimators import terms as t
from estimators.catalog import catalog
from estimators.errors import EstimateError
from estimators.lora_targets import lora_target_names, lora_target_text, modules_to_save_names
from estimators.model import ModelSpec
from estimators.option_terms import saved_module_params
from estimators.params import LINEAR_NAMES, linear_names
from estimators.pricing import estimate
from estimators.setup import Setup

CATALOG = catalog()
# One catalog row per family of params.LINEAR_NAMES, plus Llama (the default names) and Phi-3 (default names, fused q/k/v).
ROWS = {
    "llama": "llama-3.2-1b",
    "gpt2": "gpt2",
    "gpt_bigcode": "santacoder",
    "gpt_neox": "pythia-160m",
    "falcon": "falcon-7b",
    "phi": "phi-1_5",
    "starcoder2": "starcoder2-3b",
    "granitemoe": "granite-3.0-1b-a400m",
    "phi3": "phi-3-mini-4k",
    "bert": "bert-base-uncased",
    "roberta": "roberta-base",
}
LLAMA_QV, LLAMA_ATTENTION = ("q_proj", "v_proj"), ("q_proj", "k_proj", "v_proj", "o_proj")
# family -> (qv, attention, modules_to_save of "embed_tokens,lm_head"), read from transformers 5's modeling_*.py
RESOLVED = {
    "llama": (LLAMA_QV, LLAMA_ATTENTION, ("embed_tokens", "lm_head")),
    "gpt2": (("c_attn",), ("c_attn", "attn.c_proj"), ("wte", "lm_head")),
    "gpt_bigcode": (("c_attn",), ("c_attn", "attn.c_proj"), ("wte", "lm_head")),
    "gpt_neox": (("query_key_value",), ("query_key_value", "dense"), ("embed_in", "lm_head")),
    "falcon": (("query_key_value",), ("query_key_value", "dense"), ("word_embeddings", "lm_head")),
    "phi": (LLAMA_QV, ("q_proj", "k_proj", "v_proj", "dense"), ("embed_tokens", "lm_head")),
    "starcoder2": (LLAMA_QV, LLAMA_ATTENTION, ("embed_tokens", "lm_head")),
    "granitemoe": (LLAMA_QV, LLAMA_ATTENTION, ("embed_tokens", "lm_head")),
    "phi3": (("qkv_proj",), ("qkv_proj", "o_proj"), ("embed_tokens", "lm_head")),
    # encoders: attention.self.{query,key,value}, attention.output.dense; the head role is the classifier
    "bert": (("query", "value"), ("query", "key", "value", "attention.output.dense"), ("word_embeddings", "classifier")),
    "roberta": (("query", "value"), ("query", "key", "value", "attention.output.dense"), ("word_embeddings", "classifier")),
}
BOTH = "embed_tokens,lm_head"


def _setup(preset: str, saved: str = "") -> Setup:
    return Setup(adaptation="lora", lora_r=8, lora_alpha=16, lora_dropout=0.0, lora_targets=preset, modules_to_save=saved)


# ------------------------------------------------------------------------------------------------ pure estimator
def test_every_named_family_has_a_row():
    assert {CATALOG[key].model_type for key in ROWS.values()} == set(LINEAR_NAMES) | {"llama", "phi3"}


@pytest.mark.parametrize("family", sorted(ROWS))
def test_presets_and_saved_modules_resolve_to_the_family_names(family):
    spec = CATALOG[ROWS[family]]
    qv, attention, saved = RESOLVED[family]
    assert lora_target_names(spec, _setup("qv")) == qv
    assert lora_target_names(spec, _setup("attention")) == attention
    assert lora_target_names(spec, _setup("all-linear")) == ()
    assert modules_to_save_names(spec, _setup("qv", BOTH)) == saved
    assert modules_to_save_names(spec, _setup("qv", "lm_head")) == saved[1:]
    assert t.lora_params(spec, _setup("qv")) > 0
    # Granite MoE's experts and router are raw parameters "all-linear" leaves alone: there it is "attention"
    assert t.lora_params(spec, _setup("qv")) < t.lora_params(spec, _setup("attention")) <= t.lora_params(spec, _setup("all-linear"))


def test_llama_presets_and_lists_are_priced_as_before():
    spec = CATALOG["llama-3.2-1b"]
    h, kv, L, r = spec.hidden_size, spec.kv_width, spec.num_layers, 8
    assert t.lora_params(spec, _setup("qv")) == L * r * ((h + h) + (h + kv)) == t.lora_params(spec, _setup("q_proj,v_proj"))
    assert t.lora_params(spec, _setup("attention")) == t.lora_params(spec, _setup(",".join(LLAMA_ATTENTION)))


def test_a_user_list_is_passed_as_given():
    assert lora_target_names(CATALOG["gpt2"], _setup("c_attn, c_fc")) == ("c_attn", "c_fc")


def test_gpt2_attention_leaves_the_mlp_c_proj_frozen():
    spec = CATALOG["gpt2"]
    h, inter, L, r = spec.hidden_size, spec.intermediate_size, spec.num_layers, 8
    c_attn, attn_proj, mlp_proj = r * (h + 3 * h), r * (h + h), r * (inter + h)
    assert t.lora_params(spec, _setup("attention")) == L * (c_attn + attn_proj)
    assert t.lora_params(spec, _setup("attn.c_proj")) == L * attn_proj  # the qualified name is a valid target too
    assert t.lora_params(spec, _setup("c_proj")) == L * (attn_proj + mlp_proj)  # a bare name: both, as in peft


def test_the_estimate_says_what_the_preset_became():
    est = estimate(CATALOG["pythia-160m"], _setup("qv"))
    note = next(x.note for x in est.terms if x.name == "LoRA adapters")
    assert note == "A and B in fp32, on query_key_value (fused q, k, v: peft adapts the whole matrix)"
    assert est.trainable == t.lora_params(CATALOG["pythia-160m"], _setup("qv")) > 0
    assert not [w for w in est.warnings if "match no linear layer" in w]
    assert lora_target_text(CATALOG["llama-3.2-1b"], _setup("attention")) == "q_proj, k_proj, v_proj, o_proj"
    assert lora_target_text(CATALOG["llama-3.2-1b"], _setup("all-linear")) == "all linear layers"


def test_estimate_cli_prices_qv_on_a_fused_family(advisor_main):
    out = advisor_main("estimate", "--model", "pythia-160m", "--lora-targets", "qv", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"]["trainable_params"] == t.lora_params(CATALOG["pythia-160m"], Setup(lora_targets="qv")) > 0
    assert any(x["note"].endswith("on query_key_value (fused q, k, v: peft adapts the whole matrix)") for x in data["terms"])


def _census_spec(linears: list[dict], names: dict | None = None) -> ModelSpec:
    """A family without a table, as advisor.measure.census records it (only what the resolution reads)."""
    census = {"linears": [{"bias": False, "count": 1, "module": True, **x} for x in linears]} | ({"names": names} if names else {})
    return ModelSpec("mystery-1b", "mystery", 64, 256, 2, 4, 4, 1000, extra={"census": census})


def test_a_census_family_resolves_by_the_usual_spellings():
    spec = _census_spec(
        [
            {"name": "query", "in_features": 64, "out_features": 64, "group": "attention"},
            {"name": "key", "in_features": 64, "out_features": 64, "group": "attention"},
            {"name": "value", "in_features": 64, "out_features": 64, "group": "attention"},
            {"name": "out", "in_features": 64, "out_features": 64, "group": "attention"},
            {"name": "up", "in_features": 64, "out_features": 256, "group": "mlp"},
        ],
        names={"embed": "tok_embeddings", "head": "output"},
    )
    assert lora_target_names(spec, _setup("qv")) == ("query", "value")
    assert lora_target_names(spec, _setup("attention")) == ("query", "key", "value", "out")
    assert modules_to_save_names(spec, _setup("qv", BOTH)) == ("tok_embeddings", "output")


def test_a_preset_the_model_cannot_resolve_names_the_valid_modules():
    spec = _census_spec(
        [
            {"name": "Wqkv_a", "in_features": 64, "out_features": 64, "group": "attention"},
            {"name": "Wqkv_b", "in_features": 64, "out_features": 128, "group": "attention"},
            {"name": "up", "in_features": 64, "out_features": 256, "group": "mlp"},
        ]
    )
    with pytest.raises(
        EstimateError, match=r"--lora-targets qv means the query and value projections, .* \(valid: Wqkv_a, Wqkv_b, up\) or use all-linear"
    ):
        lora_target_names(spec, _setup("qv"))
    from estimators.checks import lora_target_problem

    assert lora_target_problem(spec, _setup("qv")).startswith("--lora-targets qv means")
    assert lora_target_problem(spec, _setup("attention")) is None


# ------------------------------------------------------------------------------------------------ the generated run
@pytest.mark.parametrize("key, targets", [("pythia-160m", ["query_key_value"]), ("gpt2", ["c_attn"]), ("llama-3.2-1b", list(LLAMA_QV))])
def test_generated_script_and_readme_name_what_was_priced(key, targets):
    from test_scriptgen import blocks_of, make_plan

    from advisor.scriptgen import render

    files = render(make_plan([("sft", "sft", "instruction", "", "", "bundled")], _setup("qv"), model=key, hf_id=key))
    assert blocks_of(files["train_sft.py"])["LORA"]["target_modules"] == targets
    assert f"on {lora_target_text(CATALOG[key], _setup('qv'))} |" in files["README.md"]
    assert (" (fused q, k, v: peft adapts the whole matrix)" in files["README.md"]) == CATALOG[key].fused_qkv


# ------------------------------------------------------------------------------------------------ against peft
def _meta_model(key: str):
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from estimators.hf_config import hf_config_from_spec

    cfg = dict(hf_config_from_spec(CATALOG[key]))
    cfg.pop("architectures")
    auto = AutoModelForSequenceClassification if CATALOG[key].encoder else AutoModelForCausalLM  # what an encoder is priced as
    with torch.device("meta"):
        return auto.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))


def _wrap(key: str, setup: Setup):
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    spec = CATALOG[key]
    names = lora_target_names(spec, setup)
    config = LoraConfig(
        r=setup.lora_r,
        lora_alpha=setup.lora_alpha,
        lora_dropout=setup.lora_dropout,
        target_modules=list(names) or "all-linear",
        modules_to_save=list(modules_to_save_names(spec, setup)) or None,
    )
    return get_peft_model(_meta_model(key), config)


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# peft warns that GPT-2's Conv1D needs fan_in_fan_out, and transformers about GPT-2 token ids past a small vocabulary
@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("preset", ["qv", "attention"])
@pytest.mark.parametrize("family", sorted(ROWS))
def test_peft_wraps_what_the_preset_priced(family, preset):
    key, setup = ROWS[family], _setup(preset)
    model = _wrap(key, setup)  # peft raises "Target modules ... not found" for a name the model does not have
    assert _trainable(model) == t.lora_params(CATALOG[key], setup) > 0
    wrapped = {name for name, module in model.named_modules() if hasattr(module, "lora_A") and not name.endswith(("lora_A", "lora_B"))}
    scope = ".attention." if CATALOG[key].encoder else f".{linear_names(CATALOG[key])['attn']}."  # BERT: attention.self / .output
    assert all(scope in name for name in wrapped), sorted(wrapped)[:4]  # attention linears only (never GPT-2's mlp.c_proj)
    per_layer = {"qv": len(RESOLVED[family][0]), "attention": len(RESOLVED[family][1])}[preset]
    assert len(wrapped) == per_layer * CATALOG[key].num_layers


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("family", sorted(ROWS))
def test_modules_to_save_name_modules_the_model_has_and_are_priced(family):
    from peft.utils import ModulesToSaveWrapper

    key, setup = ROWS[family], _setup("qv", BOTH)
    spec = CATALOG[key]
    leaves = {name.rsplit(".", 1)[-1] for name, _ in _meta_model(key).named_modules()}
    assert set(modules_to_save_names(spec, setup)) <= leaves
    model = _wrap(key, setup)
    copied = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, ModulesToSaveWrapper)}
    assert copied == set(RESOLVED[family][2])
    # each copy trained in full, a tied head too (peft deep-copies it), next to the adapters the estimate prices
    assert _trainable(model) == t.lora_params(spec, setup) + sum(saved_module_params(spec, setup).values())
    assert estimate(spec, setup).trainable == _trainable(model)  # the "N trainable" the estimate shows counts the copies


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
def test_the_estimates_trainable_count_is_peft_s_with_dora_and_saved_modules():
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model

    key = "pythia-160m"
    spec, setup = CATALOG[key], _setup("qv", BOTH).with_(dora=True)
    config = LoraConfig(
        r=setup.lora_r,
        lora_alpha=setup.lora_alpha,
        target_modules=list(lora_target_names(spec, setup)),
        modules_to_save=list(modules_to_save_names(spec, setup)),
        use_dora=True,
    )
    model = get_peft_model(_meta_model(key), config)
    assert estimate(spec, setup).trainable == _trainable(model) > t.lora_params(spec, setup)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")
@pytest.mark.parametrize("key", ["pythia-160m", "gpt2", "phi-1_5"])
def test_a_meta_device_census_resolves_like_the_family_table(key):
    """The path for a family with no table (advisor.measure.census), tried on families that have one."""
    pytest.importorskip("transformers")
    from advisor.measure.census import census_spec
    from estimators.hf_config import hf_config_from_spec

    spec = CATALOG[key]
    census = replace(census_spec(dict(hf_config_from_spec(spec)), spec.name, "test"), model_type="unlisted")  # no table
    assert modules_to_save_names(census, _setup("qv", BOTH)) == modules_to_save_names(spec, _setup("qv", BOTH))
    assert lora_target_names(census, _setup("qv")) == lora_target_names(spec, _setup("qv"))
    assert t.lora_params(census, _setup("qv")) == t.lora_params(spec, _setup("qv"))
