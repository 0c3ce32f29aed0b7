"""The advice's sentences: rules/messages.toml holds each one under a message id, in English and Korean, as
str.format templates with named fields. The advice stores both languages (Reason, Alternative, Note, the summary
notes) and the renderers pick one, so a plan reads the same whatever language the run was asked in.

An argument given as an (en, ko) pair, such as a rule-table text or another message from `both`, goes into each
language's template in that language; any other argument goes into both as it is.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from functools import cache

from .errors import AdvisorError
from .lang import LANGS
from .rules import load_table

Pair = tuple[str, str]  # (en, ko)


@cache
def catalog() -> dict[str, dict[str, str]]:
    """The `[[message]]` rows of rules/messages.toml by id."""
    return {row["id"]: row for row in load_table("messages").get("message", [])}


def fields(template: str) -> set[str]:
    """The named fields a template fills: "{n:,} examples of {seq} tokens" -> {"n", "seq"}."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def text(mid: str, lang: str, **args) -> str:
    """Message `mid` in `lang`, its fields filled from `args`."""
    row = catalog().get(mid)
    if row is None:
        raise AdvisorError(f"rules/messages.toml has no message '{mid}'")
    if lang not in LANGS:
        raise AdvisorError(f"unknown language '{lang}'; valid: {', '.join(LANGS)}")
    index = 0 if lang == "en" else 1
    values = {k: (v[index] if isinstance(v, tuple) else v) for k, v in args.items()}
    try:
        return row[lang].format(**values)
    except KeyError as exc:
        raise AdvisorError(f"rules/messages.toml message '{mid}' ({lang}) needs the field '{exc.args[0]}'") from None


def both(mid: str, **args) -> Pair:
    """Message `mid` in English and Korean: what Reason, Alternative and Note keep."""
    return text(mid, "en", **args), text(mid, "ko", **args)


def join(parts: Sequence[Pair | str], sep: str = "; ") -> Pair:
    """Pairs (and language-neutral strings) joined language by language, empty ones left out."""
    pairs = [p if isinstance(p, tuple) else (p, p) for p in parts]
    return sep.join(en for en, _ in pairs if en), sep.join(ko for _, ko in pairs if ko)
