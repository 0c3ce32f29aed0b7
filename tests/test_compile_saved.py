"""`--torch-compile` (issue 15 §2): what Inductor's partitioner saves per decoder layer (estimators/terms.py
compiled_layer_saved), by hand for Llama 2 7B and against every layer measured on CPU (advisor/measure/compile_saved.py,
recorded in bench/compile_saved.txt); where it is priced as eager, what the estimate and the scripts say."""

import json
from pathlib import Path

import pytest

from estimators import estimate
from estimators import terms as t
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.hf_config import spec_from_hf_config
from estimators.setup import Setup

ROOT = Path(__file__).resolve().parents[1]
L7 = resolve_model("7b").spec
LORA = Setup(torch_compile=True, grad_ckpt=False)


def _measured() -> list[dict]:
    lines = (ROOT / "bench" / "compile_saved.txt").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _spec(row: dict):
    fields = ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim")
    config = {k: row[k] for k in fields if k in row}
    config.update(model_type=row["model_type"], num_hidden_layers=1, vocab_size=256, max_position_embeddings=row["tokens"], hidden_act="silu")
    return spec_from_hf_config(config, row["config"])


def _setup(row: dict) -> Setup:
    adaptation = "full" if row["mode"] == "full" else "lora"
    return Setup(
        adaptation=adaptation, lora_r=16, lora_dropout=row["lora_dropout"] or 0.0, torch_compile=True, seq_len=row["tokens"], grad_ckpt=False
    )


# ------------------------------------------------------------------------------------------------ by hand
def test_llama_7b_lora_layer_by_hand():
    """h 4096, i 11008, 32 heads, bf16, LoRA r16 all-linear, dropout 0.05: per token."""
    norms = 2 * (2 * 4096 + 4)  # each RMSNorm's bf16 input and fp32 1/rms
    attention = 2 * (4096 + 4096 + 4096 + 4096) + 4 * 32  # q, k after rotary, v, output; fp32 log-sum-exp per head
    mlp = 2 * 2 * 11008  # gate and up
    lora = 7 * 2 * 16 + 6 * 3 * 4096 + 3 * 11008  # lora_B inputs; each branch's dropout output (bf16) and bool mask
    assert t.compiled_layer_saved(L7, LORA) == norms + attention + mlp + lora == 200_296
    eager = 2 * 4 * 4096 + attention + 3 * 2 * 11008 + lora  # fp32 norm inputs, the activation output too
    assert t.layer_norms_saved(L7, LORA) + t.attention_saved(L7, LORA) + t.mlp_saved(L7, LORA) + t.lora_saved(L7, LORA) == eager


def test_without_dropout_the_branches_share_their_inputs():
    s = LORA.with_(lora_dropout=0.0)
    shared = 2 * (4096 + 4096 + 4096 + 11008)  # attention norm out, attention output, MLP norm out, MLP product
    assert t.compiled_lora_saved(L7, s) == 7 * 2 * 16 + shared


def test_full_fine_tuning_keeps_each_trained_matmul_input_once():
    s = LORA.with_(adaptation="full")
    base = 2 * (2 * 4096 + 4) + 2 * 4 * 4096 + 4 * 32 + 2 * 2 * 11008
    assert t.compiled_layer_saved(L7, s) == base + 2 * (2 * 4096 + 11008)  # both norm outputs and the MLP product


def test_the_estimate_saves_less_by_the_layers_difference():
    eager, compiled = estimate(L7, LORA.with_(torch_compile=False)), estimate(L7, LORA)
    per_token = 238_688 - 200_296
    acts = [v.bytes for v in eager.phases["forward"] if v.name == "saved activations"][0]
    acts_c = [v.bytes for v in compiled.phases["forward"] if v.name == "saved activations"][0]
    assert acts - acts_c == 32 * 2048 * per_token
    assert compiled.peak_allocated < eager.peak_allocated


