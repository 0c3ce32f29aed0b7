"""Which dataset type the rows are, in TRL's terms, and how each trainer gets its columns.

TRL (https://huggingface.co/docs/trl/dataset_formats) names the types by their columns:
  language modeling        text                       | messages
  prompt-only              prompt
  prompt-completion        prompt, completion
  preference (explicit)    prompt, chosen, rejected
  preference (implicit)    chosen, rejected           (the prompt is inside both)
  unpaired preference      prompt, completion, label  (KTO)
each in standard form (strings) or conversational form (lists of {"role", "content"} turns).
The community formats people bring are mapped onto these: alpaca (instruction/input/output, and dolly's
instruction/context/response), sharegpt (conversations of {"from", "value"}), question/answer (gsm8k and kin).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AdvisorError

DETECT_ROWS = 200  # rows looked at to decide the type (the validator then checks every row against it)

ROLES = ("system", "user", "assistant", "tool", "function", "developer", "ipython")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "tool": "tool",
    "function_call": "assistant",
    "observation": "tool",
    "function": "tool",
}

# type -> (label, the columns TRL reads)
TYPES = {
    "language_modeling": ("language modeling", ("text",)),
    "prompt_only": ("prompt-only", ("prompt",)),
    "prompt_completion": ("prompt-completion", ("prompt", "completion")),
    "preference": ("preference (explicit prompt)", ("prompt", "chosen", "rejected")),
    "preference_implicit": ("preference (implicit prompt)", ("chosen", "rejected")),
    "unpaired_preference": ("unpaired preference", ("prompt", "completion", "label")),
}
KINDS = ("sft", "reward", "dpo", "grpo", "ppo")
# the kind a type is usually brought for: what the plan is priced for unless --train says otherwise
DEFAULT_KIND = {
    "language_modeling": "sft",
    "prompt_only": "grpo",
    "prompt_completion": "sft",
    "preference": "dpo",
    "preference_implicit": "dpo",
    "unpaired_preference": "sft",
}

# (type, kind) -> (feeds?, how or why not). The mapping that `how` names is what formatting_spec() returns.
FEEDS = {
    ("language_modeling", "sft"): (True, "as it is: the loss covers every token"),
    ("language_modeling", "reward"): (False, "a reward model needs chosen/rejected pairs; plain text has none"),
    ("language_modeling", "dpo"): (False, "DPO needs chosen/rejected pairs; plain text has none"),
    ("language_modeling", "grpo"): (False, "GRPO needs prompts to generate from; plain text has no prompt/answer split"),
    ("language_modeling", "ppo"): (False, "PPO needs prompts to generate from; plain text has no prompt/answer split"),
    ("prompt_only", "sft"): (False, "SFT needs the answers to learn; prompts alone have none"),
    ("prompt_only", "reward"): (False, "a reward model needs chosen/rejected pairs"),
    ("prompt_only", "dpo"): (False, "DPO needs chosen/rejected pairs"),
    ("prompt_only", "grpo"): (True, "as it is: the trainer generates the completions"),
    ("prompt_only", "ppo"): (True, "as it is: the trainer generates the completions"),
    ("prompt_completion", "sft"): (True, "as it is: the loss covers the completion only (TRL's completion_only_loss)"),
    ("prompt_completion", "reward"): (False, "one completion per prompt: a reward model needs a preferred and a rejected one"),
    ("prompt_completion", "dpo"): (False, "one completion per prompt: DPO needs a preferred and a rejected one"),
    ("prompt_completion", "grpo"): (True, "the prompt column; the completion can go to a reward function as a reference answer"),
    ("prompt_completion", "ppo"): (True, "the prompt column only"),
    ("preference", "sft"): (True, "prompt + chosen as prompt-completion (the rejected answers are not used)"),
    ("preference", "reward"): (True, "as it is"),
    ("preference", "dpo"): (True, "as it is"),
    ("preference", "grpo"): (True, "the prompt column only"),
    ("preference", "ppo"): (True, "the prompt column only"),
    ("preference_implicit", "sft"): (True, "chosen as the training text (the rejected answers are not used)"),
    ("preference_implicit", "reward"): (True, "as it is"),
    ("preference_implicit", "dpo"): (True, "as it is: TRL splits off the shared prompt"),
    ("preference_implicit", "grpo"): (False, "no separate prompt column: the prompt is inside chosen and rejected"),
    ("preference_implicit", "ppo"): (False, "no separate prompt column: the prompt is inside chosen and rejected"),
    ("unpaired_preference", "sft"): (True, "the rows labelled true, as prompt-completion"),
    ("unpaired_preference", "reward"): (False, "unpaired labels are not pairs: TRL's RewardTrainer needs chosen/rejected (KTO takes this type)"),
    ("unpaired_preference", "dpo"): (False, "unpaired labels are not pairs: DPO needs chosen/rejected (KTO takes this type)"),
    ("unpaired_preference", "grpo"): (True, "the prompt column only"),
    ("unpaired_preference", "ppo"): (True, "the prompt column only"),
}
# conversational language modeling ("messages") can also give prompts: every turn before the last assistant turn
CONVERSATION_PROMPTS = (True, "the turns before the last assistant turn as the prompt")


@dataclass(frozen=True)
class Detection:
    type: str  # a TYPES key: what the trainer gets after the mapping
    form: str  # "standard" (strings) or "conversational" (lists of turns)
    format: str  # "trl" or the community format it came in: alpaca, sharegpt, question_answer
    columns: tuple[str, ...]  # the columns seen, in order
    source_columns: dict[str, str] = field(default_factory=dict)  # TRL column -> the column (or recipe) it comes from
    extra_columns: tuple[str, ...] = ()  # seen, not used by the mapping (kept: reward functions may read them)
    fields: dict[str, str] = field(default_factory=dict)  # role of each source column for the validator: column -> shape
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        base = TYPES[self.type][0]
        via = "" if self.format == "trl" else f", from {self.format.replace('_', '/')} columns"
        return f"{base}, {self.form}{via}"

    def feeds(self, kind: str) -> tuple[bool, str]:
        if self.type == "language_modeling" and self.form == "conversational" and kind in ("grpo", "ppo"):
            return CONVERSATION_PROMPTS
        return FEEDS[(self.type, kind)]


def is_turns(value: Any, keys: tuple[str, str] = ("role", "content")) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, dict) and keys[0] in t and keys[1] in t for t in value[:4])


def _shape(values: list[Any]) -> str:
    """The shape most rows give a column: text, turns, sharegpt_turns, bool, number, list, object, none."""
    counts: dict[str, int] = {}
    for v in values:
        if v is None:
            s = "none"
        elif isinstance(v, str):
            s = "text"
        elif isinstance(v, bool):
            s = "bool"
        elif isinstance(v, (int, float)):
            s = "number"
        elif is_turns(v):
            s = "turns"
        elif is_turns(v, ("from", "value")):
            s = "sharegpt_turns"
        elif isinstance(v, list):
            s = "list"
        elif isinstance(v, dict):
            s = "object"
        else:
            s = type(v).__name__
        counts[s] = counts.get(s, 0) + 1
    real = {k: n for k, n in counts.items() if k != "none"}
    return max(real, key=real.__getitem__) if real else "none"


def detect(rows: list[dict], label: str = "the data") -> Detection:
    if not rows:
        raise AdvisorError(f"{label}: no readable rows to detect the dataset type from")
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    seen = {c: _shape([r.get(c) for r in rows]) for c in columns}
    # what the validator expects of a column: text or turns for the text columns (a column of numbers is wrong
    # in every row, not a new shape), true/false for KTO's label
    shape = {c: "bool" if c == "label" else (s if s in ("text", "turns", "sharegpt_turns") else "text") for c, s in seen.items()}
    has = set(columns)

    def pick(*names: str) -> str | None:
        return next((n for n in names if n in has), None)

    def extras(used: Iterable[str]) -> tuple[str, ...]:
        return tuple(c for c in columns if c not in used)

    def form_of(*cols: str) -> str:
        return "conversational" if any(shape.get(c) == "turns" for c in cols) else "standard"

    # the most specific column sets first: preference before prompt-completion before prompt-only
    if {"chosen", "rejected"} <= has:
        kind = "preference" if "prompt" in has else "preference_implicit"
        used: list[str] = [c for c in ("prompt", "chosen", "rejected") if c in has]
        return Detection(kind, form_of(*used), "trl", tuple(columns), {c: c for c in used}, extras(used), {c: shape[c] for c in used})
    if {"prompt", "completion", "label"} <= has:
        used = ["prompt", "completion", "label"]
        return Detection(
            "unpaired_preference",
            form_of("prompt", "completion"),
            "trl",
            tuple(columns),
            {c: c for c in used},
            extras(used),
            {c: shape[c] for c in used},
        )
    if {"prompt", "completion"} <= has:
        used = ["prompt", "completion"]
        return Detection("prompt_completion", form_of(*used), "trl", tuple(columns), {c: c for c in used}, extras(used), {c: shape[c] for c in used})
    conv = pick("messages", "conversations", "conversation", "chat")
    if conv and seen[conv] in ("turns", "sharegpt_turns"):
        sharegpt = seen[conv] == "sharegpt_turns"
        notes: tuple[str, ...] = (
            (
                f"'{conv}' turns use from/value (sharegpt): mapped to role/content, human->user, gpt->assistant (trl's own "
                "maybe_convert_to_chatml renames the keys but keeps 'human'/'gpt' as roles, which chat templates do not know)",
            )
            if sharegpt
            else ()
        )
        if conv != "messages":
            notes += (f"'{conv}' is renamed to 'messages', the column TRL reads",)
        return Detection(
            "language_modeling",
            "conversational",
            "sharegpt" if sharegpt else "trl",
            tuple(columns),
            {"messages": conv},
            extras({conv}),
            {conv: shape[conv]},
            notes,
        )
    instruction, output = pick("instruction"), pick("output", "response")
    if instruction and output:
        extra_in = pick("input", "context")
        used = [instruction] + ([extra_in] if extra_in else []) + [output]
        recipe = f"{instruction} + blank line + {extra_in} (when not empty)" if extra_in else instruction
        notes = (
            "alpaca rows become conversational prompt-completion (one user turn, one assistant turn), so the chat "
            "template is applied and the loss covers the answer only",
        )
        return Detection(
            "prompt_completion",
            "conversational",
            "alpaca",
            tuple(columns),
            {"prompt": recipe, "completion": output},
            extras(used),
            {c: shape[c] for c in used},
            notes,
        )
    question, answer = pick("question", "query", "problem"), pick("answer", "solution")
    if question and answer:
        used = [question, answer]
        return Detection(
            "prompt_completion",
            "standard",
            "question_answer",
            tuple(columns),
            {"prompt": question, "completion": answer},
            extras(used),
            {c: shape[c] for c in used},
        )
    if "prompt" in has:
        return Detection(
            "prompt_only", form_of("prompt"), "trl", tuple(columns), {"prompt": "prompt"}, extras({"prompt"}), {"prompt": shape["prompt"]}
        )
    if question:
        return Detection(
            "prompt_only", "standard", "question_answer", tuple(columns), {"prompt": question}, extras({question}), {question: shape[question]}
        )
    if "text" in has:
        return Detection("language_modeling", "standard", "trl", tuple(columns), {"text": "text"}, extras({"text"}), {"text": shape["text"]})
    if conv:
        raise AdvisorError(f"{label}: column '{conv}' is {_a(seen[conv])}, not a list of turns with role/content (or from/value)")
    listed = ", ".join(f"{c} ({seen[c]})" for c in columns[:12]) + (" ..." if len(columns) > 12 else "")
    raise AdvisorError(
        f"{label}: no known dataset type in the columns {listed}; expected text | messages | prompt [+ completion [+ label]] | "
        "[prompt +] chosen + rejected | instruction/input/output (alpaca) | conversations (sharegpt) | question/answer"
    )


def _a(shape: str) -> str:
    return {"text": "text", "list": "a list of other things", "object": "an object", "number": "a number"}.get(shape, shape)


# ------------------------------------------------------------------------------------------------ to TRL's form
def to_trl(row: dict, det: Detection) -> dict:
    """The row as the trainer reads it after the mapping (the same mapping formatting_spec() describes)."""
    if det.format == "alpaca":
        ins, answer = "instruction", det.source_columns["completion"]
        extra = next((c for c in ("input", "context") if c in det.fields), None)
        prompt = str(row.get(ins) or "")
        if extra and row.get(extra):
            prompt = f"{prompt}\n\n{row[extra]}"
        return {"prompt": [{"role": "user", "content": prompt}], "completion": [{"role": "assistant", "content": str(row.get(answer) or "")}]}
    if det.format == "sharegpt":
        turns = row.get(det.source_columns["messages"]) or []
        return {
            "messages": [{"role": SHAREGPT_ROLES.get(str(t.get("from", "")).lower(), str(t.get("from"))), "content": t.get("value")} for t in turns]
        }
    return {trl: row.get(src) for trl, src in det.source_columns.items()}


def conversation_prompt(messages: list[dict]) -> list[dict]:
    """The turns before the last assistant turn: a prompt for GRPO/PPO from a conversation."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant":
            return messages[:i]
    return messages
