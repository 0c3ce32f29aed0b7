"""The options issue 15 §2 priced first and generated scripts now run (issue 14 §6: the script runs what is priced):
DoRA (peft `use_dora`), `modules_to_save` (named as the model's family names the modules), activation offloading
(TRL `activation_offloading`, on the kinds whose config has it) and GaLore (`optim="galore_adamw"`, galore-torch).
The optimizer step inside backward is torchtune's and stays priced only.

Translated blocks by hand, their names checked against the installed peft / TRL classes, the refusals (one line,
exit 2), and real 2-step runs of the generated scripts on the tiny model (CPU).
"""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from test_scriptgen import _load_module, blocks_of
from test_scriptgen_runs import check_run, events, run_script

from advisor.planning import build_plan, stages_as_run
from advisor.scriptgen import render, trl_names, write_run
from estimators import estimate
from estimators.catalog import TINY_SPEC, resolve_model
from estimators.setup import TRL_OFFLOAD_KINDS, Setup

HYPER = {
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
BOTH = "embed_tokens,lm_head"


def _generate(advisor_main, tmp_path, *flags: str) -> dict[str, dict]:
    """`advisor generate --model tiny FLAGS` into tmp_path/run: each train_*.py's blocks, and README.md as "README"."""
    out = tmp_path / "run"
    result = advisor_main("generate", "--model", "tiny", "--seq-len", "64", "--out", str(out), *flags)
    assert result.returncode == 0, result.stderr
    scripts = {p.name: blocks_of(p.read_text(encoding="utf-8")) for p in sorted(out.glob("train_*.py"))}
    return dict(scripts, README=(out / "README.md").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ the blocks a script gets
def test_dora_modules_to_save_and_offloading_reach_the_sft_script(advisor_main, tmp_path):
    files = _generate(advisor_main, tmp_path, "--dora", "--modules-to-save", BOTH, "--act-offload")
    blocks = files["train_sft.py"]
    assert blocks["LORA"] == {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "target_modules": "all-linear",
        "task_type": "CAUSAL_LM",
        "use_dora": True,
        "modules_to_save": ["embed_tokens", "lm_head"],
    }
    assert blocks["TRAINING"]["activation_offloading"] is True
    assert blocks["TRAINING"]["activation_checkpointing"] is True  # offloading moves the checkpoints, it does not replace them
    priced = blocks["PRICED"]
    assert (priced["dora"], priced["modules_to_save"], priced["act_offload"], priced["galore"]) == (True, BOTH, True, False)
    assert "DoRA (use_dora: a trained magnitude per output feature); embed_tokens, lm_head trained in full (modules_to_save)" in files["README"]
    assert "activation offloading to host RAM (on a GPU)" in files["README"]


def test_options_left_off_leave_the_blocks_as_they_were(advisor_main, tmp_path):
    blocks = _generate(advisor_main, tmp_path)["train_sft.py"]
    assert not {"use_dora", "modules_to_save"} & set(blocks["LORA"])
    assert not {"activation_offloading", "optim_target_modules"} & set(blocks["TRAINING"])


def test_modules_to_save_are_named_as_the_family_names_them():
    """GPT-NeoX calls the token embedding embed_in (transformers 5 calls its head lm_head): what the estimate priced
    is what peft gets."""
    plan = build_plan("pythia-160m", Setup(modules_to_save=BOTH), pipeline="sft", output_dir="outputs")
    lora = blocks_of(render(plan)["train_sft.py"])["LORA"]
    assert lora["modules_to_save"] == ["embed_in", "lm_head"]
    assert lora["target_modules"] == "all-linear"


def test_a_reward_stage_saves_no_lm_head_it_does_not_have():
    """RLHF with --modules-to-save lm_head: the reward model (a seq-cls head, trained by peft's SEQ_CLS anyway) has no
    lm_head, so its stage neither gets nor prices one; the SFT and PPO stages do."""
    plan = build_plan("tiny", Setup(modules_to_save="lm_head", seq_len=64, response_len=8), pipeline="rlhf", output_dir="outputs")
    files = render(plan)
    reward = blocks_of(files["train_reward.py"])
    assert "modules_to_save" not in reward["LORA"] and reward["PRICED"]["modules_to_save"] == ""
    for name in ("train_sft.py", "train_ppo.py", "train_ppo_rloo.py"):
        assert blocks_of(files[name])["LORA"]["modules_to_save"] == ["lm_head"], name
    spec = resolve_model("qwen2.5-0.5b").spec
    asked, plain = Setup(train="reward", modules_to_save="lm_head"), Setup(train="reward")
    assert estimate(spec, asked).peak_allocated == estimate(spec, plain).peak_allocated


def test_a_hand_edited_plan_is_told_why_its_reward_stage_saves_no_lm_head():
    plan = build_plan("tiny", Setup(seq_len=64, response_len=8), pipeline="rlhf", output_dir="outputs")
    reward = next(s for s in plan.stages if s.setup.train == "reward")
    reward.setup = reward.setup.with_(modules_to_save="embed_tokens,lm_head")  # as a plan file edited by hand may say
    assert stages_as_run(plan) == [
        f"stage '{reward.name}': a reward model has no lm_head (its score head is trained already): modules_to_save keeps embed_tokens there"
    ]
    assert reward.setup.modules_to_save == "embed_tokens"


def test_galore_writes_its_optimizer_and_its_pins(advisor_main, tmp_path):
    files = _generate(advisor_main, tmp_path, "--method", "full", "--galore")
    training = files["train_sft.py"]["TRAINING"]
    assert (training["optim"], training["optim_target_modules"]) == ("galore_adamw", "all-linear")
    assert files["train_sft.py"]["LORA"] is None and files["train_sft.py"]["PRICED"]["galore"] is True
    script = (tmp_path / "run" / "train_sft.py").read_text(encoding="utf-8")
    assert '#     "galore-torch==1.0",' in script and '#     "bitsandbytes==' in script  # galore_torch imports bitsandbytes
    assert "galore-torch 1.0" in files["README"] and "GaLore AdamW (galore_adamw, rank 128, all linear layers" in files["README"]


def test_a_run_without_galore_does_not_name_its_pin(advisor_main, tmp_path):
    files = _generate(advisor_main, tmp_path, "--method", "full")
    script = (tmp_path / "run" / "train_sft.py").read_text(encoding="utf-8")
    assert "galore-torch" not in script and "galore_adamw" not in script and files["train_sft.py"]["PRICED"]["galore"] is False
    assert "galore" not in files["README"].lower()


def test_launch_wants_galore_torch_for_a_galore_run(monkeypatch):
    from advisor.errors import AdvisorError
    from advisor.launch import environment

    plan = build_plan("tiny", Setup(adaptation="full", galore=True, seq_len=64), pipeline="sft", output_dir="outputs")
    found = environment.importlib.util.find_spec
    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: None if name == "galore_torch" else found(name))
    with pytest.raises(AdvisorError, match=r"training packages not installed: galore_torch; install them with"):
        environment.check_environment(plan, gpu_facts=environment.GpuFacts(1, [80.0], True))
    plain = build_plan("tiny", Setup(adaptation="full", seq_len=64), pipeline="sft", output_dir="outputs")
    assert "galore_torch" not in environment.check_environment(plain, gpu_facts=environment.GpuFacts(1, [80.0], True)).packages


# ------------------------------------------------------------------------------------------------ names of the installed classes
@pytest.mark.parametrize("kind", TRL_OFFLOAD_KINDS)
def test_activation_offloading_is_a_field_of_each_kind_that_writes_it(kind):
    import trl

    fields = {f.name for f in dataclasses.fields(getattr(trl, trl_names.TRL_CONFIG[kind]))}
    written = trl_names.training(Setup(train=kind, act_offload=True), HYPER, kind)
    assert written["activation_offloading"] is True and set(written) <= fields


def test_kinds_refused_offloading_have_no_such_field():
    """GRPO / RLOO (and trl 1.12's PPOConfig, read in test_scriptgen_trl_names) have no activation_offloading."""
    import trl

    for name in ("GRPOConfig", "RLOOConfig"):
        assert "activation_offloading" not in {f.name for f in dataclasses.fields(getattr(trl, name))}
    assert set(trl_names.TRL_CONFIG) - set(TRL_OFFLOAD_KINDS) == {"grpo", "rloo", "ppo"}


def test_lora_options_and_galore_names_are_those_of_peft_and_transformers():
    from peft import LoraConfig
    from trl import SFTConfig

    lora = trl_names.lora(Setup(dora=True, modules_to_save=BOTH), "sft", TINY_SPEC)
    assert {"use_dora", "modules_to_save"} <= set(lora) <= {f.name for f in dataclasses.fields(LoraConfig)}
    galore = trl_names.training(Setup(adaptation="full", galore=True), HYPER, "sft")
    assert set(galore) <= {f.name for f in dataclasses.fields(SFTConfig)}


def test_offloading_is_dropped_on_a_cpu_only(tmp_path):
    """TRL's offloading needs an accelerator (trl 1.16 OffloadActivations reads `torch.accelerator.current_accelerator().type`,
    None on a CPU): common.py for_device runs a CPU smoke test without it and keeps it on a GPU."""
    write_run(build_plan("tiny", Setup(act_offload=True, seq_len=64), pipeline="sft", output_dir="outputs"), tmp_path)
    stage = _load_module(tmp_path / "train_sft.py", "generated_train_sft_options")
    common = sys.modules[stage.start.__module__]
    for cuda, kept in ((True, True), (False, False)):
        training, _, _ = common.for_device(stage.TRAINING, stage.MODEL, None, False, cuda, True)
        assert training["activation_offloading"] is kept


# ------------------------------------------------------------------------------------------------ refusals: one line, exit 2
@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ("generate", "--model", "tiny", "--method-kind", "grpo", "--act-offload"),
            "--act-offload is not an option of TRL's grpo trainer (it has no activation_offloading); kinds that have it: sft, reward, dpo",
        ),
        (("generate", "--model", "tiny", "--method-kind", "rlhf", "--act-offload"), "TRL's ppo trainer"),
        (("estimate", "--model", "7b", "--train", "grpo", "--act-offload"), "kinds that have it: sft, reward, dpo"),
        (("generate", "--model", "tiny", "--method", "full", "--dora"), "--dora and --modules-to-save are LoRA/QLoRA options"),
        (("generate", "--model", "tiny", "--modules-to-save", "wte"), "unknown --modules-to-save 'wte'; valid: embed_tokens, lm_head"),
        (("generate", "--model", "tiny", "--galore"), "--galore is GaLore AdamW for full fine-tuning: use --method full --optimizer adamw"),
        (("generate", "--model", "tiny", "--optim-in-bwd"), "unrecognized arguments: --optim-in-bwd"),
    ],
)
def test_options_a_script_cannot_run_are_refused_in_one_line(advisor_main, args, needle):
    out = advisor_main(*args)
    assert out.returncode == 2, out.stdout
    lines = out.stderr.splitlines()
    assert needle in lines[-1] and lines[-1].startswith("advisor: error: ") and "Traceback" not in out.stderr


