"""Every row checked against the detected type, nothing changed. Problems are kept per kind: a count, the first
row numbers and the first detail, so a million bad rows cost a few integers, not a million messages.

An error is a row the trainer would stop on or load wrongly (the loader refuses it, a column is missing or of the
wrong type, the chat template cannot render it). A warning is a row that loads but teaches little or
something odd (an empty answer, a pair with no difference, a duplicate).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .detect import ROLES, SHAREGPT_ROLES, Detection

# kind -> (severity, what it means: printed once per kind)
KINDS = {
    "bad_json": ("error", "not valid JSON: the loader stops on it"),
    "not_an_object": ("error", "not an object with named columns"),
    "bad_csv": ("error", "not valid CSV (an open quote?)"),
    "wrong_field_count": ("error", "a different number of fields than the header: a stray or mixed delimiter, or an unquoted one in the text"),
    "row_too_long": ("error", "longer than the row limit; not read"),
    "non_utf8": ("error", "bytes that are not UTF-8: `datasets`/pyarrow refuse the file"),
    "missing_field": ("error", "a column the type needs is absent or null"),
    "wrong_type": ("error", "a column holds the wrong kind of value"),
    "bad_turn": ("error", "a turn that is not an object with a text role and content"),
    "unknown_role": ("error", "a role chat templates do not know"),
    "template_error": ("error", "the model's chat template refuses these turns (the trainer would stop here)"),
    "empty_field": ("warning", "an empty text or empty list of turns"),
    "role_order": ("warning", "turns out of order: system not first, the same speaker twice in a row, or a prompt that does not end with the user"),
    "no_answer": ("warning", "a conversation with no assistant turn: nothing to learn from it"),
    "same_chosen_rejected": ("warning", "chosen identical to rejected: the pair teaches nothing (its DPO/reward gradient is zero)"),
    "duplicate": ("warning", "the same row as an earlier one"),
}
FIRST_ROWS = 5
DUPLICATES_TRACKED = 2_000_000  # digests kept with their first row (~100 bytes each in a dict); past that, duplicates are not looked for
OPTIONAL = {"input", "context"}  # alpaca's input may be empty or absent


@dataclass
class Problem:
    kind: str
    count: int = 0
    first_rows: list[int] = field(default_factory=list)
    example: str = ""

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def to_data(self) -> dict:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "count": self.count,
            "first_rows": self.first_rows,
            "example": self.example,
            "what": KINDS[self.kind][1],
        }


class Log:
    """Problems by kind, in the order first seen."""

    def __init__(self) -> None:
        self.problems: dict[str, Problem] = {}
        self.error_rows = 0
        self.warning_rows = 0
        self.notes: list[str] = []  # what the check could not do, said once

    def add(self, kind: str, row: int, detail: str = "") -> None:
        p = self.problems.get(kind)
        if p is None:
            p = self.problems[kind] = Problem(kind, example=f"row {row}: {detail}" if detail else "")
        p.count += 1
        if len(p.first_rows) < FIRST_ROWS:
            p.first_rows.append(row)

    def row_done(self, kinds: set[str]) -> None:
        if any(KINDS[k][0] == "error" for k in kinds):
            self.error_rows += 1
        elif kinds:
            self.warning_rows += 1

    def sorted(self) -> list[Problem]:
        return sorted(self.problems.values(), key=lambda p: (p.severity != "error", -p.count))


class Validator:
    def __init__(self, det: Detection, log: Log):
        self.det, self.log = det, log
        self.seen: dict[bytes, int] = {}
        self.duplicates_tracked = True

    def check(self, number: int, row: dict, raw: bytes | None = None) -> set[str]:
        """The problem kinds of one row (logged as well)."""
        found: set[str] = set()

        def add(kind: str, detail: str = "") -> None:
            found.add(kind)
            self.log.add(kind, number, detail)

        for column, shape in self.det.fields.items():
            value = row.get(column)
            if value is None:
                if column not in OPTIONAL:
                    add("missing_field", f"'{column}' is {'null' if column in row else 'absent'}")
                continue
            if shape == "text":
                if not isinstance(value, str):
                    add("wrong_type", f"'{column}' is {_kind(value)}, expected text")
                elif not value.strip() and column not in OPTIONAL:
                    add("empty_field", f"'{column}' is empty")
            elif shape in ("turns", "sharegpt_turns"):
                self._turns(column, value, shape, add)
            elif shape == "bool":
                if not isinstance(value, bool):
                    add("wrong_type", f"'{column}' is {_kind(value)}, expected true/false")
        self._pair(row, add)
        self._duplicate(number, row, raw, add)
        self.log.row_done(found)
        return found

    def _turns(self, column: str, value: Any, shape: str, add) -> None:
        keys = ("from", "value") if shape == "sharegpt_turns" else ("role", "content")
        if isinstance(value, str):
            add("wrong_type", f"'{column}' is text, expected a list of turns (the other rows have turns)")
            return
        if not isinstance(value, list):
            add("wrong_type", f"'{column}' is {_kind(value)}, expected a list of turns")
            return
        if not value:
            add("empty_field", f"'{column}' has no turns")
            return
        roles = []
        for i, turn in enumerate(value):
            if not isinstance(turn, dict) or keys[0] not in turn:
                add("bad_turn", f"'{column}' turn {i + 1} has no '{keys[0]}'")
                return
            role, content = turn.get(keys[0]), turn.get(keys[1])
            if not isinstance(role, str):
                add("bad_turn", f"'{column}' turn {i + 1}: {keys[0]} is {_kind(role)}")
                return
            if shape == "sharegpt_turns":
                if role.lower() not in SHAREGPT_ROLES:
                    add("unknown_role", f"'{column}' turn {i + 1}: from '{role}'")
                    return
                role = SHAREGPT_ROLES[role.lower()]
            elif role not in ROLES:
                add("unknown_role", f"'{column}' turn {i + 1}: role '{role}'")
                return
            if content is None and not turn.get("tool_calls"):
                add("bad_turn", f"'{column}' turn {i + 1} ({role}) has no {keys[1]}")
                return
            if content is not None and not isinstance(content, (str, list)):
                add("bad_turn", f"'{column}' turn {i + 1} ({role}): {keys[1]} is {_kind(content)}")
                return
            if isinstance(content, str) and not content.strip() and role == "assistant":
                add("empty_field", f"'{column}' turn {i + 1}: empty assistant answer")
            roles.append(role)
        self._order(column, roles, add)

    def _order(self, column: str, roles: list[str], add) -> None:
        trl = next((t for t, s in self.det.source_columns.items() if s == column), column)
        if "system" in roles[1:]:
            add("role_order", f"'{column}': a system turn at position {roles.index('system', 1) + 1}")
            return
        talk = [r for r in roles if r in ("user", "assistant")]
        for a, b in zip(talk, talk[1:], strict=False):
            if a == b:
                add("role_order", f"'{column}': two {a} turns in a row")
                return
        if trl == "messages":
            if talk and talk[0] != "user":
                add("role_order", f"'{column}': starts with the assistant, not the user")
            elif "assistant" not in roles:
                add("no_answer", f"'{column}' has no assistant turn")
        elif trl == "prompt" and self.det.type != "language_modeling" and roles[-1] == "assistant" and self.det.type != "prompt_only":
            add("role_order", f"'{column}' ends with an assistant turn; the answer belongs in the completion")
        elif trl in ("completion", "chosen", "rejected") and "prompt" in self.det.source_columns and roles[0] != "assistant":
            add("role_order", f"'{column}' starts with a {roles[0]} turn, not the assistant's answer")

    def _pair(self, row: dict, add) -> None:
        if self.det.type in ("preference", "preference_implicit"):
            chosen, rejected = row.get("chosen"), row.get("rejected")
            if chosen is not None and chosen == rejected:
                add("same_chosen_rejected", "chosen == rejected")

    def _duplicate(self, number: int, row: dict, raw: bytes | None, add) -> None:
        """Byte-identical JSON lines (hashing the line is 3x faster than re-serialising it), or for the other formats
        the same values under the same keys."""
        if not self.duplicates_tracked:
            return
        if raw is None:
            raw = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        first = self.seen.get(digest)
        if first is not None:
            add("duplicate", f"repeats row {first}")
        else:
            self.seen[digest] = number
            if len(self.seen) >= DUPLICATES_TRACKED:
                self.duplicates_tracked = False


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
