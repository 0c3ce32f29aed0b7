"""Check the rule tables against their schema (rules/README.md; `SPECS` below is its executable form): required
fields, bilingual texts, sources, ids, and the references between tables. `advisor/rules.py` reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from . import rules
from .lang import LANGS
from .rules import Row, RulesError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# A row either comes from a section of the source document or cites the paper it comes from.
DOC_SOURCE = re.compile(r"^§[2-7]$")
PAPER_SOURCE = re.compile(r"^paper: .+, (19|20)\d{2}, arXiv:\d{4}\.\d{4,5}$")
ID = re.compile(r"^[a-z0-9_.]+$")


@dataclass(frozen=True)
class Spec:
    """Shape of one array of tables, e.g. the `[[method]]` rows of methods.toml."""

    table: str  # file stem
    array: str  # key of the array of tables
    fields: tuple[str, ...] = ()  # must be present and non-empty
    text: tuple[str, ...] = ()  # bilingual: `<name>_ko` and `<name>_en` both required
    lists: tuple[str, ...] = ()  # non-empty lists of {ko, en}
    id_prefix: str = ""
    enums: dict[str, tuple[Any, ...]] = field(default_factory=dict)


SPECS: tuple[Spec, ...] = (
    Spec(
        "methods",
        "method",
        fields=("id", "name", "source", "family", "data_kind", "reward_model"),
        text=("concept", "data", "cost", "output"),
        lists=("strengths", "limits"),
        enums={
            "family": ("supervised", "online_rl", "offline_preference"),
            "data_kind": ("instruction_pairs", "preference_pairs", "binary_feedback", "prompts_with_reward"),
            "reward_model": ("none", "optional", "required"),
        },
    ),
    Spec(
        "adaptations",
        "adaptation",
        fields=("id", "name", "source", "trainable", "quantized_base", "vram_7b_gb"),
        text=("concept", "principle", "feature"),
        lists=("when_to_use",),
        enums={"trainable": ("all", "adapters"), "quantized_base": (True, False)},
    ),
    Spec("selection", "situation", fields=("id", "source", "recommend"), text=("situation", "recommend"), id_prefix="sel."),
    Spec("selection", "rlhf_vs_dpo", fields=("id", "source"), text=("label", "rlhf", "dpo"), id_prefix="cmp."),
    Spec("glossary", "term", fields=("id", "term", "source"), text=("definition",)),
)
# RLHF's sub-steps (`[[method.steps]]`); they inherit the parent row's source.
STEP_SPEC = Spec("methods", "method.steps", fields=("id", "order"), text=("name", "desc"))


def _empty(value: Any) -> bool:
    # False and 0 are real values (quantized_base = false); only blanks count as missing.
    return value is None or value == "" or value == [] or value == {}


def _label(spec: Spec, row: Row, index: int) -> str:
    rid = row.get("id") if isinstance(row, dict) else None
    return f"{spec.table}.toml [[{spec.array}]] {rid or f'#{index + 1}'}"


def _field_problems(spec: Spec, row: Row) -> Iterator[str]:
    for name in spec.fields:
        if _empty(row.get(name)):
            yield f"missing required field '{name}'"
    for name in spec.text:
        # Only the both-missing case here; a half-present pair is reported by _pair_problems.
        if not any(f"{name}_{lang}" in row for lang in LANGS):
            yield f"missing required text '{name}_ko' / '{name}_en'"
    for name in spec.lists:
        items = row.get(name)
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            yield f"'{name}' must be a non-empty list of {{ko, en}}"
    for name, allowed in spec.enums.items():
        if name in row and row[name] not in allowed:
            yield f"'{name}' = {row[name]!r} is not one of {list(allowed)}"
    rid = row.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID.match(rid) or not rid.startswith(spec.id_prefix)):
        yield f"id {rid!r} must match {ID.pattern} and start with '{spec.id_prefix}'"


def _pair_problems(value: Any, where: str = "") -> Iterator[str]:
    """Every user-facing text anywhere in a row (nested too) must exist, non-blank, in both languages."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _pair_problems(item, f"{where}[{i}]")
        return
    if not isinstance(value, dict):
        return
    if "ko" in value or "en" in value:  # a {ko, en} list item
        for lang in LANGS:
            if not _is_text(value.get(lang)):
                yield f"missing {lang} text '{_join(where, lang)}'"
    stems = {key[:-3] for key in value if key[-3:] in ("_ko", "_en") and len(key) > 3}
    for stem in sorted(stems):
        for lang in LANGS:
            if not _is_text(value.get(f"{stem}_{lang}")):
                yield f"missing {lang} text '{_join(where, f'{stem}_{lang}')}'"
    for key, item in value.items():
        yield from _pair_problems(item, _join(where, key))


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _source_problems(row: Row) -> Iterator[str]:
    source, addition = row.get("source"), row.get("addition", False)
    if not isinstance(addition, bool):
        yield f"addition must be true or false, got {addition!r}"
    if source is None:
        return  # reported as a missing field
    if not isinstance(source, str):
        yield f"source must be a string, got {source!r}"
    elif addition is True:
        if not PAPER_SOURCE.match(source):
            yield f"addition needs source 'paper: <authors>, <title>, <year>, arXiv:<id>', got {source!r}"
    elif not DOC_SOURCE.match(source):
        yield f"source must be a document section like '§2' (or mark the row addition = true), got {source!r}"
    yield from _reference_problems(row)


