"""The mapping from the user's columns to what one trainer reads, as data and as the source of a function a
generated script can paste: `dataset.map(to_trl, remove_columns=...)`. The same mapping detect.to_trl applies
when the lengths are measured, so the script trains on the rows that were measured."""

from __future__ import annotations

from typing import Any

from .detect import SHAREGPT_ROLES, Detection


def formatting_spec(det: Detection, kind: str) -> dict:
    """What a script for `kind` does with this data: which TRL type the trainer gets, the columns it reads,
    the columns to drop, and the Python source of the row function (None when the columns can be used as they are)."""
    ok, how = det.feeds(kind)
    out = {"kind": kind, "feeds": ok, "how": how, "source_type": det.type, "form": det.form, "format": det.format}
    if not ok:
        return out | {"trl_type": None, "columns": [], "function": None, "remove_columns": []}
    lines: list[str] = []
    t = det.type
    if det.format == "alpaca":
        out_col = det.source_columns["completion"]
        extra = next((c for c in ("input", "context") if c in det.fields), None)
        lines += ["    prompt = row['instruction'] or ''"]
        if extra:
            lines += [f"    if row.get({extra!r}):", f"        prompt = prompt + '\\n\\n' + row[{extra!r}]"]
        lines += [
            "    prompt = [{'role': 'user', 'content': prompt}]",
            f"    completion = [{{'role': 'assistant', 'content': row[{out_col!r}] or ''}}]",
        ]
        body = {"sft": "{'prompt': prompt, 'completion': completion}", "grpo": "{'prompt': prompt}", "ppo": "{'prompt': prompt}"}[kind]
        trl_type = "prompt_completion" if kind == "sft" else "prompt_only"
    elif det.format == "sharegpt":
        col = det.source_columns["messages"]
        lines += [
            f"    roles = {dict(sorted(SHAREGPT_ROLES.items()))!r}",
            f"    messages = [{{'role': roles.get(str(t['from']).lower(), t['from']), 'content': t['value']}} for t in row[{col!r}]]",
        ]
        body, trl_type = _messages_body(kind)
    elif t == "language_modeling" and det.form == "conversational":
        col = det.source_columns["messages"]
        lines += [f"    messages = row[{col!r}]"]
        body, trl_type = _messages_body(kind)
        if kind == "sft" and col == "messages":
            lines, body = [], None
    else:
        src = det.source_columns
        if kind == "sft" and t == "preference":
            body, trl_type = f"{{'prompt': row[{src['prompt']!r}], 'completion': row['chosen']}}", "prompt_completion"
        elif kind == "sft" and t == "preference_implicit":
            key = "messages" if det.form == "conversational" else "text"
            body, trl_type = f"{{{key!r}: row['chosen']}}", "language_modeling"
        elif kind == "sft" and t == "unpaired_preference":
            body, trl_type = "{'prompt': row['prompt'], 'completion': row['completion']}", "prompt_completion"
            out["filter"] = "lambda row: bool(row['label'])"
        elif kind in ("grpo", "ppo"):
            body, trl_type = f"{{'prompt': row[{src['prompt']!r}]}}", "prompt_only"
            if src["prompt"] == "prompt":
                body = None  # TRL reads 'prompt' and passes the other columns to reward functions
        else:
            renames = {k: v for k, v in src.items() if k != v}
            trl_type = t
            body = "{" + ", ".join(f"{k!r}: row[{v!r}]" for k, v in src.items()) + "}" if renames else None
    function = None
    if body is not None:
        function = "def to_trl(row):\n" + "".join(line + "\n" for line in lines) + f"    return {body}\n"
    conversational = det.form == "conversational" and "text" not in (body or "")
    columns = ["messages"] if trl_type == "language_modeling" and conversational else _trl_columns(trl_type)
    # keep the extra columns for GRPO (reward functions receive them), drop the source columns the mapping replaced
    remove = [] if function is None else [c for c in det.columns if c not in columns and (kind not in ("grpo", "ppo") or c in det.fields)]
    return out | {"trl_type": trl_type, "columns": columns, "function": function, "remove_columns": remove}


def _messages_body(kind: str) -> tuple[str, str]:
    if kind == "sft":
        return "{'messages': messages}", "language_modeling"
    return (
        "{'prompt': next((messages[:i] for i in range(len(messages) - 1, -1, -1) if messages[i]['role'] == 'assistant'), messages)}",
        "prompt_only",
    )


def _trl_columns(trl_type: str) -> list[str]:
    from .detect import TYPES

    return list(TYPES[trl_type][1])


def loader_spec(source, columns: tuple[str, ...] = ()) -> dict:
    """How a generated script loads the same rows with the `datasets` library: the builder and its arguments.
    For CSV, `features` maps every column to "string": build datasets.Features({c: Value(t)}) from it."""
    files = [str(f.resolve()) for f in source.files]  # absolute: the script may run from another folder
    if source.format == "arrow":
        folder = str(source.files[0].parent.resolve())
        # a save_to_disk folder loads with load_from_disk; the library's own cache files with the "arrow" builder
        saved = any((source.files[0].parent / m).is_file() for m in ("state.json", "dataset_info.json"))
        return (
            {"call": "load_from_disk", "path": folder}
            if saved
            else {"call": "load_dataset", "builder": "arrow", "data_files": files, "split": "train"}
        )
    out: dict[str, Any] = {
        "call": "load_dataset",
        "builder": {"jsonl": "json", "json": "json", "csv": "csv", "parquet": "parquet"}[source.format],
        "data_files": files,
        "split": "train",
    }
    if source.format == "csv":
        from .csvrows import csv_delimiter

        out["sep"] = csv_delimiter(source.files[0], source)
        # pandas (under datasets' csv builder) would turn " 3." into 3.0 and "" into None: keep the text as checked
        out["keep_default_na"] = False
        if columns:
            out["features"] = {c: "string" for c in columns}
    if source.format == "json" and files:
        from .jsonrows import object_rows_key

        key = object_rows_key(source.files[0], source)
        if key is not None:  # {"train": [...]}: datasets' json builder reads the rows under field=KEY
            out["field"] = key
    return out
