"""estimators.tables.read_table: the one reader of rules/*.toml inside the estimator (issue 14 §5). A broken table is
one EstimateError naming the file; a table is read once per process."""

from __future__ import annotations

import pytest

from estimators import tables
from estimators.errors import EstimateError


@pytest.fixture
def rules_copy(tmp_path, monkeypatch):
    """An empty rules folder in place of rules/, with read_table's cache emptied before and after."""
    monkeypatch.setattr(tables, "RULES_DIR", tmp_path)
    tables.read_table.cache_clear()
    yield tmp_path
    tables.read_table.cache_clear()


def test_malformed_table_is_one_error_naming_the_file(rules_copy):
    (rules_copy / "stacks.toml").write_text("[pinned\ntorch = ", encoding="utf-8")
    with pytest.raises(EstimateError, match=r"rules/stacks\.toml is not valid TOML"):
        tables.read_table("stacks.toml")


def test_missing_table_is_one_error_naming_the_file(rules_copy):
    with pytest.raises(EstimateError, match=r"cannot read rules/stacks\.toml"):
        tables.read_table("stacks.toml")


def test_undecodable_table_is_one_error_naming_the_file(rules_copy):
    (rules_copy / "stacks.toml").write_bytes(b"\xff\xfe[pinned]\n")
    with pytest.raises(EstimateError, match=r"rules/stacks\.toml"):
        tables.read_table("stacks.toml")


def test_a_table_is_read_once(rules_copy):
    path = rules_copy / "stacks.toml"
    path.write_text('[pinned]\ntorch = "2.13.0"\n', encoding="utf-8")
    first = tables.read_table("stacks.toml")
    path.write_text('[pinned]\ntorch = "9.9"\n', encoding="utf-8")  # a second read would see this
    assert tables.read_table("stacks.toml") is first
    assert first["pinned"]["torch"] == "2.13.0"


def test_the_shipped_tables_read_by_the_estimator_parse():
    tables.read_table.cache_clear()
    data = tables.read_table("stacks.toml")
    assert {"pinned", "stack", "behaviour"} <= set(data)
    assert tables.read_table("stacks.toml") is data
