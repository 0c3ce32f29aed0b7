"""The user's dataset into the plan and the generated script (issue 17, "Into the plan"): one check per stage, for
the kind that stage trains, kept on the stage as `StageData` (advisor/plan.py). The script generator pastes the
mapping function from it; `advisor generate --plan` reuses it without reading the data again."""

from __future__ import annotations

import ast

from ..errors import AdvisorError

RL_KINDS = ("grpo", "ppo")  # their sequence is the prompt plus the generated response


# (path, kind, model, response_len, keep) -> the check: a plan made twice (generate at the data's length, the wizard
# re-planning) reads the file once. Keyed on the file's size and mtime too, so an edited file is read again.
_CHECKED: dict[tuple, dict] = {}


def _key(path: str, kind: str, model: str | None, response_len: int, keep: float) -> tuple:
    from pathlib import Path

    p = Path(path).expanduser()
    stat = p.stat() if p.is_file() else None
    return (path, kind, model, response_len, keep, stat and stat.st_size, stat and stat.st_mtime_ns)


def remember(path: str, model: str | None, data: dict, response_len: int = 512) -> None:
    """A check made elsewhere (the wizard's data step) for its own kind, so planning does not read the file again."""
    if data.get("kind"):
        _CHECKED[_key(path, data["kind"], model, response_len, (data.get("recommendation") or {}).get("keep", 0.99))] = data


def check_for_stage(path: str, kind: str, model: str | None, response_len: int = 512, keep: float = 0.99) -> dict:
    """`advisor data check` of PATH for one training kind, with the model's tokenizer when it is local."""
    key = _key(path, kind, model, response_len, keep)
    if key not in _CHECKED:
        _CHECKED[key] = _check(path, kind, model, response_len, keep)
    return _CHECKED[key]


def _check(path: str, kind: str, model: str | None, response_len: int, keep: float) -> dict:
    from . import sources
    from .check import Options, run_check
    from .counters import counter_for

    counter, why = counter_for(None, model)
    data = run_check(sources.resolve(path), counter, Options(kind=kind, keep=keep, response_len=response_len))
    if data.get("tokens"):
        data["tokens"]["counter"]["why"] = why
    return data


def stage_data(data: dict, stage_name: str, path: str) -> dict:
    """The StageData fields from a check; refuses data that cannot feed the stage or has rows the trainer would fail on."""
    kind = data.get("kind") or "?"
    spec = data.get("formatting") or {}
    if data.get("type") and not spec.get("feeds", False):
        raise AdvisorError(f"dataset {path} cannot feed the {kind} stage '{stage_name}' ({data['type']['label']}): {spec.get('how', '')}")
    if not data.get("usable"):
        raise AdvisorError(f"dataset {path} for stage '{stage_name}': {data['verdict']} (see `advisor data check {path}`)")
    function, keep_row = spec.get("function") or "", spec.get("filter") or ""
    _check_source(function, keep_row)
    remove = list(spec["remove_columns"])
    if kind == "grpo":  # TRL passes every other column to the reward functions: --reward-check FIELD reads one (gsm8k's answer)
        remove = []
    rec, tok, t = data["recommendation"], data["tokens"], data["type"]
    seq = tok["sequence"]
    return {
        "path": path,
        "type": t["name"],
        "label": t["label"],
        "form": t["form"],
        "format": t["format"] or "",
        "mapping": dict(t["mapping"]),
        "kind": kind,
        "trl_type": spec["trl_type"],
        "columns": list(spec["columns"]),
        "function": function,
        "filter": keep_row,
        "remove_columns": remove,
        "load": dict(spec["load"]),
        "rows": data["rows"]["usable"],
        "seq_len": rec["seq_len"],
        "keep": rec["keep"],
        "packing": bool(rec["packing"]),
        "packing_reason": rec["packing_reason"],
        "tokens": {
            "p50": seq["p50"],
            "p90": seq["p90"],
            "p99": seq["p99"],
            "max": seq["max"],
            "tokens_per_epoch": tok["tokens_per_epoch"],
            "supervised_tokens_per_epoch": tok["supervised_tokens_per_epoch"],
            "truncated_rows": tok["truncated_rows"],
            "counter": tok["counter"]["note"],
            "exact": bool(tok["counter"]["exact"]),
        },
        "verdict": data["verdict"],
    }


def give_data(stage, fields: dict, packing_given: bool = False) -> None:
    """Put the checked data on `stage` (StageData) and apply its packing advice to an SFT stage's set-up (TRL's
    `packing`, what the script runs), unless the user chose packing on the command line. Memory is priced at the
    full sequence either way; packing changes the steps an epoch takes."""
    from ..plan import StageData

    stage.data = StageData(**fields)
    if stage.setup.train == "sft" and not packing_given and stage.setup.packed != stage.data.packing:
        stage.setup = stage.setup.with_(packed=stage.data.packing)


def _check_source(function: str, keep_row: str) -> None:
    """The pasted code is exactly one `def to_trl(row)` and one lambda: spec.py writes every column name in it with
    repr(), and this makes sure nothing else (a hand-edited plan file) is pasted into a script as code."""
    if function:
        tree = ast.parse(function)
        if not (len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == "to_trl"):
            raise AdvisorError("dataset mapping: `function` must be one `def to_trl(row): ...`")
    if keep_row:
        expression = ast.parse(keep_row, mode="eval")
        if not isinstance(expression.body, ast.Lambda):
            raise AdvisorError("dataset mapping: `filter` must be one lambda")


def pasted_code(data) -> str:
    """The script's block for a checked dataset: the mapping and the filter as module-level functions."""
    if data is None:
        return ""
    _check_source(data.function, data.filter)
    parts = [data.function.rstrip("\n") if data.function else "to_trl = None  # the columns are what the trainer reads"]
    parts.append(f"keep_row = {data.filter}" if data.filter else "keep_row = None  # every row")
    return "\n\n\n".join(parts) + "\n"


def summary_line(data) -> str:
    """One line for the terminal: what was found and what the script will do."""
    how = data.label
    mapped = "mapped by to_trl()" if data.function else "columns used as they are"
    return (
        f"{data.path}: {how}, {data.rows:,} rows, {mapped} -> {data.trl_type} for {data.kind}; "
        f"recommended seq len {data.seq_len:,} tokens (p99 {data.tokens.get('p99', 0):,}, max {data.tokens.get('max', 0):,} tokens)"
    )


# the wizard's `data` answer -> the stages' data_format it fills (advisor/planning.py)
ANSWER_FORMAT = {"instruction_pairs": "instruction", "preference_pairs": "preference", "reward_signal": "prompt", "raw_text": "text"}


def attach(plan, path: str, answer: str, model: str | None = None) -> list[str]:
    """Give the plan's stages that take this kind of data (the wizard's `data` answer) the checked file; the other
    stages keep their data. Returns one line per stage the data could not feed (it stays on the sample)."""
    fmt, skipped = ANSWER_FORMAT.get(answer), []
    for stage in plan.stages:
        if stage.data_format != fmt and not (fmt == "text" and stage.data_format == "instruction"):
            continue
        kind = stage.setup.train
        response = stage.setup.response_len if kind in RL_KINDS else 512
        try:
            give_data(stage, stage_data(check_for_stage(path, kind, model, response), stage.name, path))
        except AdvisorError as exc:
            skipped.append(str(exc))
            continue
        stage.dataset = path
    return skipped
