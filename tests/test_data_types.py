"""Type detection: TRL's six types in standard and conversational form, and the community formats mapped onto
them; what each can train; and the row function a generated script pastes gives the rows that were measured."""

from __future__ import annotations

import json

import pytest
from data_corpus import turns, write_jsonl

from advisor.datasets.detect import detect, to_trl
from advisor.datasets.spec import formatting_spec
from advisor.errors import AdvisorError

U, A = turns(("user", "Hi?")), turns(("assistant", "Hello."))
CASES = [
    ({"text": "Some raw text."}, "language_modeling", "standard", "trl"),
    ({"messages": U + A}, "language_modeling", "conversational", "trl"),
    ({"prompt": "Hi?"}, "prompt_only", "standard", "trl"),
    ({"prompt": U}, "prompt_only", "conversational", "trl"),
    ({"prompt": "Hi?", "completion": "Hello."}, "prompt_completion", "standard", "trl"),
    ({"prompt": U, "completion": A}, "prompt_completion", "conversational", "trl"),
    ({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}, "preference", "standard", "trl"),
    ({"prompt": U, "chosen": A, "rejected": turns(("assistant", "No."))}, "preference", "conversational", "trl"),
    ({"chosen": "Q: Hi? A: Hello.", "rejected": "Q: Hi? A: No."}, "preference_implicit", "standard", "trl"),
    ({"chosen": U + A, "rejected": U + turns(("assistant", "No."))}, "preference_implicit", "conversational", "trl"),
    ({"prompt": "Hi?", "completion": "Hello.", "label": True}, "unpaired_preference", "standard", "trl"),
    ({"prompt": U, "completion": A, "label": False}, "unpaired_preference", "conversational", "trl"),
    ({"instruction": "Add 2 and 3.", "input": "", "output": "5"}, "prompt_completion", "conversational", "alpaca"),
    ({"instruction": "Summarise.", "context": "Long text.", "response": "Short."}, "prompt_completion", "conversational", "alpaca"),
    ({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}, "language_modeling", "conversational", "sharegpt"),
    ({"question": "2+2?", "answer": "4"}, "prompt_completion", "standard", "question_answer"),
]


@pytest.mark.parametrize("row, type_, form, fmt", CASES, ids=[f"{c[1]}-{c[2]}-{c[3]}" for c in CASES])
def test_detects_type_form_and_format(row, type_, form, fmt):
    det = detect([row] * 3)
    assert (det.type, det.form, det.format) == (type_, form, fmt)


FEEDS = {  # type/form -> the kinds it can feed, in KINDS order: sft reward dpo grpo ppo
    "language_modeling-standard": "y n n n n",
    "language_modeling-conversational": "y n n y y",
    "prompt_only-standard": "n n n y y",
    "prompt_completion-standard": "y n n y y",
    "preference-standard": "y y y y y",
    "preference_implicit-standard": "y y y n n",
    "unpaired_preference-standard": "y n n y y",
}


@pytest.mark.parametrize("key", FEEDS)
def test_which_kinds_each_type_feeds(key):
    row = next(c[0] for c in CASES if f"{c[1]}-{c[2]}" == key and c[3] == "trl")
    det = detect([row])
    got = " ".join("y" if det.feeds(k)[0] else "n" for k in ("sft", "reward", "dpo", "grpo", "ppo"))
    assert got == FEEDS[key]
    assert all(det.feeds(k)[1] for k in ("sft", "reward", "dpo", "grpo", "ppo"))  # every verdict says why


def test_alpaca_input_joins_the_instruction():
    det = detect([{"instruction": "Translate.", "input": "hello", "output": "안녕"}])
    assert to_trl({"instruction": "Translate.", "input": "hello", "output": "안녕"}, det) == {
        "prompt": [{"role": "user", "content": "Translate.\n\nhello"}],
        "completion": [{"role": "assistant", "content": "안녕"}],
    }
    assert to_trl({"instruction": "Say hi.", "input": "", "output": "hi"}, det)["prompt"][0]["content"] == "Say hi."


def test_sharegpt_roles_mapped():
    row = {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hi."}]}
    assert [t["role"] for t in to_trl(row, detect([row]))["messages"]] == ["system", "user", "assistant"]


ROWS_FOR_SPEC = [
    ({"instruction": "Add 2 and 3.", "input": "Use digits.", "output": "5"}, "sft"),
    ({"instruction": "Add 2 and 3.", "input": "", "output": "5"}, "grpo"),
    ({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}, "sft"),
    ({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}, "grpo"),
    ({"question": "2+2?", "answer": "4"}, "sft"),
    ({"prompt": "Hi?", "chosen": "Hello.", "rejected": "No."}, "sft"),
    ({"messages": U + A}, "ppo"),
]


@pytest.mark.parametrize("row, kind", ROWS_FOR_SPEC)
def test_formatting_function_matches_the_measured_mapping(row, kind):
    det = detect([row])
    spec = formatting_spec(det, kind)
    assert spec["feeds"] and spec["function"]
    namespace: dict = {}
    exec(spec["function"], namespace)  # the source a generated script would paste
    mapped = namespace["to_trl"](dict(row))
    assert sorted(mapped) == sorted(spec["columns"])
    if kind == "sft" and det.type != "preference":
        assert mapped == to_trl(row, det)
    if kind in ("grpo", "ppo"):
        assert mapped["prompt"] and "completion" not in mapped


def test_trl_columns_need_no_function():
    det = detect([{"prompt": "Hi?", "completion": "Hello."}])
    spec = formatting_spec(det, "sft")
    assert spec["function"] is None and spec["remove_columns"] == [] and spec["columns"] == ["prompt", "completion"]
    assert formatting_spec(det, "dpo")["feeds"] is False


def test_unknown_columns_list_what_each_type_needs():
    with pytest.raises(AdvisorError, match=r"no known dataset type in the columns foo \(text\), bar \(number\)"):
        detect([{"foo": "x", "bar": 1}])


def test_cli_prints_mapping_and_kinds(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "alpaca.jsonl", [{"instruction": f"Say {i}.", "input": "", "output": str(i)} for i in range(10)])
    r = advisor_main("data", "check", str(f), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "advisor.data/1"
    assert data["type"]["format"] == "alpaca" and data["type"]["mapping"]["completion"] == "output"
    assert data["kinds"]["dpo"]["ok"] is False and "one completion per prompt" in data["kinds"]["dpo"]["how"]
    assert data["formatting"]["function"].startswith("def to_trl(row):")
    text = advisor_main("data", "check", str(f), "--no-progress").stdout
    assert "column mapping" in text and "what it can train" in text and "alpaca" in text


def test_wrong_kind_for_the_data_exits_2(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"Q{i}?"} for i in range(5)])
    r = advisor_main("data", "check", str(f), "--train", "dpo", "--no-progress")
    assert r.returncode == 2 and "unusable for dpo: DPO needs chosen/rejected pairs" in r.stderr


def test_help_lists_the_data_command(advisor_main):
    out = advisor_main("--help")
    assert out.returncode == 0 and "data" in out.stdout and "check your training data" in out.stdout
    sub = advisor_main("data", "check", "--help")
    assert sub.returncode == 0 and "advisor data check train.jsonl" in sub.stdout and "advisor.data/1" in sub.stdout
