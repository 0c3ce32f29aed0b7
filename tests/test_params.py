"""count_params / layer_linears against the models transformers builds, for every catalog entry, exactly.

Each catalog row becomes a config.json dict (hf_config_from_spec), transformers builds the model on the meta
device (no memory, no weights) and every count is compared with the real parameters.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

from estimators.catalog import catalog  # noqa: E402
from estimators.hf_config import hf_config_from_spec, spec_from_hf_config  # noqa: E402
from estimators.params import count_params, layer_linears  # noqa: E402

CATALOG = catalog()
KEYS = list(CATALOG)


def _hf_config(spec):
    cfg = dict(hf_config_from_spec(spec))
    cfg.pop("architectures")
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


_BUILT: dict = {}


def build(key):
    """The meta-device model transformers builds for a catalog row (cached: several tests read it): the causal LM, or
    for an encoder the sequence classifier it is priced as."""
    if key not in _BUILT:
        auto = AutoModelForSequenceClassification if CATALOG[key].encoder else AutoModelForCausalLM
        with torch.device("meta"):
            _BUILT[key] = auto.from_config(_hf_config(CATALOG[key]))
    return _BUILT[key]


def decoder_layers(model):
    base = model.base_model  # model.model, model.transformer (GPT-2, Falcon, SantaCoder) or model.gpt_neox
    if hasattr(base, "encoder"):  # BERT, RoBERTa
        return base.encoder.layer
    return base.h if hasattr(base, "h") else base.layers


def _is_linear(mod) -> bool:
    return isinstance(mod, (torch.nn.Linear, Conv1D))  # subclasses too: Falcon's FalconLinear


def layer_census(model):
    """Over all decoder layers: linear-module weights and biases, and raw (non-module) matrices such as experts."""
    linear = bias = raw = 0
    for layer in decoder_layers(model):
        in_linear = set()
        for _, mod in layer.named_modules():
            if _is_linear(mod):
                linear += mod.weight.numel()
                bias += mod.bias.numel() if mod.bias is not None else 0
                in_linear.update(id(p) for p in mod.parameters())
        for _, p in layer.named_parameters():
            if id(p) not in in_linear and p.dim() >= 2:
                raw += p.numel()
    return linear, bias, raw


@pytest.mark.parametrize("key", KEYS)
def test_total_matches_transformers(key):
    spec = CATALOG[key]
    model = build(key)
    real = sum(p.numel() for p in model.parameters())  # tied weights once: parameters() de-duplicates
    pc = count_params(spec)
    assert pc.total == real, f"{key}: count_params {pc.total:,} vs transformers {real:,} ({pc.total - real:+,})"
    assert pc.total == pc.embedding + pc.lm_head + pc.linear + pc.linear_bias + pc.norm + pc.raw_linear


@pytest.mark.parametrize("key", KEYS)
def test_linear_split_matches_transformers(key):
    spec = CATALOG[key]
    model = build(key)
    linear, bias, raw = layer_census(model)
    pc = count_params(spec)
    assert pc.linear == linear  # what bitsandbytes quantizes: nn.Linear (and GPT-2's Conv1D) in decoder layers
    assert pc.linear_bias == bias
    assert pc.raw_linear == raw  # transformers 5 MoE: stacked expert / router parameters
    assert bool(raw) == spec.experts_fused

    emb = model.get_input_embeddings().weight.numel()
    if spec.encoder:  # word, position and token-type tables; the head is the classifier on the first token
        emb += model.base_model.embeddings.position_embeddings.weight.numel() + model.base_model.embeddings.token_type_embeddings.weight.numel()
        assert pc.embedding == emb
        assert model.get_output_embeddings() is None
        head_modules = [model.classifier] + ([model.base_model.pooler] if getattr(model.base_model, "pooler", None) is not None else [])
        assert pc.lm_head == sum(p.numel() for mod in head_modules for p in mod.parameters())
        return
    if spec.learned_positions:
        emb += model.transformer.wpe.weight.numel()
    assert pc.embedding == emb
    head = model.get_output_embeddings().weight
    tied = head is model.get_input_embeddings().weight
    assert tied == spec.tie_embeddings
    bias = model.get_output_embeddings().bias
    head_bias = bias.numel() if bias is not None else 0  # Phi's lm_head has a bias
    assert pc.lm_head == (0 if tied else head.numel()) + head_bias


@pytest.mark.parametrize("key", KEYS)
def test_layer_linears_names_and_shapes(key):
    """Names are the module names LoRA's target_modules match; shapes are (in, out) of the real modules."""
    spec = CATALOG[key]
    layer = decoder_layers(build(key))[0]
    real = {}
    for name, mod in layer.named_modules():
        if _is_linear(mod):
            leaf = name.rsplit(".", 1)[-1]
            shape = tuple(mod.weight.shape[::-1]) if isinstance(mod, torch.nn.Linear) else tuple(mod.weight.shape)
            real.setdefault(leaf, set()).add(shape)
    ours = {}
    for lin in layer_linears(spec):
        if lin.module:
            ours.setdefault(lin.name, set()).add((lin.in_features, lin.out_features))
    assert ours == real


