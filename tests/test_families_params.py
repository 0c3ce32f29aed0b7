"""Issue 15 §1: exact parameter counts and per-layer linear shapes for the families added then (phi, gpt_neox,
falcon, stablelm, olmo, cohere, starcoder2, granite, gpt_bigcode, granitemoe, olmoe), against the model
transformers builds on the meta device (no memory, no weights).

Two levels: small configs that switch every config flag the family tables read (biases, parallel residual,
multi-query / grouped / new decoder architecture, q/k norms, dropouts, tied heads), and the real-size catalog rows
(tests/test_params.py parametrizes every catalog row too; here the published totals pin the transcribed numbers).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

from estimators.catalog import catalog  # noqa: E402
from estimators.families import FAMILIES  # noqa: E402
from estimators.hf_config import hf_config_from_spec, spec_from_hf_config  # noqa: E402
from estimators.params import count_params, layer_linears  # noqa: E402

NEW_FAMILIES = ("phi", "gpt_neox", "falcon", "stablelm", "olmo", "cohere", "starcoder2", "granite", "gpt_bigcode", "granitemoe", "olmoe")
SMALL = {"hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100}
GPT2_SMALL = {"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 100}

# (model_type, config overrides): each family at its defaults and with the flags the table reads switched.
CASES = [
    ("phi", {}),
    ("phi", {"qk_layernorm": True, "num_key_value_heads": 2, "resid_pdrop": 0.1, "tie_word_embeddings": True}),
    ("gpt_neox", {}),
    ("gpt_neox", {"attention_bias": False, "use_parallel_residual": False, "tie_word_embeddings": True}),
    ("falcon", {}),  # 7B layout: multi-query, parallel attention, one norm
    ("falcon", {"multi_query": False}),
    ("falcon", {"new_decoder_architecture": True, "num_kv_heads": 2}),  # 40B layout: grouped kv, ln_attn + ln_mlp
    ("falcon", {"new_decoder_architecture": True, "num_kv_heads": 2, "num_ln_in_parallel_attn": 1, "bias": True}),
    ("falcon", {"parallel_attn": False, "multi_query": False, "bias": True, "ffn_hidden_size": 96}),
    ("falcon", {"n_embed": 64, "new_decoder_architecture": True, "num_kv_heads": 1}),  # n_embed: the old name
    ("stablelm", {"num_key_value_heads": 2}),
    ("stablelm", {"num_key_value_heads": 4, "use_qkv_bias": True, "qk_layernorm": True, "use_parallel_residual": True}),
    ("olmo", {}),
    ("olmo", {"tie_word_embeddings": True, "num_key_value_heads": 2, "attention_bias": True}),
    ("cohere", {}),
    ("cohere", {"use_qk_norm": True, "num_key_value_heads": 2, "attention_bias": True}),
    ("starcoder2", {}),
    ("starcoder2", {"use_bias": False, "tie_word_embeddings": False, "num_key_value_heads": 4}),
    ("granite", {"num_key_value_heads": 2, "tie_word_embeddings": True}),
    ("granite", {"attention_bias": True, "mlp_bias": True}),
    ("gpt_bigcode", {}),
    ("gpt_bigcode", {"multi_query": False, "n_inner": 96, "tie_word_embeddings": False}),
    ("granitemoe", {"num_local_experts": 4, "num_experts_per_tok": 2, "num_key_value_heads": 2}),
    ("granitemoe", {"num_local_experts": 3, "num_experts_per_tok": 1, "attention_bias": True, "tie_word_embeddings": True}),
    ("olmoe", {"num_experts": 4, "num_experts_per_tok": 2, "num_key_value_heads": 2}),
]


def small_config(mt: str, extra: dict) -> dict:
    base = dict(GPT2_SMALL) if FAMILIES[mt].kind == "gpt2" else dict(SMALL)
    if mt == "falcon":
        base.pop("intermediate_size")  # Falcon reads ffn_hidden_size (default 4 x hidden)
        if "n_embed" in extra:
            base.pop("hidden_size")
    return {"model_type": mt, **base, **extra}


def build(config: dict):
    cfg = dict(config)
    mt = cfg.pop("model_type")
    cfg.pop("architectures", None)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(mt, **cfg))


def _is_linear(mod) -> bool:
    return isinstance(mod, (torch.nn.Linear, Conv1D))


def layers_of(model):
    base = model.base_model
    return base.h if hasattr(base, "h") else base.layers


def real_linears(layer) -> dict[str, set[tuple[int, int, bool]]]:
    out: dict = {}
    for name, mod in layer.named_modules():
        if _is_linear(mod):
            w = mod.weight
            shape = (w.shape[1], w.shape[0]) if isinstance(mod, torch.nn.Linear) else (w.shape[0], w.shape[1])
            out.setdefault(name.rsplit(".", 1)[-1], set()).add((*shape, mod.bias is not None))
    return out


def our_linears(spec) -> dict[str, set[tuple[int, int, bool]]]:
    out: dict = {}
    for lin in layer_linears(spec):
        if lin.module:
            out.setdefault(lin.name, set()).add((lin.in_features, lin.out_features, lin.bias))
    return out


def census(model) -> dict[str, int]:
    """Every parameter of the meta model in ParamCounts' buckets."""
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings()  # tied: its weight is the embedding; Phi's bias stays its own
    linear = bias = raw = 0
    for layer in layers_of(model):
        in_linear = set()
        for mod in layer.modules():
            if _is_linear(mod):
                linear += mod.weight.numel()
                bias += mod.bias.numel() if mod.bias is not None else 0
                in_linear.update(id(p) for p in mod.parameters())
        norm_params = {id(p) for m in layer.modules() if "norm" in type(m).__name__.lower() for p in m.parameters()}
        raw += sum(p.numel() for p in layer.parameters() if id(p) not in in_linear | norm_params and p.dim() >= 2)
    positions = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.weight is not emb)
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "embedding": emb.numel() + positions,
        "lm_head": sum(p.numel() for p in head.parameters() if p is not emb),
        "linear": linear,
        "linear_bias": bias,
        "raw_linear": raw,
    }


