"""`advisor generate --dataset PATH` (issue 17, "Into the plan"): the data is checked for the stage's kind, the script
gets the loader and the mapping function, the plan keeps them (plan.toml), and data that cannot feed a stage is
refused. The rendered loading code is executed here on the rows (datasets' loaders, no training)."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

from advisor.cli import main
from advisor.plan import load_plan

ALPACA = [{"instruction": f"Say {i} twice", "input": "" if i % 2 else "loudly", "output": f"{i} {i}"} for i in range(12)]
SHAREGPT = [
    {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": f"hi {i}"}, {"from": "gpt", "value": f"hello {i}"}]}
    for i in range(12)
]
PAIRS = [{"prompt": f"Q{i}?", "chosen": f"A good answer {i}.", "rejected": "No."} for i in range(12)]


def write(tmp: Path, name: str, rows) -> Path:
    path = tmp / name
    if name.endswith(".csv"):
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, delimiter=";")  # not a comma: the sniffed delimiter must reach the script
            w.writerow(["prompt", "completion"])
            for i in range(12):
                w.writerow([f"What is {i} + 1?", f" {i + 1}."])  # " 3." stays text (keep_default_na, string features)
    elif name.endswith(".json"):
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def generate(tmp: Path, data: Path, *extra: str) -> Path:
    out = tmp / f"run-{data.stem}"
    assert main(["generate", "--model", "tiny", "--dataset", str(data), "--out", str(out), "--force", *extra]) == 0
    return out


def loading_code(script: str, common: str = "") -> dict:
    """CONFIG, to_trl, keep_row and load_checked of a rendered script, normalise and load_data of its common.py,
    executed without their torch imports."""
    body = ast.parse(common).body + ast.parse(script).body
    wanted = {"CONFIG", "to_trl", "keep_row", "load_checked", "load_data", "normalise", "DATA_BUILDERS"}
    nodes = [
        n
        for n in body
        if (isinstance(n, ast.FunctionDef) and n.name in wanted)
        or (isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id in wanted for t in n.targets))
    ]
    import sys

    from datasets import load_dataset

    ns = {"load_dataset": load_dataset, "Path": Path, "sys": sys}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), "<script>", "exec"), ns)
    return ns


def rows_of(run: Path, script: str = "train_sft.py") -> list[dict]:
    ns = loading_code((run / script).read_text(encoding="utf-8"), (run / "common.py").read_text(encoding="utf-8"))
    cfg = ns["CONFIG"]
    return list(ns["load_data"](cfg["dataset"], cfg["data_format"], cfg.get("data"), ns.get("load_checked")))


def test_alpaca_jsonl_is_mapped_to_prompt_completion(tmp_path, capsys):
    run = generate(tmp_path, write(tmp_path, "alpaca.jsonl", ALPACA))
    assert "alpaca" in capsys.readouterr().out
    rows = rows_of(run)
    assert len(rows) == len(ALPACA)
    assert rows[0] == {"prompt": [{"role": "user", "content": "Say 0 twice\n\nloudly"}], "completion": [{"role": "assistant", "content": "0 0"}]}
    assert rows[1]["prompt"][0]["content"] == "Say 1 twice"  # empty input: no blank line added
    plan = load_plan(run / "plan.toml")
    data = plan.stage("sft").data
    assert (data.format, data.type, data.trl_type, data.rows) == ("alpaca", "prompt_completion", "prompt_completion", 12)
    assert data.path == str((tmp_path / "alpaca.jsonl").resolve())
    # no --seq-len: the run is planned at the length the data needs
    assert plan.stage("sft").setup.seq_len == data.seq_len and data.seq_len % 64 == 0 and data.tokens["max"] <= data.seq_len


def test_sharegpt_json_roles_are_renamed(tmp_path):
    chats = SHAREGPT + [{"conversations": [{"from": "human", "value": "and you?"}, {"from": "chatgpt", "value": "fine"}]}]
    run = generate(tmp_path, write(tmp_path, "chats.json", chats))
    rows = rows_of(run)
    assert rows[3] == {
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi 3"}, {"role": "assistant", "content": "hello 3"}]
    }
    assert rows[-1]["messages"][1] == {"role": "assistant", "content": "fine"}  # every sharegpt speaker name the check knows
    assert load_plan(run / "plan.toml").stage("sft").data.format == "sharegpt"


def test_csv_keeps_its_delimiter_and_text(tmp_path):
    run = generate(tmp_path, write(tmp_path, "qa.csv", None))
    cfg = loading_code((run / "train_sft.py").read_text(encoding="utf-8"))["CONFIG"]
    assert cfg["data"]["load"]["sep"] == ";"
    rows = rows_of(run)
    assert rows[2] == {"prompt": "What is 2 + 1?", "completion": " 3."}


def test_an_explicit_seq_len_wins(tmp_path):
    run = generate(tmp_path, write(tmp_path, "alpaca.jsonl", ALPACA), "--seq-len", "512")
    stage = load_plan(run / "plan.toml").stage("sft")
    assert stage.setup.seq_len == 512 and stage.data.seq_len == 64  # the data's advice is kept beside the length given


def test_generate_from_the_saved_plan_writes_the_same_loader(tmp_path):
    run = generate(tmp_path, write(tmp_path, "alpaca.jsonl", ALPACA))
    again = tmp_path / "again"
    assert main(["generate", "--plan", str(run / "plan.toml"), "--out", str(again)]) == 0
    assert (again / "train_sft.py").read_text(encoding="utf-8") == (run / "train_sft.py").read_text(encoding="utf-8")
    assert "def to_trl(row):" in (again / "train_sft.py").read_text(encoding="utf-8")


def test_a_hand_edited_mapping_is_not_pasted(tmp_path, advisor_main):
    run = generate(tmp_path, write(tmp_path, "alpaca.jsonl", ALPACA))
    text = (run / "plan.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('function = "def to_trl(row):', 'function = "import os\\ndef to_trl(row):'), encoding="utf-8")
    r = advisor_main("generate", "--plan", str(bad), "--out", str(tmp_path / "bad-run"))
    assert r.returncode == 2 and "to_trl" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "bad-run").exists()


def test_preference_data_feeds_dpo_as_it_is(tmp_path):
    run = generate(tmp_path, write(tmp_path, "pairs.jsonl", PAIRS), "--method-kind", "dpo")
    rows = rows_of(run, "train_dpo.py")
    assert rows[0] == PAIRS[0]
    assert "to_trl = None" in (run / "train_dpo.py").read_text(encoding="utf-8")


def test_instruction_pairs_are_refused_for_a_dpo_stage(tmp_path, advisor_main):
    data = write(tmp_path, "alpaca.jsonl", ALPACA)
    r = advisor_main("generate", "--model", "tiny", "--method-kind", "dpo", "--dataset", str(data), "--out", str(tmp_path / "r"))
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "cannot feed the dpo stage" in line and "chosen" not in ALPACA[0] and "preferred and a rejected" in line
    assert not (tmp_path / "r").exists()


def test_per_stage_flags_are_checked_for_their_stage(tmp_path, advisor_main):
    """rlhf: sft takes instruction data, reward and ppo preference data; each flag's file is checked for its stages."""
    alpaca, pairs = write(tmp_path, "alpaca.jsonl", ALPACA), write(tmp_path, "pairs.jsonl", PAIRS)
    out = tmp_path / "rlhf"
    assert (
        main(
            [
                "generate",
                "--model",
                "tiny",
                "--method-kind",
                "rlhf",
                "--out",
                str(out),
                "--instruction-dataset",
                str(alpaca),
                "--preference-dataset",
                str(pairs),
            ]
        )
        == 0
    )
    plan = load_plan(out / "plan.toml")
    assert plan.stage("sft").data.format == "alpaca"
    assert (plan.stage("reward").data.type, plan.stage("reward").data.kind) == ("preference", "reward")
    # ppo takes prompt data (--prompt-dataset): on the sample, unchecked, so the length stays the default one, room for the response
    assert plan.stage("ppo").data is None and plan.stage("ppo").setup.seq_len == 2048 > plan.stage("sft").data.seq_len
    # instruction pairs under the preference flag: refused for the reward stage
    r = advisor_main(
        "generate",
        "--model",
        "tiny",
        "--method-kind",
        "rlhf",
        "--out",
        str(tmp_path / "r"),
        "--instruction-dataset",
        str(alpaca),
        "--preference-dataset",
        str(alpaca),
    )
    assert r.returncode == 2 and "cannot feed the reward stage 'reward'" in r.stderr and "Traceback" not in r.stderr