def _reference_problems(row: Row) -> Iterator[str]:
    ref = row.get("reference")
    if ref is not None and not (isinstance(ref, str) and PAPER_SOURCE.match(ref)):
        yield f"reference must look like 'paper: <authors>, <title>, <year>, arXiv:<id>', got {ref!r}"


def _inferred_problems(row: Row) -> Iterator[str]:
    """`inferred` marks editorial fields; each entry must name a field the row really has."""
    inferred = row.get("inferred", [])
    if not isinstance(inferred, list):
        yield "inferred must be a list of field names"
        return
    for name in inferred:
        if name not in row and f"{name}_ko" not in row:
            yield f"inferred names unknown field '{name}'"


def _row_problems(spec: Spec, row: Any) -> Iterator[str]:
    if not isinstance(row, dict):
        yield "row is not a table"
        return
    yield from _field_problems(spec, row)
    yield from _pair_problems(row)
    yield from _source_problems(row)
    yield from _inferred_problems(row)
    yield from _step_problems(row.get("steps", []))


def _step_problems(steps: Any) -> Iterator[str]:
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        yield "steps must be a list of tables ([[method.steps]])"
        return
    for i, step in enumerate(steps):
        problems = [*_field_problems(STEP_SPEC, step), *_reference_problems(step)]
        yield from (f"step {step.get('id') or i + 1}: {p}" for p in problems)
    if [s.get("order") for s in steps] != list(range(1, len(steps) + 1)):
        yield "steps must be listed in order 1, 2, 3, ..."
    yield from _duplicate_ids(steps, "step")


def _duplicate_ids(rows: list[Any], what: str = "row") -> Iterator[str]:
    seen: set[str] = set()
    for row in rows:
        rid = row.get("id") if isinstance(row, dict) else None
        if isinstance(rid, str):
            if rid in seen:
                yield f"duplicate {what} id '{rid}'"
            seen.add(rid)


def _check_spec(spec: Spec, data: Row) -> Iterator[str]:
    rows = data.get(spec.array)
    if not isinstance(rows, list) or not rows:
        yield f"{spec.table}.toml: no [[{spec.array}]] rows"
        return
    for i, row in enumerate(rows):
        for problem in _row_problems(spec, row):
            yield f"{_label(spec, row, i)}: {problem}"
    for problem in _duplicate_ids(rows):
        yield f"{spec.table}.toml [[{spec.array}]]: {problem}"


def _rows(data: dict[str, Row], table: str, array: str) -> list[Row]:
    """The well-formed rows of one array; malformed ones are reported by _check_spec."""
    rows = data.get(table, {}).get(array, [])
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _ids(data: dict[str, Row], table: str, array: str) -> set[str]:
    return {r["id"] for r in _rows(data, table, array) if isinstance(r.get("id"), str)}


