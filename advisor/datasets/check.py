"""The whole pass over the data, one streaming read: rows -> type -> problems -> lengths -> plan, returned as plain
data (schema advisor.data/1) that the terminal view, --json and the advisor all read."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice

from . import SCHEMA
from .counters import APPROX
from .detect import DEFAULT_KIND, DETECT_ROWS, KINDS, Detection, detect, to_trl
from .lengths import measure
from .readers import iter_rows
from .row import MAX_ROW_BYTES, Row
from .sources import Source
from .stats import at_seq_len, histogram, summary
from .validate import KINDS as PROBLEM_KINDS
from .validate import Log, Validator

BATCH = 1024  # rows tokenized per call (the tokenizers library spreads a batch over its threads)


@dataclass
class Options:
    sample: int | None = None
    seq_len: int | None = None  # the planned length; None: the recommended one
    keep: float = 0.99
    micro_batch: int = 1
    kind: str | None = None  # the training kind planned; None: the first the data feeds
    response_len: int = 512  # grpo/ppo generated tokens
    max_positions: int = 0  # the model's context, when a model is given
    max_row_bytes: int = MAX_ROW_BYTES


def run_check(source: Source, counter, options: Options, on_bytes: Callable[[int], None] = lambda n: None) -> dict:
    log = Log()
    rows = iter_rows(source, on_bytes, options.max_row_bytes)
    if options.sample:
        rows = islice(rows, options.sample)
    head: list[Row] = []
    for row in rows:  # the first DETECT_ROWS readable rows decide the type
        head.append(row)
        if sum(1 for r in head if r.value is not None) >= DETECT_ROWS:
            break
    readable = [r.value for r in head if r.value is not None]
    if not head:
        from ..errors import AdvisorError

        raise AdvisorError(f"{source.label} holds no rows")
    if not readable:
        return _unreadable(source, head, rows, log, options)
    det = detect(readable, source.label)
    validator = Validator(det, log)
    # per row only what later needs the row order (padding per batch) or the row itself (prompt + response for
    # grpo/ppo): 4 bytes a row each; every other length as a Counter of length -> rows (a few thousand entries)
    rows_total, rows_prompt = array("i"), array("i")
    dists: dict[str, Counter[int]] = {name: Counter() for name in ("prompt", "completion", "chosen", "rejected", "total")}
    supervised = 0
    counted = 0
    pending: list[tuple[int, dict]] = []
    n_read = 0

    def flush() -> None:
        nonlocal counted, supervised
        if not pending:
            return
        m = measure([r for _, r in pending], det, counter)
        for i, (number, _) in enumerate(pending):
            if m.errors[i]:
                log.add("template_error", number, m.errors[i])
                log.error_rows += 1
                continue
            counted += 1
            lengths = m.lengths(i)
            for name, value in lengths.items():
                if name == "supervised":
                    supervised += value
                else:
                    dists[name][value] += 1
            rows_total.append(lengths["total"])
            if "prompt" in lengths:
                rows_prompt.append(lengths["prompt"])
        pending.clear()

    def each(row: Row) -> None:
        nonlocal n_read
        n_read += 1
        if row.value is None:
            log.add(row.problem, row.number, _where(row))
            log.row_done({row.problem})
            return
        kinds = validator.check(row.number, row.value, row.raw)
        if row.problem:
            log.add(row.problem, row.number, _where(row))
            kinds.add(row.problem)
        if any(PROBLEM_KINDS[k][0] == "error" for k in kinds):
            return  # counted; not measured (the trainer would not get this far)
        pending.append((row.number, to_trl(row.value, det)))
        if len(pending) >= BATCH:
            flush()

    for row in head:
        each(row)
    for row in rows:
        each(row)
    flush()
    if not validator.duplicates_tracked:
        from .validate import DUPLICATES_TRACKED

        log.notes.append(f"duplicates were looked for in the first {DUPLICATES_TRACKED:,} rows only (memory)")
    return _report(source, det, log, (rows_total, rows_prompt, dists, supervised), n_read, counted, counter, options)


def _where(row: Row) -> str:
    return f"{row.file}: {row.detail}" if row.file else row.detail


def _unreadable(source: Source, head: list[Row], rest, log: Log, options: Options) -> dict:
    n = 0
    for row in [*head, *rest]:
        n += 1
        log.add(row.problem, row.number, _where(row))
        log.row_done({row.problem})
    data = _base(source, n, 0, log, options)
    data["usable"] = False
    data["verdict"] = f"unusable: none of the {n:,} rows can be read"
    return data


def _base(source: Source, n_read: int, usable_rows: int, log: Log, options: Options) -> dict:
    return {
        "schema": SCHEMA,
        "source": {
            "path": source.label,
            "format": source.format + (".gz" if source.compressed else ""),
            "files": len(source.files),
            "bytes": source.size_bytes,
            "how": source.how,
            "split": source.split or None,
        },
        "rows": {
            "read": n_read,
            "usable": usable_rows,
            "with_errors": log.error_rows,
            "with_warnings": log.warning_rows,
            "sample": options.sample,
            "complete": options.sample is None or n_read < options.sample,
        },
        "type": None,
        "kinds": {},
        "problems": [p.to_data() for p in log.sorted()],
        "notes": list(log.notes),
        "tokens": None,
        "recommendation": None,
        "memory": None,
    }


def kinds_fed(det: Detection) -> dict:
    return {k: dict(zip(("ok", "how"), det.feeds(k), strict=False)) for k in KINDS}


def _report(source: Source, det: Detection, log: Log, lengths: tuple, n_read: int, counted: int, counter, options: Options) -> dict:
    from .recommend import packing_for, seq_len_for
    from .spec import formatting_spec, loader_spec

    data = _base(source, n_read, counted, log, options)
    data["type"] = {
        "name": det.type,
        "label": det.label,
        "form": det.form,
        "format": det.format,
        "columns": list(det.columns),
        "mapping": det.source_columns,
        "extra_columns": list(det.extra_columns),
        "notes": list(det.notes),
    }
    data["kinds"] = kinds_fed(det)
    kind = options.kind or DEFAULT_KIND[det.type]
    data["kind"] = kind
    data["formatting"] = formatting_spec(det, kind) | {"load": loader_spec(source, det.columns)}
    errors = [p for p in log.sorted() if p.severity == "error"]
    if not counted:
        data["usable"] = False
        worst = errors[0] if errors else None
        why = f" ({worst.kind}: {worst.count:,} rows, e.g. {worst.example or PROBLEM_KINDS[worst.kind][1]})" if worst else ""
        data["verdict"] = f"unusable: none of the {n_read:,} rows can be used{why}"
        return data
    fed, why = det.feeds(kind)
    rows_total, rows_prompt, dists, supervised = lengths
    totals = rows_total
    if kind in ("grpo", "ppo"):  # the sequence is the prompt plus the generated response
        totals = array("i", [p + options.response_len for p in (rows_prompt or rows_total)])
        supervised = options.response_len * len(totals)
    fields = {name: summary(values) for name, values in dists.items() if values}
    rec = seq_len_for(totals, options.keep, options.max_positions)
    seq_len = options.seq_len or rec["seq_len"]
    at = at_seq_len(totals, supervised, seq_len, options.micro_batch)
    packing, reason = packing_for(kind, at)
    data["tokens"] = {
        "counter": {
            "name": counter.name,
            "exact": counter.exact,
            "note": counter.note,
            "template": bool(getattr(counter, "template", "")),
            "approximation": None if counter.exact else APPROX,
        },
        "fields": fields,
        "sequence": summary(Counter(totals)),
        "histogram": histogram(totals),
        **at,
    }
    data["recommendation"] = {
        **rec,
        "kind": kind,
        "packing": packing,
        "packing_reason": reason,
        "planned_seq_len": seq_len,
        "longest_batch_tokens": min(max(totals), seq_len) * options.micro_batch,
    }
    data["usable"] = fed and not errors
    if not fed:
        data["verdict"] = f"unusable for {kind}: {why}"
    elif errors:
        bad = sum(p.count for p in errors)
        data["verdict"] = f"unusable as it is: {log.error_rows:,} of {n_read:,} rows have errors ({bad:,} problems); fix them or drop those rows"
    elif log.warning_rows:
        data["verdict"] = f"usable, with warnings on {log.warning_rows:,} of {n_read:,} rows"
    else:
        data["verdict"] = f"usable: {n_read:,} rows, no problems found"
    return data
