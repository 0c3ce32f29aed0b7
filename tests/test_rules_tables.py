"""The rule tables in rules/*.toml: they load, they validate, they match the source document,
and the validator really reports broken tables (all problems at once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from advisor import rules, rules_check

# §6 of the source document, verbatim and in order.
DOC_SITUATIONS = [
    "대화 형식만 가르치고 싶다",
    "답변 품질/안전성 높이고 싶다",
    "리소스가 충분하고 최고 품질 원함",
    "리소스 제한적, 간단하게 하고 싶다",
    "개인 GPU로 파인튜닝 하고 싶다",
    "특정 도메인 적응만 필요",
]


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    """A writable copy of the shipped tables, to break on purpose."""
    for src in Path(str(rules.rules_dir())).glob("*.toml"):
        shutil.copy(src, tmp_path / src.name)
    return tmp_path


def _append(root: Path, name: str, toml: str) -> None:
    with open(root / name, "a", encoding="utf-8") as f:
        f.write("\n" + toml)


def _replace_once(root: Path, name: str, old: str, new: str) -> None:
    path = root / name
    content = path.read_text(encoding="utf-8")
    assert old in content, f"fixture text {old!r} not in {name}"
    path.write_text(content.replace(old, new, 1), encoding="utf-8")


# ---- the shipped tables ----------------------------------------------------------------------


def test_shipped_tables_are_valid():
    assert rules_check.validate_all() == []
    rules_check.check()  # does not raise


def test_rules_dir_holds_the_tables():
    root = rules.rules_dir()
    for name in ("methods", "adaptations", "selection", "glossary"):
        assert root.joinpath(f"{name}.toml").is_file()


def test_load_table_accepts_suffix():
    assert rules.load_table("methods.toml") == rules.load_table("methods")


def test_doc_methods_and_rlhf_steps():
    methods = rules.methods()
    assert list(methods)[:3] == ["sft", "rlhf", "dpo"]
    assert [methods[m]["source"] for m in ("sft", "rlhf", "dpo")] == ["§2", "§3", "§4"]
    steps = methods["rlhf"]["steps"]
    assert [s["id"] for s in steps] == ["comparison_data", "reward_model", "ppo"]
    assert [s["order"] for s in steps] == [1, 2, 3]
    assert methods["sft"]["data_ko"] == "사람이 직접 작성한 instruction-response 쌍"


def test_additions_are_marked_and_cite_papers():
    methods = rules.methods()
    additions = {m for m, row in methods.items() if row.get("addition")}
    assert additions == {"grpo", "rloo", "orpo", "kto"}
    for m in additions:
        assert methods[m]["source"].startswith("paper: ")
    assert "arXiv:2402.03300" in methods["grpo"]["source"]
    assert "arXiv:2305.18290" in methods["dpo"]["reference"]


def test_vram_rule_of_thumb_is_60_16_6():
    adaptations = rules.adaptations()
    assert {a: row["vram_7b_gb"] for a, row in adaptations.items()} == {"full": 60, "lora": 16, "qlora": 6}
    assert adaptations["qlora"]["feature_ko"] == "개인 GPU로 가능"
    assert all(row["source"] == "§5" for row in adaptations.values())
    assert "RTX 3060 Ti로 7B 모델 QLoRA 가능!" in [w["ko"] for w in adaptations["qlora"]["when_to_use"]]


def test_selection_has_the_six_doc_rows_verbatim():
    rows = rules.selection_rows()
    assert [r["situation_ko"] for r in rows] == DOC_SITUATIONS
    assert all(r["source"] == "§6" for r in rows)
    recommended = {r["id"]: (r["recommend"]["methods"], r["recommend"]["adaptations"]) for r in rows}
    assert recommended == {
        "sel.chat_format": (["sft"], []),
        "sel.quality_safety": (["rlhf", "dpo"], []),
        "sel.best_quality_resources": (["rlhf"], []),
        "sel.limited_simple": (["dpo"], []),
        "sel.personal_gpu": (["sft"], ["qlora"]),
        "sel.domain": (["sft"], ["lora", "qlora"]),
    }


def test_rlhf_vs_dpo_comparison():
    rows = {r["id"]: r for r in rules.rlhf_vs_dpo()}
    assert list(rows) == ["cmp.difficulty", "cmp.stability", "cmp.performance", "cmp.cost", "cmp.choose_when"]
    assert (rows["cmp.cost"]["rlhf_ko"], rows["cmp.cost"]["dpo_ko"]) == ("높음", "낮음")


def test_glossary_has_the_five_doc_terms():
    doc_terms = {row["term"] for row in rules.glossary().values() if row["source"] == "§7"}
    assert doc_terms == {"Alignment", "Constitutional AI", "RLAIF", "Instruction Tuning", "Post-training"}
    assert rules.text(rules.glossary()["instruction_tuning"], "definition", "ko") == "SFT의 다른 표현"


# ---- the validator catches broken tables -----------------------------------------------------

BROKEN_METHOD = """
[[method]]
id = "sft"
name = "duplicate"
source = "§2"
family = "supervised"
data_kind = "instruction_pairs"
reward_model = "none"
concept_ko = "영어 번역이 없음"
data_ko = "x"
data_en = "x"
cost_ko = "x"
cost_en = "x"
output_ko = "x"
output_en = "x"
strengths = [{ ko = "x", en = "x" }]
limits = [{ ko = "x" }]
"""

UNKNOWN_REFERENCE = """
[[situation]]
id = "sel.unknown"
source = "§6"
situation_ko = "x"
situation_en = "x"
recommend_ko = "x"
recommend_en = "x"
recommend = { methods = ["ppo_x"], adaptations = ["qlora8"] }
"""


def test_validator_reports_all_problems_together(rules_copy: Path):
    _append(rules_copy, "methods.toml", BROKEN_METHOD)
    _append(rules_copy, "selection.toml", UNKNOWN_REFERENCE)
    _replace_once(rules_copy, "selection.toml", 'dpo_en = "Low"', "")
    _replace_once(rules_copy, "methods.toml", 'addition = true\nsource = "paper: Shao', 'addition = true\nsource = "§4"\nx = "paper: Shao')

    problems = rules_check.validate_all(rules_copy)
    expected = [
        "missing en text 'concept_en'",
        "missing en text 'limits[0].en'",
        "duplicate row id 'sft'",
        "unknown method id 'ppo_x'",
        "unknown adaptation id 'qlora8'",
        "cmp.difficulty: missing en text 'dpo_en'",
        "grpo: addition needs source 'paper:",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), f"{fragment!r} not reported in {problems}"

    with pytest.raises(rules.RulesError) as err:
        rules_check.check(rules_copy)
    assert all(fragment in str(err.value) for fragment in expected)


def test_validator_checks_sources(rules_copy: Path):
    _replace_once(rules_copy, "glossary.toml", 'source = "§7"', 'source = "somewhere"')
    _replace_once(rules_copy, "adaptations.toml", 'source = "§5"', "")
    problems = rules_check.validate_all(rules_copy)
    assert any("alignment: source must be a document section" in p for p in problems)
    assert any("full: missing required field 'source'" in p for p in problems)


def test_validator_reports_parse_errors_and_keeps_going(rules_copy: Path):
    (rules_copy / "glossary.toml").write_text("this is = = not toml", encoding="utf-8")
    (rules_copy / "adaptations.toml").unlink()
    _append(rules_copy, "selection.toml", UNKNOWN_REFERENCE)
    problems = rules_check.validate_all(rules_copy)
    assert any(p.startswith("glossary.toml: invalid TOML") for p in problems)
    assert "adaptations.toml: file not found" in problems
    assert not any("sel.unknown" in p for p in problems)  # refs skipped: adaptations unreadable
    assert not any(p.startswith("methods.toml") for p in problems)


def test_validator_checks_tables_owned_elsewhere(rules_copy: Path):
    (rules_copy / "gpus.toml").write_text('[[gpu]]\nid = "a"\n[[gpu]]\nid = "a"\n', encoding="utf-8")
    assert rules_check.validate_all(rules_copy) == ["gpus.toml [[gpu]]: duplicate row id 'a'"]


def test_rules_dir_can_be_redirected(rules_copy: Path, monkeypatch: pytest.MonkeyPatch):
    _append(rules_copy, "selection.toml", UNKNOWN_REFERENCE)
    monkeypatch.setattr(rules, "rules_dir", lambda: rules_copy)
    assert any("unknown method id 'ppo_x'" in p for p in rules_check.validate_all())
    assert rules.selection_rows()[-1]["id"] == "sel.unknown"