@pytest.mark.parametrize("key", [k for k in KEYS if CATALOG[k].is_moe])
def test_moe_active_by_hand(key):
    s = CATALOG[key]
    pc = count_params(s)
    h, i, L = s.hidden_size, s.expert_intermediate, s.num_layers
    idle = L * (s.num_experts - s.experts_per_token) * 3 * h * i  # gate, up and down of each unused expert
    assert pc.active == pc.total - idle
    # the raw expert tensors are exactly [E, 2I, H] + [E, H, I] plus the [E, H] router per layer
    layer = decoder_layers(build(key))[0]
    moe = layer.mlp if hasattr(layer, "mlp") else layer.block_sparse_moe  # Granite MoE's name
    assert tuple(moe.experts.gate_up_proj.shape) == (s.num_experts, 2 * i, h)
    assert tuple(moe.experts.down_proj.shape) == (s.num_experts, h, i)
    assert pc.raw_linear == L * s.num_experts * (3 * h * i + h)


# Published totals (model cards / safetensors metadata): they check the catalog numbers, not only the arithmetic.
KNOWN_TOTALS = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-13b": 13_015_864_320,
    "llama-2-70b": 68_976_648_192,
    "llama-3.1-8b": 8_030_261_248,
    "llama-3.1-70b": 70_553_706_496,
    "llama-3.1-405b": 405_853_388_800,
    "llama-3.2-1b": 1_235_814_400,
    "llama-3.2-3b": 3_212_749_824,
    "mistral-7b-v0.1": 7_241_732_096,
    "mistral-7b-v0.3": 7_248_023_552,
    "mixtral-8x7b": 46_702_792_704,
    "tinyllama-1.1b": 1_100_048_384,
    "gpt2": 124_439_808,
    "gpt2-xl": 1_557_611_200,
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-7b": 7_615_616_512,
    "gemma-7b": 8_537_680_896,
    "gemma-2-2b": 2_614_341_888,
    "gemma-2-9b": 9_241_705_984,
    "gemma-3-1b": 999_885_952,
    "phi-3-mini-4k": 3_821_079_552,
    "smollm2-135m": 134_515_008,
    # BertForSequenceClassification / RobertaForSequenceClassification with 2 labels: the base models' published
    # 109,482,240 (BERT base, pooler included) and 124,055,040 (RoBERTa base, no pooler) plus the heads
    "bert-base-uncased": 109_483_778,
    "roberta-base": 124_647_170,
}


@pytest.mark.parametrize("key", sorted(KNOWN_TOTALS))
def test_published_totals(key):
    assert count_params(CATALOG[key]).total == KNOWN_TOTALS[key]


def test_mixtral_active_published():
    assert count_params(CATALOG["mixtral-8x7b"]).active == 12_879_925_248


@pytest.mark.parametrize("key", KEYS)
def test_round_trip_spec_config_spec(key):
    spec = CATALOG[key]
    cfg = hf_config_from_spec(spec)
    back = spec_from_hf_config(cfg, spec.name)
    assert replace(back, hf_id=spec.hf_id, source=spec.source) == spec
    # and from the config.json transformers itself would write (every key, nulls, layer_types, ...)
    written = _hf_config(spec).to_dict()
    back = spec_from_hf_config(written, spec.name)
    assert replace(back, hf_id=spec.hf_id, source=spec.source) == spec


@pytest.mark.parametrize("key", ["gemma-3-4b", "gemma-3-27b"])
def test_gemma3_multimodal_config_reads_text_decoder(key):
    from transformers import Gemma3Config

    spec = CATALOG[key]
    text = _hf_config(spec).to_dict()
    written = Gemma3Config(text_config=text).to_dict()
    assert written["model_type"] == "gemma3"
    back = spec_from_hf_config(written, spec.name)
    assert replace(back, hf_id=spec.hf_id, source=spec.source) == spec
