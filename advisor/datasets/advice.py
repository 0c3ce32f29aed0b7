"""`advisor advise --dataset PATH`: the data answers the questions it can. Its type gives `data` (what kind of data
you have), its usable rows `data_count`, and its token lengths `seq_len` (the recommended length, which keeps
--keep of the rows whole). An answer given by a flag or the answers file wins over the data."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import AdvisorError
from ..paths import absolute

# TRL type -> the `data` answer (advisor/questions.py) it is
DATA_ANSWER = {
    "language_modeling": "instruction_pairs",  # standard text is refined below to raw_text
    "prompt_completion": "instruction_pairs",
    "unpaired_preference": "instruction_pairs",
    "preference": "preference_pairs",
    "preference_implicit": "preference_pairs",
    "prompt_only": "reward_signal",  # prompts for GRPO; the reward function is the user's
}


def check_dataset(path: str, model: str | None, keep: float = 0.99, micro_batch: int = 1) -> dict:
    """The full `advisor data check` data for PATH, with the model's tokenizer when it is local."""
    from . import sources
    from .check import Options, run_check
    from .counters import counter_for

    counter, why = counter_for(None, model)
    data = run_check(sources.resolve(path), counter, Options(keep=keep, micro_batch=micro_batch))
    if data["tokens"]:
        data["tokens"]["counter"]["why"] = why
    if micro_batch == 1:  # what the plan's stages are checked with (wire.attach): the file is not read again
        from .wire import remember

        remember(absolute(path), model, data)
    return data


def summary(data: dict) -> dict:
    """The few lines of a check that a plan shows."""
    rec, tok = data.get("recommendation") or {}, data.get("tokens") or {}
    return {
        "path": data["source"]["path"],
        "type": (data.get("type") or {}).get("label"),
        "rows": data["rows"]["read"],
        "usable_rows": data["rows"]["usable"],
        "verdict": data["verdict"],
        "usable": data["usable"],
        "seq_len": rec.get("seq_len"),
        "keep": rec.get("keep"),
        "rows_whole": rec.get("rows_whole"),
        "longest": (tok.get("sequence") or {}).get("max"),
        "tokens_per_epoch": tok.get("tokens_per_epoch"),
        "packing": rec.get("packing"),
        "packing_reason": rec.get("packing_reason"),
        "counter": (tok.get("counter") or {}).get("note"),
        "prompt_p99": ((tok.get("fields") or {}).get("prompt") or {}).get("p99"),
        "schema_of_the_full_check": "advisor.data/1 (`advisor data check --json`)",
    }


def answers_from_dataset(path: str, args: argparse.Namespace, base: dict | None) -> tuple[dict, dict]:
    """(the summary, the raw answers with data / data_count / seq_len filled from the data where not given)."""
    raw: dict[str, Any] = dict(base or {})
    model = getattr(args, "model", None) or raw.get("model")
    if model is not None and not isinstance(model, str):
        raise AdvisorError(f"answers: 'model' must be a model name or path, got {type(model).__name__} {model!r:.40}")
    data = check_dataset(path, model)
    if not data["usable"]:
        raise AdvisorError(f"dataset {path}: {data['verdict']} (see `advisor data check {path}`)")
    given = {k for k in ("data", "data_count", "seq_len") if getattr(args, k, None) is not None or k in raw or k.replace("_", "-") in raw}
    out = summary(data)
    for key, value in data_answers(data).items():
        if key not in given:
            raw[key] = value
    # for plan_for_dataset: the stages that take this kind of data load this file (advisor generate --plan reads it)
    out["data_answer"], out["checked_with"] = data_answers(data)["data"], model
    out["seq_len_from_data"] = "seq_len" not in given
    rl = _rl_seq_len(data)
    if rl and out["seq_len_from_data"]:
        out["rl_seq_len"] = rl
    return out, raw


def plan_for_dataset(advise, answers, s: dict):
    """advise(answers) at the data's length; again at prompt + response when the plan has a PPO/GRPO stage (or
    cannot be made at the data's length because such a stage has no room): advise prices all stages at one length."""
    from dataclasses import replace

    rl = s.get("rl_seq_len")
    if not rl:
        return _with_data(advise(answers), s), answers
    try:
        plan = advise(answers)
        if not any(st.setup.train in ("ppo", "grpo") for st in plan.stages):
            return _with_data(plan, s), answers
    except ValueError:  # EstimateError: e.g. no room for the response in the data's length
        pass
    answers = replace(answers, seq_len=rl)
    s["seq_len"] = rl
    s["raised_for"] = f"PPO/GRPO stages: prompt p99 {s['prompt_p99']:,} + {RESPONSE_LEN} response tokens"
    return _with_data(advise(answers), s), answers


def _with_data(plan, s: dict):
    """The plan's stages that take the data's kind load the file, mapped (Stage.data, saved by --save)."""
    from .wire import attach

    if s.get("data_answer"):
        skipped = attach(plan, absolute(s["path"]), s["data_answer"], s.get("checked_with"))
        s["stages_fed"] = [st.name for st in plan.stages if st.data is not None]
        if skipped:
            s["stages_not_fed"] = skipped
    return plan


def data_answers(data: dict) -> dict:
    """The answers a usable check gives: data (its kind), data_count (usable rows), seq_len (the recommended length)."""
    t = data["type"]
    answer = "raw_text" if t["name"] == "language_modeling" and t["form"] == "standard" else DATA_ANSWER[t["name"]]
    return {"data": answer, "data_count": data["rows"]["usable"], "seq_len": data["recommendation"]["seq_len"]}


# Setup's default PPO/GRPO response length: a PPO/GRPO stage needs prompt + response inside its sequence length
RESPONSE_LEN = 512
RL_TYPES = ("preference", "prompt_only")  # the data that can lead advise to a PPO (RLHF) or GRPO stage


def _rl_seq_len(data: dict) -> int | None:
    """The length a PPO/GRPO stage needs for this data's prompts, when it is more than the data's own."""
    from .recommend import round_len

    prompt = data["tokens"]["fields"].get("prompt") or {}
    if data["type"]["name"] not in RL_TYPES or not prompt:
        return None
    need = round_len(prompt["p99"] + RESPONSE_LEN)
    return need if need > data["recommendation"]["seq_len"] else None


def summary_lines(s: dict, lang: str = "en") -> list[str]:
    ko = lang == "ko"
    head = "데이터" if ko else "Dataset"
    lines = [f"[bold]{head}[/bold]: {s['path']}: {s['type']}, {s['usable_rows']:,}/{s['rows']:,} " + ("행 사용 가능" if ko else "rows usable")]
    if s["seq_len"]:
        if ko:
            lines.append(
                f"  시퀀스 길이 {s['seq_len']:,} 토큰 (행의 {s['rows_whole']:.1%}가 잘리지 않음, 최장 {s['longest']:,} 토큰); "
                f"패킹 {'켜기' if s['packing'] else '끄기'}: {s['packing_reason']}"
            )
        else:
            lines.append(
                f"  sequence length {s['seq_len']:,} tokens (keeps {s['rows_whole']:.1%} of rows whole, longest {s['longest']:,}); "
                f"packing {'on' if s['packing'] else 'off'}: {s['packing_reason']}"
            )
        if s.get("raised_for"):
            lines.append(f"  [dim]{'시퀀스 길이를 늘림' if ko else 'sequence length raised'}: {s['raised_for']}[/dim]")
        lines.append(f"  [dim]{s['counter']}[/dim]")
    return lines
