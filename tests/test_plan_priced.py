"""Issue 14 §2: the Plan carries what it was priced on. Each stage stores the set-up as the stack runs it
(estimators/effective.py), the plan keeps the ModelSpec numbers, and a plan moved away from its config.json is
priced and generated again."""

from __future__ import annotations

import json
import re
import shutil
import tomllib

from advisor.cli import main
from advisor.plan import load_plan, save_plan
from advisor.planning import build_plan, plan_spec
from estimators import estimate, resolve_model
from estimators.effective import effective_setup
from estimators.setup import Setup

FSDP_QLORA = Setup(adaptation="qlora", parallel="fsdp", gpus=2)
LLAMA_CONFIG = {
    "model_type": "llama",
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
}


def _script_setup(path) -> dict:
    """The SETUP a generated script runs, read from its CONFIG literal."""
    text = path.read_text(encoding="utf-8")
    return {
        "kbit_upcast": re.search(r"'kbit_upcast': (True|False)", text).group(1) == "True",
        "parallel": re.search(r"'parallel': '([a-z_0-9]+)'", text).group(1),
    }


def test_the_stage_stores_what_runs_and_the_estimate_priced():
    plan = build_plan("7b", FSDP_QLORA, gpu="a100-80gb")
    stored = plan.stages[0].setup
    assert stored.kbit_upcast is False  # FSDP flattens each layer into one dtype: no fp32 upcast runs
    assert stored == effective_setup(resolve_model("7b").spec, FSDP_QLORA.with_(train="sft"))
    est = estimate(resolve_model("7b").spec, FSDP_QLORA)
    assert est.setup.kbit_upcast is False and any("fp32 upcast" in w for w in est.warnings)
    assert estimate(plan_spec(plan), stored).peak_allocated == est.peak_allocated


def test_the_script_runs_the_stored_setup(tmp_path):
    saved = tmp_path / "plan.toml"
    save_plan(build_plan("7b", FSDP_QLORA, gpu="a100-80gb"), saved)
    assert tomllib.loads(saved.read_text())["stages"][0]["setup"]["kbit_upcast"] is False
    assert main(["generate", "--plan", str(saved), "--out", str(tmp_path / "run")]) == 0
    assert _script_setup(tmp_path / "run" / "train_sft.py") == {"kbit_upcast": False, "parallel": "fsdp"}
    template = (tmp_path / "run" / "common.py").read_text()
    assert 'startswith("fsdp")' not in template.split("def load_model", 1)[1].split("\ndef ", 1)[0]


def test_a_hand_edited_plan_is_made_what_runs(tmp_path, capsys):
    saved = tmp_path / "plan.toml"
    save_plan(build_plan("7b", FSDP_QLORA, gpu="a100-80gb"), saved)
    saved.write_text(saved.read_text().replace("kbit_upcast = false", "kbit_upcast = true"))
    assert main(["generate", "--plan", str(saved), "--out", str(tmp_path / "run")]) == 0
    assert "fp32 upcast" in capsys.readouterr().err
    assert _script_setup(tmp_path / "run" / "train_sft.py")["kbit_upcast"] is False


def test_a_plan_moved_away_from_its_config_is_priced_and_generated(tmp_path):
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    plan = build_plan(str(model_dir), Setup(adaptation="lora"), gpu="rtx4090")
    priced = estimate(plan_spec(plan), plan.stages[0].setup).peak_allocated
    saved = tmp_path / "plan.toml"
    save_plan(plan, saved)
    shutil.rmtree(model_dir)  # the plan travels; the config.json does not

    moved = load_plan(saved)
    spec = plan_spec(moved)
    assert spec.hidden_size == 512 and spec.num_layers == 4
    assert estimate(spec, moved.stages[0].setup).peak_allocated == priced
    assert main(["generate", "--plan", str(saved), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "train_sft.py").is_file()


def test_a_bad_spec_in_a_plan_file_is_one_clear_error(tmp_path, capsys):
    saved = tmp_path / "plan.toml"
    save_plan(build_plan("7b", Setup(adaptation="lora"), gpu="rtx4090"), saved)
    saved.write_text(saved.read_text().replace("[model.spec]\n", "[model.spec]\nwidth_typo = 3\n"))
    assert main(["generate", "--plan", str(saved), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "width_typo" in err and "hidden_size" in err and len(err.strip().splitlines()) == 1
