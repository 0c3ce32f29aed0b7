"""The message catalog (rules/messages.toml, advisor/messages.py) and the language-neutral plan it makes possible:
every row complete and used, both templates filling the same fields, and a plan that keeps both languages so an
English run README never carries the Korean a Korean wizard run was shown (issue 14 §3)."""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from advisor import messages, rules, rules_check
from advisor.advice.advise import advise
from advisor.answers import Answers
from advisor.errors import AdvisorError
from advisor.plan import Plan
from advisor.plan_render import print_plan

ADVISOR = Path(__file__).resolve().parent.parent / "advisor"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
# DPO over a time and money budget on an A100: warnings, paged optimizer states, the §5 note and a time assumption
ANSWERS = dict(goal="best_quality", data="preference_pairs", gpu="a100-80gb", model="8b", time_budget_hours=5, budget_usd=100)


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def rows() -> list[dict]:
    return rules.load_table("messages")["message"]


def literals() -> set[str]:
    """Every string constant in advisor/**/*.py: message ids are written out where they are used."""
    found = set()
    for path in ADVISOR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.add(node.value)
    return found


def test_every_row_has_an_id_and_both_languages_and_nothing_else():
    for row in rows():
        assert set(row) == {"id", "en", "ko"}, row  # no `source`: messages are words, not facts
        assert all(isinstance(row[k], str) and row[k].strip() for k in ("id", "en", "ko")), row


def test_ids_are_unique():
    ids = [row["id"] for row in rows()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_both_templates_of_a_row_fill_the_same_fields():
    for row in rows():
        assert messages.fields(row["en"]) == messages.fields(row["ko"]), row["id"]


def test_every_id_the_code_uses_exists_and_every_row_is_used():
    ids = {row["id"] for row in rows()}
    spaces = {i.split(".", 1)[0] for i in ids}
    shaped = re.compile(rf"^(?:{'|'.join(map(re.escape, sorted(spaces)))})\.[a-z0-9_.]+$")
    used = {s for s in literals() if shaped.match(s)}
    assert used - ids == set(), "ids used in advisor/ but missing from rules/messages.toml"
    assert ids - used == set(), "rows of rules/messages.toml no code uses"


def test_message_namespaces_are_not_rule_ids():
    """A rule id (sel.*, cmp.*, hp.*) never looks like a message id, so the usage scan above cannot mistake one."""
    spaces = {row["id"].split(".", 1)[0] for row in rows()}
    rule_ids = {row["id"] for row in rules.selection_rows() + rules.rlhf_vs_dpo()} | set(rules.methods()) | set(rules.adaptations())
    assert not {r for r in rule_ids if r.split(".", 1)[0] in spaces}


def test_text_fills_a_template_and_a_pair_argument_per_language():
    assert messages.text("part.hours", "en", hours=5) == "5 h" and messages.text("part.hours", "ko", hours=5) == "5시간"
    assert messages.both("part.time_and_money", time=messages.both("part.hours", hours=2.5), money="$10") == ("2.5 h and $10", "2.5시간, $10")
    assert messages.join([("a", "가"), "", ("b", "나")]) == ("a; b", "가; 나")


def test_a_missing_id_or_field_is_a_clear_error():
    with pytest.raises(AdvisorError, match="no message 'warn.nope'"):
        messages.text("warn.nope", "en")
    with pytest.raises(AdvisorError, match="'part.hours' .*needs the field 'hours'"):
        messages.both("part.hours")
    with pytest.raises(AdvisorError, match="unknown language 'fr'"):
        messages.text("part.hours", "fr", hours=1)


def test_the_rule_tables_still_check_clean_and_a_duplicate_message_id_is_caught(tmp_path):
    assert rules_check.validate_all() == []
    root = tmp_path / "rules"
    shutil.copytree(rules.rules_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    catalog = root / "messages.toml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + '\n[[message]]\nid = "part.hours"\nen = "x"\nko = "x"\n', encoding="utf-8")
    assert any("messages.toml" in p and "part.hours" in p for p in rules_check.validate_all(root))


# ------------------------------------------------------------------------------------------------ the leak
@pytest.fixture(scope="module")
def plan() -> Plan:
    return advise(Answers.from_mapping(ANSWERS))


def test_the_plan_keeps_every_text_in_both_languages(plan):
    assert plan.warnings and all(w.en and w.ko for w in plan.warnings)
    est = plan.estimate
    for name in ("margin_note", "paged_note", "rule_of_thumb_note"):
        assert getattr(est, name) and getattr(est, f"{name}_ko"), name
    assert plan.time.assumption and plan.time.assumption_ko


def test_a_korean_run_writes_no_korean_into_the_english_fields(plan):
    """The old advise(lang="ko") kept only Korean warnings and notes, and the run README (English) printed them."""
    est = plan.estimate
    english = [w.en for w in plan.warnings] + [est.margin_note, est.paged_note, est.rule_of_thumb_note, plan.time.assumption]
    assert not [text for text in english if HANGUL.search(text)]
    korean = [w.ko for w in plan.warnings] + [est.margin_note_ko, est.paged_note_ko, est.rule_of_thumb_note_ko, plan.time.assumption_ko]
    assert all(HANGUL.search(text) for text in korean)


def test_the_run_readme_is_english_with_the_notes(plan):
    from advisor.scriptgen import render

    readme = dict(render(plan))["README.md"]
    est = plan.estimate
    assert est.margin_note[1:] in readme and est.paged_note[1:] in readme and est.rule_of_thumb_note in readme
    assert not HANGUL.search(readme)


def test_the_saved_plan_reads_back_the_same_and_a_plan_from_before_still_loads(plan):
    data = plan.to_data()
    assert Plan.from_data(data) == plan
    old = Plan.from_data({**data, "warnings": ["a warning saved as a plain string"]})
    assert old.warnings[0].en == "a warning saved as a plain string" and old.warnings[0].text("ko") == old.warnings[0].en


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_printer_picks_the_language(plan, lang):
    buf = io.StringIO()
    print_plan(plan, Answers.from_mapping(ANSWERS), lang, console=Console(file=buf, width=400))
    out = squeeze(buf.getvalue())  # rich wraps the long warnings
    est = plan.estimate
    for w in plan.warnings:
        assert squeeze(w.text(lang)) in out
    assert squeeze(est.note("margin_note", lang)) in out and squeeze(est.note("paged_note", lang)) in out
    if lang == "en":
        assert not HANGUL.search(out)
    else:
        assert all(squeeze(w.en) not in out for w in plan.warnings) and squeeze(est.margin_note) not in out


def test_advise_json_is_the_same_plan_whatever_the_language(advisor_main):
    args = ["advise", "--goal", "best_quality", "--data", "preference_pairs", "--gpu", "h100", "--model", "70b", "--json"]
    en, ko = advisor_main(*args, "--lang", "en"), advisor_main(*args, "--lang", "ko")
    assert en.returncode == ko.returncode == 0, en.stderr + ko.stderr
    assert json.loads(en.stdout) == json.loads(ko.stdout)
    warnings = json.loads(en.stdout)["warnings"]
    assert warnings and all(set(w) == {"en", "ko"} for w in warnings)  # --json: each warning in both languages
