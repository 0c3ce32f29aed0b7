"""Real 1-step CPU runs of scripts generated with `advisor generate --dataset` on the user's own file (issue 17): the
tiny model's SFT script trains on an alpaca .jsonl and on a ';'-separated CSV as they are (slow: ~15 s each). The
sharegpt mapping is run on its rows in test_datawire_generate.py (the same load_checked code, no training)."""

from __future__ import annotations

import pytest
from test_datawire_generate import ALPACA, write
from test_scriptgen_runs import events, run_script

from advisor.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, rows", [("alpaca.jsonl", ALPACA), ("qa.csv", None)])
def test_the_script_trains_on_the_users_file(tmp_path, name, rows):
    data = write(tmp_path, name, rows)
    run = tmp_path / "run"
    assert main(["generate", "--model", "tiny", "--dataset", str(data), "--out", str(run), "--method", "lora"]) == 0
    assert "'data': {" in (run / "train_sft.py").read_text(encoding="utf-8")  # loads it through load_checked
    result = run_script(run, "train_sft.py", "--max-steps", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    logged = [e for e in events(run / "outputs" / "sft") if e["event"] == "log"]
    assert logged and logged[-1]["step"] == 1 and logged[-1]["loss"] > 0
    # the rows it trained on came through the mapping: no bundled sample was written or read
    assert not (run / "data" / "instructions.jsonl").exists()
