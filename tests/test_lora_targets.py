"""What peft 0.21 wraps, against the estimator's `lora_linears` / `lora_params`, exactly.

Each model is built on the meta device from its catalog row (cut to two layers, `shallow`) and wrapped with the LoraConfig the generated scripts
use; the trainable count peft reports must equal the estimator's. MoE models matter most: on transformers 5 peft
re-targets the old expert and router names onto the fused parameters (lora.ParamWrapper) for Mixtral and Qwen3-MoE,
but not for Qwen2-MoE.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from estimators import terms as t  # noqa: E402
from estimators.catalog import catalog  # noqa: E402
from estimators.effective import for_model  # noqa: E402
from estimators.errors import EstimateError  # noqa: E402
from estimators.hf_config import hf_config_from_spec  # noqa: E402
from estimators.lora_targets import lora_target_names  # noqa: E402
from estimators.model import ModelSpec  # noqa: E402
from estimators.pricing import estimate  # noqa: E402
from estimators.setup import Setup  # noqa: E402

# peft warns that its gate_up_proj rank pattern "did not match" (it does: the count below proves rank 2r) and that
# GPT-2's Conv1D needs fan_in_fan_out; neither matters here.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

CATALOG = catalog()
# One row per family, the MoE rows all (their wrapping differs by model type).
KEYS = [
    "llama-3.2-1b",
    "mistral-7b-v0.3",
    "qwen2.5-0.5b",
    "qwen3-0.6b",
    "gemma-2-2b",
    "phi-3-mini-4k",
    "gpt2",
    "olmo-2-7b",
    "mixtral-8x7b",
    "qwen1.5-moe-a2.7b",
    "qwen3-30b-a3b",
]


def shallow(key: str) -> ModelSpec:
    """The catalog row with two layers: every layer of a row is built alike (by transformers and in the estimator), so
    two layers check the per-layer wrapping and its count, and build and wrap in a tenth of the time of 32."""
    return CATALOG[key].with_(num_layers=min(2, CATALOG[key].num_layers))


def _meta_model(spec: ModelSpec):
    cfg = dict(hf_config_from_spec(spec))
    cfg.pop("architectures")
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))


def _peft_trainable(spec: ModelSpec, setup: Setup) -> int:
    names = lora_target_names(spec, setup)
    config = LoraConfig(
        r=setup.lora_r, lora_alpha=setup.lora_alpha, lora_dropout=setup.lora_dropout, target_modules=list(names) if names else "all-linear"
    )
    model = get_peft_model(_meta_model(spec), config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_catalog_keys_exist():
    assert set(KEYS) <= set(CATALOG), sorted(set(KEYS) - set(CATALOG))


@pytest.mark.parametrize("targets, key", [(targets, key) for targets in ("all-linear", "attention") for key in KEYS])
def test_lora_params_equal_peft(key, targets):
    spec = shallow(key)
    setup = for_model(spec, Setup(adaptation="lora", lora_r=8, lora_targets=targets))  # dropout as peft allows it
    if t.lora_params(spec, setup) == 0:  # e.g. GPT-2 has no q_proj: the estimator warns, peft refuses
        with pytest.raises(ValueError, match="not found"):
            _peft_trainable(spec, setup)
        return
    assert _peft_trainable(spec, setup) == t.lora_params(spec, setup)


@pytest.mark.parametrize(
    "key, targets",
    [
        ("mixtral-8x7b", "w1,w2,w3"),  # the transformers-4 expert names: both halves of gate_up_proj, and down_proj
        ("mixtral-8x7b", "q_proj,v_proj,gate"),  # the router alone
        ("qwen3-30b-a3b", "q_proj,gate_proj,up_proj"),  # gate_up_proj only
        ("qwen3-30b-a3b", "down_proj"),
        ("qwen1.5-moe-a2.7b", "gate_proj,up_proj,down_proj"),  # Qwen2-MoE: only the shared expert's nn.Linear layers
    ],
)
def test_moe_target_lists_equal_peft(key, targets):
    spec = shallow(key)
    setup = for_model(spec, Setup(adaptation="lora", lora_r=4, lora_targets=targets))
    assert _peft_trainable(spec, setup) == t.lora_params(spec, setup) > 0


def test_fused_experts_take_rank_2r_and_no_dropout():
    spec = CATALOG["mixtral-8x7b"]
    setup = Setup(adaptation="lora", lora_r=8, lora_targets="all-linear", lora_dropout=0.05)
    gate_up = next(x for x in t.lora_linears(spec, setup) if x.name == "gate_up_proj")
    assert t.lora_rank(spec, gate_up, setup) == 16
    assert t.lora_factors(spec, gate_up, setup) == [(16 * 8, 4096), (2 * 14336, 16 * 8)]
    with pytest.raises(ValueError, match="lora_dropout"):  # what peft says; for_model turns dropout off
        _peft_trainable(shallow("mixtral-8x7b"), setup)
    assert for_model(spec, setup).lora_dropout == 0.0
    assert estimate(spec, setup).setup.lora_dropout == 0.0
    # attention only: the experts stay frozen, so dropout is kept
    assert for_model(spec, setup.with_(lora_targets="attention")).lora_dropout == 0.05


def test_half_a_fused_pair_is_refused_like_peft():
    spec = CATALOG["mixtral-8x7b"]
    setup = Setup(adaptation="lora", lora_targets="w1,w2", lora_dropout=0.0)
    with pytest.raises(EstimateError, match="w1 and w3"):
        for_model(spec, setup)
    with pytest.raises(ValueError, match="without also targeting w3"):
        _peft_trainable(shallow("mixtral-8x7b"), setup)


def test_wrapped_experts_cost_a_merged_copy_per_layer():
    """The merged expert weights are saved per layer: with checkpointing one layer's worth is rebuilt, without it
    every layer keeps one (as large as the experts themselves)."""
    spec = CATALOG["qwen3-30b-a3b"]
    base = Setup(adaptation="lora", seq_len=512, lora_targets="attention")
    wrapped = base.with_(lora_targets="all-linear")
    experts = sum(x.weight_params for x in t.lora_linears(spec, for_model(spec, wrapped)) if x.group == "expert")
    assert t.merged_weights_saved(spec, base) == 0
    assert t.merged_weights_saved(spec, wrapped) >= 2 * experts  # bf16 copy of every expert of the layer
    no_gc = estimate(spec, wrapped.with_(grad_ckpt=False)).peak_allocated - estimate(spec, base.with_(grad_ckpt=False)).peak_allocated
    assert no_gc > spec.num_layers * 2 * experts