def _label(case) -> str:
    mt, extra = case
    return mt + ("-" + "-".join(f"{k}={v}" for k, v in extra.items()) if extra else "")


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_small_config_counts_equal_meta_build(case):
    config = small_config(*case)
    spec = spec_from_hf_config(config, _label(case))
    model = build(config)
    pc = count_params(spec)
    real = census(model)
    ours = {k: getattr(pc, k) for k in real}
    assert ours == real
    assert pc.total == pc.embedding + pc.lm_head + pc.linear + pc.linear_bias + pc.norm + pc.raw_linear


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_small_config_linear_shapes_equal_meta_build(case):
    """Names (what LoRA target_modules match), (in, out) shapes and biases of every linear module of a layer."""
    config = small_config(*case)
    spec = spec_from_hf_config(config, _label(case))
    assert our_linears(spec) == real_linears(layers_of(build(config))[0])


@pytest.mark.parametrize("case", CASES, ids=_label)
def test_small_config_round_trips_through_the_config_transformers_writes(case):
    """spec -> config.json -> the config transformers writes (every key, defaults filled) -> the same spec; and
    the model built from hf_config_from_spec has the same parameters as the one built from the original."""
    config = small_config(*case)
    spec = spec_from_hf_config(config, "x")
    written = hf_config_from_spec(spec)
    assert spec_from_hf_config(written, "x") == spec
    cfg = dict(written)
    full = AutoConfig.for_model(cfg.pop("model_type"), **{k: v for k, v in cfg.items() if k != "architectures"})
    assert spec_from_hf_config(full.to_dict(), "x") == spec
    assert sum(p.numel() for p in build(written).parameters()) == sum(p.numel() for p in build(config).parameters())


def test_every_new_family_has_cases_and_catalog_rows():
    assert {mt for mt, _ in CASES} == set(NEW_FAMILIES)
    assert set(NEW_FAMILIES) <= {s.model_type for s in catalog().values()}


@pytest.mark.parametrize("mt", ["phi", "gpt_neox", "falcon", "stablelm", "cohere", "starcoder2", "gpt_bigcode"])
def test_architecture_traits_read_from_the_modeling_code(mt):
    """The traits the activation terms read, as the family's modeling code has them (read from transformers
    5.24; a flag read the wrong way round would price the other layout)."""
    spec = spec_from_hf_config(small_config(mt, {"num_key_value_heads": 4} if mt == "stablelm" else {}), mt)
    expected = {
        "phi": dict(
            parallel_block=True, norms_per_layer=1, norm="layer", gated_mlp=False, lm_head_bias=True, mlp_act="gelu_new", qkv_bias=True, mlp_bias=True
        ),
        "gpt_neox": dict(parallel_block=True, norms_per_layer=2, fused_qkv=True, gated_mlp=False, mlp_act="gelu"),
        "falcon": dict(
            parallel_block=True, norms_per_layer=1, fused_qkv=True, num_kv_heads=1, qkv_bias=False, tie_embeddings=True, intermediate_size=4 * 64
        ),
        "stablelm": dict(norm="layer", gated_mlp=True, qkv_bias=False, parallel_block=False),
        "cohere": dict(norm="layer_nobias", norms_per_layer=1, parallel_block=True, tie_embeddings=True),
        "starcoder2": dict(norm="layer", gated_mlp=False, mlp_act="gelu_pytorch_tanh", qkv_bias=True, mlp_bias=True),
        "gpt_bigcode": dict(
            num_kv_heads=1, learned_positions=True, fused_qkv=True, resid_dropout=True, embed_dropout=True, mlp_act="gelu_pytorch_tanh"
        ),
    }[mt]
    assert {k: getattr(spec, k) for k in expected} == expected


# Published totals (model cards, the Pythia suite's table, safetensors metadata), recalled without network access:
# they pin the transcribed catalog numbers independently of the arithmetic.
KNOWN_TOTALS = {
    "phi-1_5": 1_418_270_720,
    "phi-2": 2_779_683_840,
    "pythia-160m": 162_322_944,
    "pythia-410m": 405_334_016,
    "pythia-1b": 1_011_781_632,
    "pythia-2.8b": 2_775_208_960,
    "pythia-6.9b": 6_857_302_016,
    "pythia-12b": 11_846_072_320,
    "falcon-7b": 6_921_720_704,
    "falcon-40b": 41_303_293_952,
    "stablelm-3b-4e1t": 2_795_443_200,
    "starcoder2-3b": 3_030_371_328,
}


@pytest.mark.parametrize("key", sorted(KNOWN_TOTALS))
def test_published_totals_of_new_rows(key):
    assert count_params(catalog()[key]).total == KNOWN_TOTALS[key]


@pytest.mark.parametrize("key", [k for k, s in catalog().items() if s.model_type in NEW_FAMILIES])
def test_real_size_rows_equal_meta_build(key):
    """Every catalog row of the new families at full size: counts and first-layer linears (meta device, free)."""
    spec = catalog()[key]
    config = hf_config_from_spec(spec)
    model = build(config)
    pc = count_params(spec)
    real = census(model)
    assert {k: getattr(pc, k) for k in real} == real
    assert our_linears(spec) == real_linears(layers_of(model)[0])
