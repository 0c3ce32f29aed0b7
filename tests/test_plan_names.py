"""Issue 14 §4, names that tell the truth: inside, `Setup.adaptation` (full / LoRA / QLoRA) and `Plan.pipeline` (sft,
rlhf, dpo, ...); at the edge the public spellings stay: the --method flag, the `method` key of `--json` set-ups and of
traces.jsonl rows, and plan files saved before the rename (`method = ...`) still load."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.plan import Plan, load_plan, save_plan
from advisor.planning import build_plan
from estimators.setup import Setup

GOLDEN = Path(__file__).parent / "golden"
OLD_PLAN = GOLDEN / "plans_before_rename" / "llama-rlhf-qlora.toml"  # as the code before the rename wrote it
NEW_PLAN = GOLDEN / "scriptgen" / "llama-rlhf-qlora" / "plan.toml"  # the same plan as it is written now


def test_a_plan_saved_before_the_rename_loads_as_the_same_plan():
    old = load_plan(OLD_PLAN)
    assert old.pipeline == "rlhf" and old.adaptation == "qlora"
    assert [s.setup.adaptation for s in old.stages] == ["qlora", "qlora", "qlora"]
    assert old.to_data() == load_plan(NEW_PLAN).to_data()


def test_a_plan_is_written_with_the_new_names(tmp_path):
    path = save_plan(load_plan(OLD_PLAN), tmp_path / "plan.toml")
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert (data["pipeline"], data["adaptation"]) == ("rlhf", "qlora") and "method" not in data
    assert all(s["setup"]["adaptation"] == "qlora" and "method" not in s["setup"] for s in data["stages"])


def test_an_old_plan_generates_the_same_run(tmp_path):
    assert main(["generate", "--plan", str(OLD_PLAN), "--out", str(tmp_path / "old")]) == 0
    assert main(["generate", "--plan", str(NEW_PLAN), "--out", str(tmp_path / "new")]) == 0
    for script in ("train_sft.py", "train_reward.py", "train_ppo.py"):
        old, new = ((tmp_path / d / script).read_text(encoding="utf-8") for d in ("old", "new"))
        assert old == new and "'adaptation': 'qlora'" in new  # the PRICED block names the estimator's field


def test_a_stage_with_another_adaptation_than_the_plan_is_one_clear_error(tmp_path, capsys):
    text = NEW_PLAN.read_text(encoding="utf-8").replace('adaptation = "qlora"', 'adaptation = "lora"', 2)  # the plan's and the sft stage's
    (tmp_path / "plan.toml").write_text(text, encoding="utf-8")
    assert main(["generate", "--plan", str(tmp_path / "plan.toml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "stage 'reward' uses qlora, the plan lora: one adaptation per plan" in err and len(err.splitlines()) == 1


def test_the_method_flag_sets_the_adaptation_and_json_keeps_its_key(capsys):
    assert main(["estimate", "--model", "7b", "--method", "qlora", "--json"]) == 0
    setup = json.loads(capsys.readouterr().out)["setup"]
    assert setup["method"] == "qlora" and "adaptation" not in setup


def test_fit_json_names_the_adaptation_change_by_its_flag(capsys):
    assert main(["fit", "--model", "8b", "--gpu", "rtx4090", "--method", "full", "--json"]) == 0
    fixes = json.loads(capsys.readouterr().out)["fixes"]
    first = next(f for f in fixes if f["change"].startswith("LoRA instead of full fine-tuning"))
    assert first["set"]["method"] == "lora" and not any("adaptation" in f["set"] for f in fixes)


def test_setup_reads_both_spellings_and_writes_the_public_one():
    setup = Setup(adaptation="qlora", seq_len=512)
    public = setup.public_dict()
    assert public["method"] == "qlora" and "adaptation" not in public
    assert Setup.from_dict(public) == setup == Setup.from_dict(setup.to_dict())
    with pytest.raises(Exception, match="unknown method 'x'; valid: full, lora, qlora"):
        Setup.from_dict({"method": "x"})


def test_advise_json_names_the_pipeline(capsys):
    args = ["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx4090", "--model", "8b", "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["pipeline"], data["adaptation"]) == ("sft", "lora") and "method" not in data
    assert Plan.from_data(data).pipeline == "sft"
    assert build_plan("tiny", Setup(), pipeline="dpo").pipeline == "dpo"
