"""Every row is validated against the detected type, nothing changed: problems grouped by kind with counts and
their first row numbers; exit 2 when a row would stop or mislead the trainer, 0 with warnings otherwise."""

from __future__ import annotations

import json

from conftest import run_advisor
from data_corpus import PREFERENCE, SFT_MESSAGES, turns, write_jsonl


def _check(path, *extra):
    r = run_advisor("data", "check", str(path), "--json", *extra)
    assert "Traceback" not in r.stderr
    data = json.loads(r.stdout)
    return r.returncode, data, {p["kind"]: p for p in data["problems"]}


def test_conversation_problems_grouped_with_first_rows(tmp_path):
    rows = [dict(r) for r in SFT_MESSAGES]  # rows 1..20 are clean
    rows[2] = {"messages": turns(("user", "Hi"), ("wizard", "Boo"))}  # row 3: unknown role
    rows[4] = {"messages": turns(("user", "A"), ("user", "B"), ("assistant", "C"))}  # row 5: two user turns
    rows[6] = {"messages": turns(("user", "A"), ("assistant", "B"), ("system", "late"))}  # row 7: late system
    rows[8] = {"messages": "just text"}  # row 9: wrong type
    rows[10] = {"messages": turns(("user", "only a question"))}  # row 11: nothing to learn
    rows[12] = {"messages": [{"role": "user"}]}  # row 13: a turn without content
    rows[14] = {"other": 1}  # row 15: no messages at all
    rows[16] = {"messages": turns(("user", "A"), ("assistant", ""))}  # row 17: empty answer
    rows[18] = dict(rows[0])  # row 19 repeats row 1
    before = write_jsonl(tmp_path / "c.jsonl", rows).read_bytes()
    code, data, p = _check(tmp_path / "c.jsonl")
    assert code == 2
    assert p["unknown_role"]["first_rows"] == [3] and "wizard" in p["unknown_role"]["example"]
    assert p["role_order"]["first_rows"] == [5, 7] and p["role_order"]["severity"] == "warning"
    assert p["wrong_type"]["first_rows"] == [9]
    assert p["no_answer"]["first_rows"] == [11]
    assert p["bad_turn"]["first_rows"] == [13]
    assert p["missing_field"]["first_rows"] == [15] and "'messages' is absent" in p["missing_field"]["example"]
    assert p["empty_field"]["first_rows"] == [17]
    assert p["duplicate"]["first_rows"] == [19] and "repeats row 1" in p["duplicate"]["example"]
    assert data["rows"]["with_errors"] == 4  # rows 3, 9, 13, 15
    assert data["rows"]["usable"] == 16
    assert [x["severity"] for x in data["problems"]] == sorted((x["severity"] for x in data["problems"]), key=lambda s: s != "error")
    assert (tmp_path / "c.jsonl").read_bytes() == before  # nothing changed


def test_preference_pairs(tmp_path):
    rows = [dict(r) for r in PREFERENCE]
    rows[1] = {"prompt": "Q", "chosen": "same", "rejected": "same"}
    rows[3] = {"prompt": "Q", "chosen": 5, "rejected": "x"}
    rows[5] = {"prompt": "Q", "chosen": "x", "rejected": None}
    code, data, p = _check(write_jsonl(tmp_path / "p.jsonl", rows))
    assert code == 2
    assert p["same_chosen_rejected"]["first_rows"] == [2]
    assert p["wrong_type"]["first_rows"] == [4] and "a number (5)" in p["wrong_type"]["example"]
    assert p["missing_field"]["first_rows"] == [6] and "'rejected' is null" in p["missing_field"]["example"]


def test_warnings_only_exit_0(tmp_path):
    rows = [dict(r) for r in PREFERENCE]
    rows[7] = {"prompt": rows[7]["prompt"], "chosen": "tie", "rejected": "tie"}
    rows.append(dict(rows[0]))
    code, data, p = _check(write_jsonl(tmp_path / "w.jsonl", rows))
    assert code == 0 and data["usable"] is True
    assert set(p) == {"same_chosen_rejected", "duplicate"}
    assert data["verdict"].startswith("usable, with warnings on 2 of 21 rows")


def test_counts_are_exact_past_the_first_rows(tmp_path):
    rows = [{"prompt": f"Q{i}", "completion": "" if i % 3 == 0 else f"A{i}"} for i in range(1, 301)]
    code, data, p = _check(write_jsonl(tmp_path / "e.jsonl", rows))
    assert p["empty_field"]["count"] == 100 and p["empty_field"]["first_rows"] == [3, 6, 9, 12, 15]


def test_clean_data_has_no_problems_and_human_output(tmp_path):
    f = write_jsonl(tmp_path / "ok.jsonl", SFT_MESSAGES)
    code, data, p = _check(f)
    assert code == 0 and p == {} and data["verdict"] == "usable: 20 rows, no problems found"
    text = run_advisor("data", "check", str(f), "--no-progress")
    assert text.returncode == 0 and "no problems found" in text.stdout


def test_sample_reads_only_the_first_rows(tmp_path):
    rows = [dict(r) for r in SFT_MESSAGES] + [{"messages": "broken"}]
    code, data, _ = _check(write_jsonl(tmp_path / "s.jsonl", rows), "--sample", "5")
    assert code == 0 and data["rows"]["read"] == 5 and data["rows"]["complete"] is False


def test_duplicate_tracking_is_capped_and_says_so(tmp_path, monkeypatch):
    import advisor.datasets.validate as validate
    from advisor.datasets import sources
    from advisor.datasets.check import Options, run_check
    from advisor.datasets.counters import ApproxCounter

    monkeypatch.setattr(validate, "DUPLICATES_TRACKED", 10)
    rows = [{"prompt": f"Q{i}", "completion": "A"} for i in range(30)] + [{"prompt": "Q25", "completion": "A"}]
    data = run_check(sources.resolve(str(write_jsonl(tmp_path / "d.jsonl", rows))), ApproxCounter(), Options())
    assert not any(p["kind"] == "duplicate" for p in data["problems"])  # row 31 repeats row 26, past the cap
    assert data["notes"] == ["duplicates were looked for in the first 10 rows only (memory)"]
