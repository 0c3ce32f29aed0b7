"""`advisor advise --dataset PATH`: the data answers --data, --data-count and --seq-len where they are not given."""

from __future__ import annotations

import json

import pytest
from data_corpus import PREFERENCE, write_jsonl

from advisor.datasets.recommend import round_len

BASE = ("advise", "--goal", "chat_format", "--gpu", "rtx4090", "--model", "8b")


def _long_rows(n_long: int) -> list[dict]:
    short = [{"prompt": f"Question {i}?", "completion": "An answer. " * 20} for i in range(100 - n_long)]
    return short + [{"prompt": "A long one?", "completion": "word " * 3000}] * n_long


def test_dataset_sets_seq_len_and_count(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", _long_rows(0))
    r = advisor_main(*BASE, "--dataset", str(f), "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    ds = plan["dataset"]
    check = json.loads(advisor_main("data", "check", str(f), "--json").stdout)
    want = check["recommendation"]["seq_len"]
    assert ds["usable_rows"] == 100 and ds["seq_len"] == want and want % 64 == 0
    assert all(stage["setup"]["seq_len"] == want for stage in plan["stages"])
    assert want != 2048  # not the question's default
    text = advisor_main(*BASE, "--dataset", str(f)).stdout
    assert "Dataset:" in text and f"sequence length {want} tokens" in text


def test_long_rows_raise_the_sequence_length(advisor_main, tmp_path):
    r = advisor_main(*BASE, "--dataset", str(write_jsonl(tmp_path / "d.jsonl", _long_rows(5))), "--json")
    assert json.loads(r.stdout)["dataset"]["seq_len"] > 2000


def test_a_flag_wins_over_the_data(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", _long_rows(0))
    plan = json.loads(advisor_main(*BASE, "--dataset", str(f), "--seq-len", "1024", "--json").stdout)
    assert all(stage["setup"]["seq_len"] == 1024 for stage in plan["stages"])


def test_preference_data_answers_data_and_ppo_gets_room_for_the_response(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", PREFERENCE)
    check = json.loads(advisor_main("data", "check", str(f), "--json").stdout)
    own = check["recommendation"]["seq_len"]
    rl = round_len(check["tokens"]["fields"]["prompt"]["p99"] + 512)
    for gpus in ("1", "8"):  # whichever method advise picks for this data
        r = advisor_main("advise", "--goal", "quality_safety", "--gpu", "h100", "--gpu-count", gpus, "--model", "8b", "--dataset", str(f), "--json")
        assert r.returncode == 0, r.stderr
        plan = json.loads(r.stdout)
        kinds = {s["setup"]["train"] for s in plan["stages"]}
        lengths = {s["setup"]["seq_len"] for s in plan["stages"]}
        assert lengths == {plan["dataset"]["seq_len"]}  # advise prices every stage at one length
        if kinds & {"ppo", "grpo"}:  # prompt p99 + 512 response tokens, rounded
            assert "PPO/GRPO" in plan["dataset"]["raised_for"]
        # raised only when a PPO/GRPO stage was planned at the data's own length (advise may then pick another
        # method at the longer length: the plan stays priced at it, which is the safe side)
        assert plan["dataset"]["seq_len"] == (rl if "raised_for" in plan["dataset"] else own)
    r2 = advisor_main("advise", "--goal", "quality_safety", "--gpu", "h100", "--model", "8b", "--json")
    assert r2.returncode == 2 and "missing answer(s): --data" in r2.stderr  # without the data, --data is required


def test_ppo_plan_from_preference_data(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", PREFERENCE)
    r = advisor_main("advise", "--goal", "best_quality", "--gpu", "h100", "--gpu-count", "8", "--model", "8b", "--dataset", str(f), "--json")
    plan = json.loads(r.stdout)
    if "ppo" not in {s["setup"]["train"] for s in plan["stages"]}:
        pytest.skip("advise no longer picks RLHF here")
    p99 = json.loads(advisor_main("data", "check", str(f), "--json").stdout)["tokens"]["fields"]["prompt"]["p99"]
    assert plan["dataset"]["seq_len"] == round_len(p99 + 512) and {s["setup"]["seq_len"] for s in plan["stages"]} == {round_len(p99 + 512)}


def test_unusable_data_is_an_input_error(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "a", "completion": 5}] * 3)
    r = advisor_main(*BASE, "--dataset", str(f))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "unusable: none of the 3 rows can be used (wrong_type: 3 rows, e.g. row 1: 'completion' is a number (5)" in r.stderr


def test_a_non_string_model_answer_is_one_line_not_a_traceback(advisor_main, tmp_path):
    # found by bench/fuzz.py: `model = true` in an answers file reached the tokenizer lookup as a bool
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": "b"}])
    answers = tmp_path / "a.toml"
    answers.write_text('goal = "domain"\nmodel = true\ngpu = "rtx4090"\n', encoding="utf-8")
    out = advisor_main("advise", "--answers", str(answers), "--dataset", str(data))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "'model' must be a model name or path" in out.stderr
