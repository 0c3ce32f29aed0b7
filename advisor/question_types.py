"""What a question is: its kind, texts in both languages, choices, and how one answer is parsed and checked. The
questions themselves are declared in advisor/questions.py. Standard library only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import AdvisorError

KINDS = ("choice", "int", "float", "text", "bool")


@dataclass(frozen=True)
class Choice:
    value: str
    label_ko: str
    label_en: str
    explain_ko: str
    explain_en: str
    cites: tuple[str, ...] = ()  # rule ids in rules/*.toml this choice leads to
    # a goal answered by a §6 selection row (rules/selection.toml `goal`): the explanation and the row's id and
    # recommendation are read from the row, so the table is the one copy
    selection: bool = False

    @property
    def rules(self) -> tuple[str, ...]:
        if not self.selection:
            return self.cites
        from . import rules

        row = rules.table_goal_row(self.value)
        methods, adaptations = rules.recommended(row)
        return (row["id"], *methods, *adaptations, *self.cites)

    def text(self, name: str, lang: str = "en") -> str:
        if name == "explain" and self.selection:
            from . import rules

            row = rules.table_goal_row(self.value)
            return f"{rules.text(row, 'situation', lang)} → {rules.text(row, 'recommend', lang)}"
        return getattr(self, f"{name}_{lang}")


@dataclass(frozen=True)
class Question:
    id: str
    kind: str  # one of KINDS
    label_ko: str
    label_en: str
    help_ko: str
    help_en: str
    default: Any = None
    choices: tuple[Choice, ...] = ()
    multiple: bool = False  # choice questions only: several values (a list, or "a,b" on the command line)
    required: bool = False
    minimum: float | None = None  # int / float: smallest valid value
    rules: tuple[str, ...] = ()  # rule ids the question as a whole relates to
    metavar: str = ""  # the flag's value in --help (default: the id in capitals)

    @property
    def flag(self) -> str:
        return "--" + self.id.replace("_", "-")

    @property
    def optional(self) -> bool:
        """May stay unanswered (None) without a default."""
        return not self.required and self.default is None

    def text(self, name: str, lang: str = "en") -> str:
        return getattr(self, f"{name}_{lang}")

    def choice(self, value: str) -> Choice:
        for c in self.choices:
            if c.value == value:
                return c
        raise KeyError(value)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(c.value for c in self.choices)

    def parse(self, raw: Any) -> Any:
        """The validated value of one answer (None: unanswered). Raises AdvisorError with the valid choices."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if self.kind == "choice":
            return self._parse_choice(raw)
        if self.kind in ("int", "float"):
            return self._parse_number(raw)
        if self.kind == "bool":
            return self._parse_bool(raw)
        if not isinstance(raw, str):
            raise AdvisorError(f"{self.flag}: expected text, got {raw!r}")
        return raw.strip()

    def _parse_choice(self, raw: Any) -> Any:
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",") if self.multiple else [raw]
        out: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise AdvisorError(f"{self.flag}: expected one of {', '.join(self.values)}, got {item!r}")
            value = item.strip().lower().replace("-", "_")
            if value not in self.values:
                many = " (several: comma-separated)" if self.multiple else ""
                raise AdvisorError(f"{self.flag}: unknown choice '{item.strip()}'; valid{many}: {', '.join(self.values)}")
            if value not in out:
                out.append(value)
        if not self.multiple:
            if len(out) != 1:
                raise AdvisorError(f"{self.flag}: give one of {', '.join(self.values)}")
            return out[0]
        if not out:
            raise AdvisorError(f"{self.flag}: give at least one of {', '.join(self.values)}")
        return tuple(out)

    def _parse_number(self, raw: Any) -> int | float:
        cast = int if self.kind == "int" else float
        what = "a whole number" if self.kind == "int" else "a number"
        if isinstance(raw, bool):
            raise AdvisorError(f"{self.flag}: expected {what}, got {raw!r}")
        text = raw.strip().replace("_", "").replace(",", "") if isinstance(raw, str) else raw
        scale = 1
        if self.id == "seq_len" and isinstance(text, str) and text[-1:] in ("k", "K"):
            text, scale = text[:-1], 1024  # 8k, 32k: context lengths as people say them
        try:
            value = cast(text) * scale
        except (TypeError, ValueError, OverflowError):
            raise AdvisorError(f"{self.flag}: expected {what}, got {_shown(raw)}") from None
        if self.kind == "int" and isinstance(raw, float) and raw != int(raw):
            raise AdvisorError(f"{self.flag}: expected {what}, got {_shown(raw)}")
        if abs(value) > 2**31 - 1 or (isinstance(value, float) and not math.isfinite(value)):  # nan, inf, 1e400: no answer is that large
            raise AdvisorError(f"{self.flag}: expected a finite {what.removeprefix('a ')} below {2**31 - 1:,}, got {_shown(raw)}")
        if self.minimum is not None and value < self.minimum:
            raise AdvisorError(f"{self.flag}: must be at least {self.minimum:g}, got {value:g}")
        return value

    def _parse_bool(self, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        low = str(raw).strip().lower()
        if low in ("true", "yes", "y", "1", "on"):
            return True
        if low in ("false", "no", "n", "0", "off"):
            return False
        raise AdvisorError(f"{self.flag}: expected true or false, got '{raw}'")


def _shown(raw: Any) -> str:
    from estimators.gpu_names import shown  # quoted, control characters escaped, long values cut

    return shown(str(raw))
