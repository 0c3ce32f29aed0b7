"""The source document's tables as the advice cites them: the rule rows (§6 selection, §6 RLHF vs DPO, the methods
of §2-§4, the §5 adaptations) read once, their texts in both languages, and the Reason and Alternative builders
that carry a rule id."""

from __future__ import annotations

from functools import cache

from .. import rules
from ..messages import Pair, both, join
from ..names import ADAPTATIONS
from ..plan import Alternative, Plan, Reason


def reason(rule: str, said: Pair) -> Reason:
    return Reason(rule=rule, en=said[0], ko=said[1])


def alternative(method: str, rule: str, said: Pair) -> Alternative:
    return Alternative(method=method, why_not_en=said[0], why_not_ko=said[1], rule=rule)


def row_text(row: dict, name: str) -> Pair:
    """A bilingual field of a rule row, (en, ko): the argument a message cites it by."""
    return rules.text(row, name, "en"), rules.text(row, name, "ko")


def adaptation_name(adaptation: str) -> Pair:
    return ADAPTATIONS[adaptation]


@cache
def _rows() -> dict[str, dict]:
    return {row["id"]: row for row in rules.selection_rows()}


@cache
def comparison_rows() -> dict[str, dict]:
    return {row["id"]: row for row in rules.rlhf_vs_dpo()}


@cache
def method_rows() -> dict[str, dict]:
    return rules.methods()


@cache
def adaptation_rows() -> dict[str, dict]:
    return rules.adaptations()


def goal_row(goal: str) -> dict | None:
    """The §6 selection row that answers the goal `goal` (its `goal` field), None for a goal beyond the table."""
    return rules.goal_row(goal, list(_rows().values()))


def table_goal_row(goal: str) -> dict:
    """rules.table_goal_row over the rows read once: the row of a goal the advice needs the table to answer."""
    return rules.table_goal_row(goal, list(_rows().values()))


def row_cite(row: dict) -> Pair:
    """'§6 “situation” → recommendation'."""
    return both("part.row_cite", situation=row_text(row, "situation"), recommend=row_text(row, "recommend"))


def row_reason(rid: str, extra: Pair | str = "") -> Reason:
    """The row's citation, then what the user's answers add to it, citing the row."""
    return reason(rid, join([row_cite(_rows()[rid]), extra]))


def comparison_text(rid: str, side: str) -> Pair:
    """'label: side' of a §6 RLHF-vs-DPO row."""
    row = comparison_rows()[rid]
    return both("part.comparison", label=row_text(row, "label"), value=row_text(row, side))


def choose_when(side: str) -> Pair:
    """When §6 picks `side` ("rlhf" or "dpo")."""
    return row_text(comparison_rows()["cmp.choose_when"], side)


def comparison_close(plan: Plan) -> bool:
    """True when RLHF vs DPO was a close call (the plan cites the comparison's deciding row)."""
    return any(r.rule == "cmp.choose_when" for r in plan.reasons)
