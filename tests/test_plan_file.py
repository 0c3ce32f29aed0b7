"""The Plan is plain dataclasses (issue 14 §8: `advisor advise` builds and prints it without pydantic) and a plan file
is read back through pydantic: what was saved loads as the same plan, and a hand-edited file gets one line, exit 2."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import tomli_w

from advisor.cli import main
from advisor.errors import AdvisorError
from advisor.plan import PLAN_SCHEMA, Hardware, Plan, load_plan

NEW_PLAN = Path(__file__).parent / "golden" / "scriptgen" / "llama-rlhf-qlora" / "plan.toml"


def _data() -> dict:
    return tomllib.loads(NEW_PLAN.read_text(encoding="utf-8"))


def test_a_saved_plan_reads_back_to_the_same_file():
    plan = load_plan(NEW_PLAN)
    assert plan.to_toml() == NEW_PLAN.read_text(encoding="utf-8")
    assert Plan.from_data(plan.to_data()) == plan


def test_the_saved_form_leaves_none_out_and_keeps_floats_floats():
    hardware = Hardware(gpu="24GB", memory_gib=24)  # an int in code, as a validator would have made it a float
    assert hardware.to_data() == {"gpu": "24GB", "gpu_name": "", "memory_gib": 24.0, "count": 1, "nodes": 1, "bf16": True}
    assert isinstance(hardware.to_data()["memory_gib"], float)
    plan = load_plan(NEW_PLAN).with_(time=None)
    assert "time" not in plan.to_data() and plan.to_data()["schema"] == PLAN_SCHEMA


def test_with_copies_and_leaves_the_original_alone():
    plan = load_plan(NEW_PLAN)
    wider = plan.with_(hardware=plan.hardware.with_(count=4))
    assert (wider.hardware.count, plan.hardware.count) == (4, 1)


def test_a_stage_of_another_adaptation_is_refused_in_code_too():
    plan = load_plan(NEW_PLAN)
    with pytest.raises(ValueError, match="stage 'sft' uses qlora, the plan lora: one adaptation per plan"):
        plan.with_(adaptation="lora")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["hardware"].update(bogus=1), "plan.toml: hardware.bogus: unknown key (check its spelling and its table)"),
        (lambda d: d["hardware"].update(memory_gib="lots"), "plan.toml: hardware.memory_gib: Input should be a valid number"),
        (lambda d: d["model"].pop("name"), "plan.toml: model.name: Field required"),
        (lambda d: d["stages"][0].update(data_format="xml"), "plan.toml: stages.0.data_format: Input should be 'instruction'"),
        (lambda d: d.update(adaptation="lora"), "plan.toml: Value error, stage 'sft' uses qlora, the plan lora"),
    ],
)
def test_a_hand_edited_plan_file_gets_one_line_and_exit_2(tmp_path, capsys, edit, message):
    data = _data()
    edit(data)
    path = tmp_path / "plan.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with pytest.raises(AdvisorError, match="problem\\(s\\) in all"):
        load_plan(path)
    assert main(["generate", "--plan", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("advisor: error: ") and message in err.replace(str(tmp_path) + "/", "")
    assert not (tmp_path / "run").exists()


def test_an_old_plan_is_read_into_todays_fields():
    data = _data()
    data["schema"] = "advisor.plan/1"
    data["method"] = data.pop("pipeline")
    data["warnings"] = ["as written before warnings kept both languages"]
    for stage in data["stages"]:
        stage["setup"]["method"] = stage["setup"].pop("adaptation")
    plan = Plan.from_data(data)
    assert (plan.schema, plan.pipeline, plan.adaptation) == (PLAN_SCHEMA, "rlhf", "qlora")
    assert [w.en for w in plan.warnings] == ["as written before warnings kept both languages"]
    assert "method" in data and "pipeline" not in data  # the caller's data is not changed