def test_with_checkpointing_only_the_recomputed_layer_changes():
    eager, compiled = estimate(L7, Setup()), estimate(L7, Setup(torch_compile=True))
    forward = [v.bytes for v in eager.phases["forward"] if v.name == "saved activations"]
    assert forward == [v.bytes for v in compiled.phases["forward"] if v.name == "saved activations"]
    top = [v.bytes for v in eager.phases["backward (top layer)"] if v.name == "saved activations"][0]
    top_c = [v.bytes for v in compiled.phases["backward (top layer)"] if v.name == "saved activations"][0]
    assert top - top_c == 2048 * (238_688 - 200_296)


# ------------------------------------------------------------------------------------------------ against the measured layers
@pytest.mark.parametrize("row", _measured(), ids=lambda r: f"{r['config']}-{r['mode']}")
def test_the_formula_is_what_the_compiled_layer_saved(row):
    spec, setup = _spec(row), _setup(row)
    assert t.compile_priced(spec, setup)
    assert t.compiled_layer_saved(spec, setup) == row["compiled_per_token"]


def test_the_recording_covers_both_families_and_every_mode():
    rows = _measured()
    assert {(r["config"], r["mode"]) for r in rows} >= {
        (c, m) for c in ("llama-mha", "llama-gqa", "qwen3-gqa") for m in ("full", "lora", "lora-dropout")
    }


# ------------------------------------------------------------------------------------------------ where it is not priced
@pytest.mark.parametrize(
    "changes, why",
    [
        ({"adaptation": "qlora"}, "qlora"),
        ({"precision": "bf16-mixed"}, "bf16-mixed"),
    ],
)
def test_unmeasured_set_ups_are_priced_as_eager_and_say_so(changes, why):
    s = LORA.with_(**changes)
    assert not t.compile_priced(L7, s)
    assert estimate(L7, s).peak_allocated == estimate(L7, s.with_(torch_compile=False)).peak_allocated
    assert any("priced as eager" in w and why in w for w in estimate(L7, s).warnings)


def test_an_unmeasured_family_is_priced_as_eager():
    gpt2 = resolve_model("gpt2").spec
    assert not t.compile_priced(gpt2, LORA)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"stack": "litgpt"}, "--torch-compile is not an option of --stack litgpt"),
        ({"train": "ppo"}, "--torch-compile is not an option of TRL's ppo trainer"),
    ],
)
def test_refused_where_nothing_would_compile(changes, message):
    with pytest.raises(EstimateError, match=message):
        Setup(torch_compile=True, **changes)


# ------------------------------------------------------------------------------------------------ what the user sees
def test_estimate_lists_it_as_priced(advisor_main):
    result = advisor_main("estimate", "--model", "7b", "--torch-compile", "--json")
    assert result.returncode == 0, result.stderr
    ids = [b["id"] for b in json.loads(result.stdout)["stack"]["behaviours"]]
    assert ids == ["torch-compile"]
    qlora = advisor_main("estimate", "--model", "7b", "--torch-compile", "--method", "qlora", "--json")
    assert [b["id"] for b in json.loads(qlora.stdout)["stack"]["behaviours"]] == []


def test_the_script_compiles_what_was_priced():
    from advisor.scriptgen import readme_words, trl_names

    hyper = {
        "learning_rate": 2e-4,
        "epochs": 1.0,
        "max_steps": -1,
        "warmup_ratio": 0.03,
        "lr_scheduler": "cosine",
        "weight_decay": 0.0,
        "seed": 42,
        "logging_steps": 1,
        "save_steps": 2,
        "beta": 0.1,
    }
    assert trl_names.training(Setup(torch_compile=True), hyper, "sft")["torch_compile"] is True
    assert "torch_compile" not in trl_names.training(Setup(), hyper, "sft")
    assert "compiled with torch.compile (Inductor)" in readme_words.optimizer_words(Setup(torch_compile=True))
