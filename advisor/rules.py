"""Read the rule tables in `rules/*.toml`.

The tables hold what the advisor knows: training methods, adaptation techniques (full / LoRA /
QLoRA), the situation → method table and the glossary. This module only reads them (stdlib
`tomllib`, through the parsed-file cache of estimators/toml_cache.py; no torch, no pydantic, so `advisor` stays
light); advisor/rules_check.py checks them against the schema of rules/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from estimators.tables import RULES_DIR

from .errors import AdvisorError

if TYPE_CHECKING:  # annotations only; Path satisfies it too
    from importlib.resources.abc import Traversable

Row = dict[str, Any]


class RulesError(AdvisorError):
    """The rule tables are missing, unreadable or inconsistent: one line on stderr, exit 2, at the CLI edge."""


# ---- loading ---------------------------------------------------------------------------------


def rules_dir() -> Path:
    """The shipped rules/ folder, beside the packages in a repo checkout and in an install alike: the one place
    estimators/tables.py reads its tables from too (no importlib.resources: it costs the start-up a few ms)."""
    return RULES_DIR


def load_table(name: str, root: Traversable | None = None) -> Row:
    """Parse `rules/<name>.toml` (`name` with or without the suffix)."""
    stem = name.removesuffix(".toml")
    path = (root or rules_dir()).joinpath(f"{stem}.toml")
    try:
        if root is None and isinstance(path, Path):  # a shipped table on disk: parsed once, then read from the user's cache
            from estimators.toml_cache import load_toml

            return load_toml(path)
        import tomllib  # a table being checked (advisor/rules_check.py), or inside an archive: parsed every time

        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RulesError(f"{stem}.toml: file not found") from exc
    except ValueError as exc:  # tomllib.TOMLDecodeError, without importing the parser on a cache hit
        raise RulesError(f"{stem}.toml: invalid TOML: {exc}") from exc


def _by_id(rows: list[Row]) -> dict[str, Row]:
    return {row["id"]: row for row in rows}


def methods(root: Traversable | None = None) -> dict[str, Row]:
    """Training methods by id (sft, rlhf, dpo, then marked additions), in file order."""
    return _by_id(load_table("methods", root).get("method", []))


def adaptations(root: Traversable | None = None) -> dict[str, Row]:
    """full / lora / qlora by id."""
    return _by_id(load_table("adaptations", root).get("adaptation", []))


def selection_rows(root: Traversable | None = None) -> list[Row]:
    """The §6 situation → recommendation rows, in document order."""
    return load_table("selection", root).get("situation", [])


def goal_row(goal: str, rows: list[Row] | None = None) -> Row | None:
    """The §6 selection row that answers the goal `goal` (its `goal` field), None for a goal beyond the table."""
    return next((row for row in (selection_rows() if rows is None else rows) if row.get("goal") == goal), None)


def table_goal_row(goal: str, rows: list[Row] | None = None) -> Row:
    """goal_row of a goal the advice reads from the table (a wizard goal marked `selection`, the RLHF-vs-DPO
    row): a table without it is inconsistent, said in one line rather than a traceback."""
    row = goal_row(goal, rows)
    if row is None:
        raise RulesError(f"selection.toml: no [[situation]] row has goal = {goal!r}, which the advice reads from the table")
    return row


def recommended(row: Row) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(methods, adaptations) the row recommends: pick one of each; no adaptations = the document leaves it open."""
    rec = row["recommend"]
    return tuple(rec.get("methods", ())), tuple(rec.get("adaptations", ()))


def rlhf_vs_dpo(root: Traversable | None = None) -> list[Row]:
    """The §6 RLHF-vs-DPO comparison rows, in document order."""
    return load_table("selection", root).get("rlhf_vs_dpo", [])


def glossary(root: Traversable | None = None) -> dict[str, Row]:
    """Glossary terms by id."""
    return _by_id(load_table("glossary", root).get("term", []))


def text(row: Row, name: str, lang: str = "en") -> str:
    """The `lang` version of a bilingual field, e.g. text(row, "concept", "ko")."""
    return row[f"{name}_{lang}"]


# ---- validation ------------------------------------------------------------------------------
