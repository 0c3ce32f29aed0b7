"""advisor.scriptgen.trl_names: the estimator's names -> TRL's. Every name it writes is a field of the installed
TRL config class of its kind (trl 1.12's PPOConfig where its environment exists), of peft's LoraConfig, of
BitsAndBytesConfig and of TRL's ModelConfig; the translation of every kind x adaptation matches its golden; a stage
script carries no field of another kind; common.py is written once per run folder and is the same for every plan.

Set ADVISOR_REGEN_GOLDEN=1 to rewrite tests/golden/scriptgen/trl_names.json after an intended change.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import subprocess
from pathlib import Path

import pytest
from test_scriptgen import ADAPTATIONS, RLHF, _kind_plan, blocks_of, make_plan

from advisor.plan import Hyper
from advisor.scriptgen import render, trl_names, write_run
from advisor.scriptgen.scripts import render_common, stage_scripts
from estimators.catalog import TINY_SPEC
from estimators.setup import ATTENTIONS, OPTIMIZERS, PRECISIONS, TRL_OFFLOAD_KINDS, Setup

GOLDEN = Path(__file__).parent / "golden" / "scriptgen" / "trl_names.json"
SCRIPT_KINDS = tuple(trl_names.TRL_CONFIG)  # sft, reward, dpo, grpo, rloo, ppo


def _fields(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _hyper() -> dict:
    return Hyper(learning_rate=2e-4, epochs=1.0, save_steps=2).to_data()


def _setup(adaptation: str) -> Setup:
    return Setup(adaptation=adaptation, micro_batch=3, grad_accum=5, seq_len=777, lora_r=8, lora_alpha=24, lora_dropout=0.1, lora_targets="qv")


def _blocks(setup: Setup, kind: str) -> dict:
    return {
        "training": trl_names.training(setup, _hyper(), kind),
        "model": trl_names.model(setup, False),
        "lora": trl_names.lora(setup, kind, TINY_SPEC),
        "quant": trl_names.quant(setup),
    }


def translations() -> dict:
    """Every kind x adaptation as trl_names writes it; then SFT under each precision, optimizer and reference
    choice, and QLoRA under FSDP."""
    out = {}
    for kind in SCRIPT_KINDS:
        for adaptation in ADAPTATIONS:
            out[f"{kind}-{adaptation}"] = _blocks(_setup(adaptation).with_(train="ppo" if kind == "rloo" else kind), kind)
    for precision in PRECISIONS:
        for adaptation in ADAPTATIONS if precision in ("bf16", "fp16") else ("full", "lora"):  # QLoRA computes in 16 bits
            out[f"sft-{adaptation}-{precision}"] = _blocks(_setup(adaptation).with_(precision=precision), "sft")
    for optimizer in OPTIMIZERS:
        out[f"sft-full-{optimizer}"] = _blocks(_setup("full").with_(optimizer=optimizer), "sft")
    for ref in ("precomputed", "none"):
        out[f"dpo-lora-ref-{ref}"] = _blocks(_setup("lora").with_(train="dpo", ref_model=ref), "dpo")
        out[f"grpo-lora-ref-{ref}"] = _blocks(_setup("lora").with_(train="grpo", ref_model=ref), "grpo")
    out["sft-qlora-fsdp"] = _blocks(_setup("qlora").with_(parallel="fsdp", gpus=2, kbit_upcast=False, grad_ckpt=False, attention="flash"), "sft")
    # the options scripts run since issue 15 §2 (tests/test_scriptgen_options.py): DoRA, modules_to_save, offloading, GaLore
    out["sft-lora-dora-modules_to_save"] = _blocks(_setup("lora").with_(dora=True, modules_to_save="embed_tokens,lm_head"), "sft")
    for kind in TRL_OFFLOAD_KINDS:
        out[f"{kind}-qlora-act_offload"] = _blocks(_setup("qlora").with_(train=kind, act_offload=True), kind)
    out["sft-full-galore"] = _blocks(_setup("full").with_(galore=True), "sft")
    out["sft-lora-torch_compile"] = _blocks(_setup("lora").with_(torch_compile=True), "sft")  # tests/test_compile_saved.py
    return out


def test_translation_matches_its_golden():
    got = json.dumps(translations(), indent=1, sort_keys=False) + "\n"
    if os.environ.get("ADVISOR_REGEN_GOLDEN"):
        GOLDEN.write_text(got, encoding="utf-8")
    assert got == GOLDEN.read_text(encoding="utf-8"), "the translation changed (ADVISOR_REGEN_GOLDEN=1 rewrites its golden)"


def test_the_estimator_names_translated_exist_in_setup_and_hyper():
    setup_fields = set(Setup().to_dict())
    assert set(trl_names.SETUP_NAMES) <= setup_fields
    assert set(trl_names.HYPER_NAMES) <= set(_hyper())
    assert all(set(names) <= setup_fields for names in trl_names.KIND_NAMES.values())
    assert set(trl_names.COMPUTED_NAMES) <= setup_fields | set(_hyper())
    assert set(trl_names.OPTIM) == set(OPTIMIZERS) and set(trl_names.ATTENTION) == set(ATTENTIONS)


@pytest.mark.parametrize("kind", [k for k in SCRIPT_KINDS if k != "ppo"])
def test_every_training_name_is_a_field_of_the_installed_trl_config(kind):
    import trl

    fields = _fields(getattr(trl, trl_names.TRL_CONFIG[kind]))
    tables = {*trl_names.SETUP_NAMES.values(), *trl_names.HYPER_NAMES.values(), *trl_names.KIND_NAMES[kind].values()}
    assert tables <= fields, sorted(tables - fields)
    for adaptation in ADAPTATIONS:
        for optimizer in trl_names.OPTIM:
            written = trl_names.training(_setup(adaptation).with_(optimizer=optimizer), _hyper(), kind)
            assert set(written) <= fields, sorted(set(written) - fields)
    added = {"output_dir", "use_cpu"} | ({"generation_batch_size"} if kind in ("grpo", "rloo") else set())  # what common.py / main() add
    assert added <= fields


@pytest.mark.slow  # imports trl 1.12 and torch in a fresh interpreter (~15 s), in the environment tests/conftest.py builds
def test_every_ppo_name_is_a_field_of_trl_1_12s_ppo_config(ppo_python):
    written = set()
    for adaptation in ADAPTATIONS:
        written |= set(trl_names.training(_setup(adaptation).with_(train="ppo"), _hyper(), "ppo"))
    written = (written - {"max_steps"}) | {"total_episodes", "output_dir", "use_cpu"}  # ppo_config() swaps max_steps for total_episodes
    code = (
        "import dataclasses, json\nfrom trl.experimental.ppo import PPOConfig\nprint(json.dumps([f.name for f in dataclasses.fields(PPOConfig)]))\n"
    )
    out = subprocess.run([ppo_python, "-c", code], capture_output=True, text=True, timeout=300, env=dict(os.environ, TRL_EXPERIMENTAL_SILENCE="1"))
    assert out.returncode == 0, out.stderr[-2000:]
    fields = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert written <= fields, sorted(written - fields)


def test_model_lora_and_quant_names_are_those_of_peft_transformers_and_trl():
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import ModelConfig, SFTConfig

    bnb = set(inspect.signature(BitsAndBytesConfig.__init__).parameters)
    for adaptation in ADAPTATIONS:
        for parallel in ("none", "fsdp"):
            setup = _setup(adaptation).with_(parallel=parallel, gpus=2)
            # trust_remote_code: trl 1.16 keeps it on its trainer configs, from_pretrained takes it as a keyword
            assert set(trl_names.model(setup, True)) <= _fields(ModelConfig) | {"trust_remote_code"}
            assert set(trl_names.lora(setup, "sft", TINY_SPEC) or {}) <= _fields(LoraConfig)
            assert set(trl_names.quant(setup) or {}) <= bnb
    assert "bnb_4bit_quant_storage" in trl_names.quant(_setup("qlora").with_(parallel="fsdp", gpus=2))
    assert "trust_remote_code" in _fields(SFTConfig)


# Keys that belong to one kind's config only: a script of another kind must not carry them.
KIND_ONLY = {
    "sft": {"packing"},
    "dpo": {"precompute_ref_log_probs"},
    "grpo": {"num_generations", "max_completion_length"},
    "rloo": {"num_generations", "max_completion_length"},
    "ppo": {"response_length", "local_rollout_forward_batch_size", "kl_coef", "stop_token", "num_mini_batches", "num_sample_generations"},
}
BETA = {"dpo", "grpo", "rloo"}
ONLINE_CONFIG = {"reward_model", "max_length"}
GRPO_CONFIG = {"reward_fn", "reward_check"}


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
@pytest.mark.parametrize("kind", ("sft", "reward", "dpo", "grpo", "ppo"))
def test_a_stage_script_has_no_field_of_another_kind(kind, adaptation):
    files = render(_kind_plan(kind, adaptation))
    plan = _kind_plan(kind, adaptation)
    for stage in plan.stages:
        for name, script_kind in stage_scripts(stage):
            blocks = blocks_of(files[name])
            training, config = set(blocks["TRAINING"]), set(blocks["CONFIG"])
            others = set().union(*(keys for k, keys in KIND_ONLY.items() if k != script_kind and not {k, script_kind} <= {"grpo", "rloo"}))
            assert not training & others, (name, sorted(training & others))
            assert KIND_ONLY.get(script_kind, set()) <= training, name
            assert ("beta" in training) == (script_kind in BETA), name
            assert ("max_length" in training) == (script_kind in ("sft", "reward", "dpo")), name
            assert bool(config & ONLINE_CONFIG) == (stage.setup.train in ("grpo", "ppo")), name
            assert bool(config & GRPO_CONFIG) == (stage.setup.train == "grpo"), name
            assert (blocks["QUANT"] is None) == (adaptation != "qlora") and (blocks["LORA"] is None) == (adaptation == "full")
            assert {"kbit_upcast", "kbit_device_map"} <= config if adaptation == "qlora" else not config & {"kbit_upcast", "kbit_device_map"}


def test_common_py_is_written_once_per_run_folder_and_the_same_for_every_plan(tmp_path):
    plan = make_plan(RLHF, Setup(adaptation="qlora"))
    files = render(plan)
    assert [rel for rel in files if rel.endswith("common.py")] == ["common.py"]
    assert (
        files["common.py"]
        == render_common()
        == render(make_plan([("dpo", "dpo", "preference", "", "", "bundled")], Setup(adaptation="full")))["common.py"]
    )
    written = write_run(plan, tmp_path / "run")
    assert [p.name for p in written].count("common.py") == 1
    assert (tmp_path / "run" / "common.py").read_text(encoding="utf-8") == render_common()
    shared = {n.name for n in ast.parse(render_common()).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for rel, text in files.items():
        if rel.startswith("train_"):
            imports = [n for n in ast.parse(text).body if isinstance(n, ast.ImportFrom) and n.module == "common"]
            assert len(imports) == 1 and {a.name for a in imports[0].names} <= shared, rel
    assert "trl" not in {a.name.split(".")[0] for n in ast.parse(render_common()).body if isinstance(n, ast.Import) for a in n.names}
    assert not [n for n in ast.parse(render_common()).body if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("trl")]