# ------------------------------------------------------------------------------------------------ real runs on the tiny model
@pytest.mark.slow  # ~15 s: one fresh `python train_sft.py` process (torch, transformers, trl imports)
def test_dora_and_modules_to_save_train_and_are_saved(tmp_path):
    """LoRA SFT with DoRA and both modules saved (and offloading, which a CPU run drops): 2 real steps; the adapter
    holds DoRA's magnitude vectors and the trained embedding and head copies."""
    from safetensors import safe_open

    setup = Setup(dora=True, modules_to_save=BOTH, act_offload=True, seq_len=64)
    plan = build_plan("tiny", setup, pipeline="sft", output_dir="outputs")
    plan.stages[0].hyper.save_steps, plan.stages[0].hyper.logging_steps = 2, 1
    write_run(plan, tmp_path)
    out = tmp_path / "outputs" / "sft"
    check_run(run_script(tmp_path, "train_sft.py", "--max-steps", "2"), out, 0, first=0, last=2, final="adapter_config.json")
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["use_dora"] is True and sorted(config["modules_to_save"]) == ["embed_tokens", "lm_head"]
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert sum("lora_magnitude_vector" in k for k in keys) == 2 * 7  # every linear of the 2 layers: q, k, v, o, gate, up, down
    assert any("embed_tokens" in k for k in keys) and any("lm_head" in k for k in keys)


@pytest.mark.slow  # ~30 s: two script processes
def test_galore_trains_and_resumes(tmp_path):
    """Full SFT with GaLore AdamW: 2 steps, then --resume to step 3 (its optimizer state holds projector objects that
    torch.load refuses by default; common.py allows that one class)."""
    plan = build_plan("tiny", Setup(adaptation="full", galore=True, seq_len=64), pipeline="sft", output_dir="outputs")
    plan.stages[0].hyper.save_steps, plan.stages[0].hyper.logging_steps = 2, 1
    write_run(plan, tmp_path)
    out = tmp_path / "outputs" / "sft"
    check_run(run_script(tmp_path, "train_sft.py", "--max-steps", "2"), out, 0, first=0, last=2, final="config.json")
    import torch

    state = torch.load(out / "checkpoint-2" / "optimizer.pt", weights_only=False)["state"]
    assert any("projector" in s for s in state.values())  # GaLore ran: its projectors are in the optimizer state
    before = len(events(out))
    check_run(run_script(tmp_path, "train_sft.py", "--max-steps", "3", "--resume"), out, before, first=2, last=3, final="config.json")
