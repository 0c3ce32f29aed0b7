"""`advisor advise --dataset PATH --save plan.toml` keeps the checked data on the stages that take it (issue 17), and
`advisor generate --plan plan.toml` writes the script that loads that file with its mapping, without --dataset."""

from __future__ import annotations

import json

from test_datawire_generate import ALPACA, PAIRS, write

from advisor.cli import main
from advisor.plan import load_plan


def test_advise_saves_the_data_and_generate_uses_it(tmp_path, advisor_main):
    data = write(tmp_path, "alpaca.jsonl", ALPACA)
    saved = tmp_path / "plan.toml"
    r = advisor_main("advise", "--goal", "domain", "--gpu", "rtx4090", "--model", "8b", "--dataset", str(data), "--save", str(saved), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dataset"]["stages_fed"] == ["sft"]
    stage = load_plan(saved).stage("sft")
    assert stage.dataset == str(data.resolve())
    d = stage.data
    assert (d.format, d.trl_type, d.rows, d.seq_len) == ("alpaca", "prompt_completion", 12, stage.setup.seq_len)
    assert d.tokens["max"] <= d.seq_len and d.tokens["p50"] <= d.tokens["p99"]
    out = tmp_path / "run"
    assert main(["generate", "--plan", str(saved), "--out", str(out)]) == 0
    script = (out / "train_sft.py").read_text(encoding="utf-8")
    assert "def to_trl(row):" in script and f"'path': {str(data.resolve())!r}" in script


def test_preference_data_goes_only_to_the_stages_that_take_it(tmp_path, advisor_main):
    data = write(tmp_path, "pairs.jsonl", PAIRS)
    r = advisor_main("advise", "--goal", "best_quality", "--gpu", "h100", "--gpu-count", "8", "--model", "8b", "--dataset", str(data), "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    fed = {s["name"] for s in plan["stages"] if s.get("data")}
    assert fed == set(plan["dataset"]["stages_fed"]) and fed
    for s in plan["stages"]:  # preference data: the reward / DPO stages, never the SFT stage (it takes instruction data)
        assert (s["data_format"] == "preference") == (s["name"] in fed), s["name"]
