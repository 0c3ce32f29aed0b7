"""Issue 15 §1: LoRA shapes of the new families equal what peft wraps, on two-layer meta-device models (no memory).

"all-linear" and each family's usual target list (peft's own defaults: query_key_value for GPT-NeoX and Falcon,
c_attn for SantaCoder, q/v for the rest); for the MoE families, whose experts and router are raw parameters that
peft 0.21's conversion table does not name, only the attention linears are wrapped."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from peft import LoraConfig, get_peft_model  # noqa: E402
from test_lora_targets import shallow  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM  # noqa: E402

from estimators import terms as t  # noqa: E402
from estimators.catalog import catalog  # noqa: E402
from estimators.effective import for_model  # noqa: E402
from estimators.hf_config import hf_config_from_spec  # noqa: E402
from estimators.lora_targets import lora_target_names  # noqa: E402
from estimators.model import ModelSpec  # noqa: E402
from estimators.setup import Setup  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

CATALOG = catalog()
ROWS = {  # one row per new family -> a target list people use with it
    "phi-1_5": "q_proj,k_proj,v_proj,dense",
    "pythia-160m": "query_key_value",
    "falcon-7b": "query_key_value,dense",
    "stablelm-2-1_6b": "q_proj,v_proj",
    "olmo-1b": "q_proj,v_proj",
    "aya-23-8b": "q_proj,v_proj",
    "starcoder2-3b": "q_proj,v_proj,c_fc",
    "granite-3.0-2b": "q_proj,v_proj",
    "santacoder": "c_attn",
    "granite-3.0-1b-a400m": "q_proj,v_proj",
    "olmoe-1b-7b": "q_proj,v_proj",
}


def _peft_trainable(spec: ModelSpec, setup: Setup) -> int:
    cfg = dict(hf_config_from_spec(spec))
    cfg.pop("architectures")
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    names = lora_target_names(spec, setup)
    config = LoraConfig(
        r=setup.lora_r, lora_alpha=setup.lora_alpha, lora_dropout=setup.lora_dropout, target_modules=list(names) if names else "all-linear"
    )
    model = get_peft_model(model, config)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("key", sorted(ROWS))
@pytest.mark.parametrize("which", ["all-linear", "family list"])
def test_lora_params_equal_peft(key, which):
    spec = shallow(key)
    targets = "all-linear" if which == "all-linear" else ROWS[key]
    setup = for_model(spec, Setup(adaptation="lora", lora_r=8, lora_targets=targets))
    ours = t.lora_params(spec, setup)
    assert ours > 0
    assert _peft_trainable(spec, setup) == ours