def test_question_answer_rows_feed_grpo_with_the_answer_kept_for_the_check(tmp_path):
    rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(12)]
    run = generate(tmp_path, write(tmp_path, "math.jsonl", rows), "--method-kind", "grpo", "--reward-check", "answer")
    got = rows_of(run, "train_grpo.py")
    assert got[3]["prompt"] in ("What is 3 + 3?", [{"role": "user", "content": "What is 3 + 3?"}]) and got[3]["answer"] == "6"
    stage = load_plan(run / "plan.toml").stage("grpo")
    # the sequence is the prompt plus the generated response: the length planned holds both
    assert stage.setup.seq_len >= stage.data.tokens["max"] and stage.data.tokens["max"] > stage.setup.response_len


def test_a_hub_id_not_cached_is_left_to_the_script_but_a_missing_file_is_an_error(tmp_path, capsys, advisor_main):
    out = tmp_path / "hub"
    assert main(["generate", "--model", "tiny", "--dataset", "someorg/not-cached", "--out", str(out)]) == 0
    assert "is not on this machine" in capsys.readouterr().err
    assert "'data':" not in (out / "train_sft.py").read_text(encoding="utf-8")
    r = advisor_main("generate", "--model", "tiny", "--dataset", "missing.jsonl", "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no such file" in r.stderr


def test_the_packing_advice_is_what_the_sft_script_runs(tmp_path):
    """Issue 17: the check's packing advice becomes the stage's `packed`, which the script passes to TRL (rows that
    fill their sequences: no packing, where the default would pack); a --packed/--no-packed flag given wins."""
    long_rows = [{"instruction": f"Tell story {i}", "input": "", "output": " ".join(["word"] * 300)} for i in range(12)]
    data = write(tmp_path, "long.jsonl", long_rows)
    stage = load_plan(generate(tmp_path, data) / "plan.toml").stages[0]
    assert stage.data.packing is False and stage.setup.packed is False  # Setup's default is packed=True
    out = tmp_path / "run-kept"
    assert main(["generate", "--model", "tiny", "--dataset", str(data), "--out", str(out), "--packed"]) == 0
    kept = load_plan(out / "plan.toml").stages[0]
    assert kept.data.packing is False and kept.setup.packed is True


def test_a_json_object_with_rows_under_a_key_loads_in_the_script(tmp_path):
    """Issue 17: {"train": [...]} is read by the check and by the script alike (datasets' json builder, field=KEY)."""
    data = tmp_path / "wrapped.json"
    data.write_text(json.dumps({"train": ALPACA}), encoding="utf-8")
    run = generate(tmp_path, data)
    assert load_plan(run / "plan.toml").stage("sft").data.load["field"] == "train"
    rows = rows_of(run)
    assert len(rows) == len(ALPACA) and rows[0]["completion"] == [{"role": "assistant", "content": "0 0"}]