def _ref_problems(where: str, refs: Any, known: set[str], kind: str) -> Iterator[str]:
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        yield f"{where}: {kind} references must be a list of ids"
        return
    for ref in refs:
        if ref not in known:
            yield f"{where}: unknown {kind} id '{ref}'"


def _cross_problems(data: dict[str, Row]) -> Iterator[str]:
    """References between tables: selection and glossary may only name existing ids."""
    method_ids = _ids(data, "methods", "method")
    adaptation_ids = _ids(data, "adaptations", "adaptation")
    for row in _rows(data, "selection", "situation"):
        if not isinstance(row.get("recommend"), dict):
            if "recommend" in row:
                yield f"selection.toml [[situation]] {row.get('id')}: recommend must be a table"
            continue
        where, rec = f"selection.toml [[situation]] {row.get('id')}", row["recommend"]
        for key in sorted(set(rec) - {"methods", "adaptations"}):
            yield f"{where}: unknown recommend key '{key}'"
        if not rec.get("methods") and not rec.get("adaptations"):
            yield f"{where}: recommend names no method or adaptation"
        yield from _ref_problems(where, rec.get("methods", []), method_ids, "method")
        yield from _ref_problems(where, rec.get("adaptations", []), adaptation_ids, "adaptation")
    goals = [row["goal"] for row in _rows(data, "selection", "situation") if "goal" in row]
    for goal in sorted({g for g in goals if goals.count(g) > 1}):
        yield f"selection.toml [[situation]]: goal {goal!r} is answered by more than one row"
    for row in _rows(data, "glossary", "term"):
        where = f"glossary.toml [[term]] {row.get('id')}"
        yield from _ref_problems(where, row.get("related_methods", []), method_ids, "method")
        yield from _ref_problems(where, row.get("related_adaptations", []), adaptation_ids, "adaptation")


def _vram_problems(data: dict[str, Row]) -> Iterator[str]:
    for row in _rows(data, "adaptations", "adaptation"):
        vram = row.get("vram_7b_gb")
        if vram is not None and (isinstance(vram, bool) or not isinstance(vram, (int, float)) or vram <= 0):
            yield f"adaptations.toml [[adaptation]] {row.get('id')}: vram_7b_gb must be a positive number"


def _other_tables(root: Traversable) -> list[str]:
    """Tables owned elsewhere (models.toml, gpus.toml, ...): checked for parse errors and dup ids."""
    mine = {spec.table for spec in SPECS}
    try:
        names = {p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml")}
    except OSError:
        return []  # the missing directory shows up as every table of ours missing
    return sorted(names - mine)


def _load_all(root: Traversable, stems: list[str]) -> tuple[dict[str, Row], list[str]]:
    data, problems = {}, []
    for stem in stems:
        try:
            data[stem] = rules.load_table(stem, root)
        except RulesError as exc:
            problems.append(str(exc))
    return data, problems


def validate_all(root: Traversable | None = None) -> list[str]:
    """Check every table and return every problem found (empty list: all good)."""
    root = root or rules.rules_dir()
    others = _other_tables(root)
    data, problems = _load_all(root, sorted({spec.table for spec in SPECS}) + others)
    for spec in SPECS:
        if spec.table in data:
            problems.extend(_check_spec(spec, data[spec.table]))
    for stem in others:
        for array, rows in data.get(stem, {}).items():
            if isinstance(rows, list):
                problems.extend(f"{stem}.toml [[{array}]]: {p}" for p in _duplicate_ids(rows))
    # Cross-references are only meaningful when the tables they point into could be read.
    if {"methods", "adaptations"} <= data.keys():
        problems.extend(_cross_problems(data))
    problems.extend(_vram_problems(data))
    return problems


def check(root: Traversable | None = None) -> None:
    """Raise one RulesError listing every problem, so a broken edit is fixed in one pass."""
    problems = validate_all(root)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise RulesError(f"{len(problems)} problem(s) in the rule tables:\n{listing}")
