"""Token lengths as the trainer will see them, counted by one of advisor/datasets/counters.py (the model's own
tokenizer and chat template, or the stated approximation).

What the trainer tokenizes, per TRL type (trl 1.16's SFT/DPO/Reward trainers):
  standard text        tokenizer(text + eos_token) with its special tokens (the eos is appended as text when missing)
  standard pairs       tokenizer(prompt) and tokenizer(prompt + completion + eos_token), both with special tokens;
                       the completion is what the second has beyond the first (DPO: the same for chosen, rejected)
  conversational       apply_chat_template(turns): the template adds every special token itself, so the
                       rendered text is encoded without adding more; prompt tokens = the template of the prompt
                       turns with add_generation_prompt=True, completion = the whole minus the prompt
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .detect import Detection, conversation_prompt


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------------------------ lengths of a batch
@dataclass
class Measured:
    """Per-row lengths of one batch; None where the row could not be measured (its error is in errors)."""

    fields: dict[str, list[int | None]]
    errors: list[str]

    def lengths(self, i: int) -> dict[str, int]:
        """Row i's length in each field: a row without an error has every one (None comes only with an error)."""
        out: dict[str, int] = {}
        for name, values in self.fields.items():
            value = values[i]
            assert value is not None, f"row {i} of the batch was not measured: {self.errors[i]}"
            out[name] = value
        return out


def measure(rows: list[dict], det: Detection, counter) -> Measured:
    """Lengths of TRL-form rows (detect.to_trl): 'total' is the sequence the trainer builds (for preference pairs,
    prompt + the longer answer), 'supervised' the tokens its loss covers."""
    n = len(rows)
    errors = [""] * n
    conv = det.form == "conversational"

    def chat(convs, gen):
        counts, errs = counter.count_chat(convs, gen)
        for i, e in enumerate(errs):
            if e and not errors[i]:
                errors[i] = e
        return counts

    def plain(texts, special):
        return counter.count(["" if t is None else str(t) for t in texts], special)

    def minus(a, b):
        return [x - y if x is not None and y is not None else None for x, y in zip(a, b, strict=False)]

    def plus(a, b):
        return [x + y if x is not None and y is not None else None for x, y in zip(a, b, strict=False)]

    def with_eos(texts):
        return counter.count_eos(["" if x is None else str(x) for x in texts])

    t = det.type
    if t == "language_modeling":
        total = chat([r["messages"] for r in rows], False) if conv else with_eos([r["text"] for r in rows])
        return Measured({"total": total, "supervised": total}, errors)
    if t == "prompt_only":
        prompt = chat([r["prompt"] for r in rows], True) if conv else plain([r["prompt"] for r in rows], True)
        return Measured({"prompt": prompt, "total": prompt, "supervised": [0] * n}, errors)
    if t in ("prompt_completion", "unpaired_preference"):
        if conv:
            prompt = chat([r["prompt"] for r in rows], True)
            whole = chat([list(r["prompt"]) + list(r["completion"]) for r in rows], False)
            completion = minus(whole, prompt)
        else:  # trl 1.16: tokenizer(prompt) and tokenizer(prompt + completion + eos); the completion is the rest
            prompt = plain([r["prompt"] for r in rows], True)
            whole = with_eos([_text(r["prompt"]) + _text(r["completion"]) for r in rows])
            completion = minus(whole, prompt)
        return Measured({"prompt": prompt, "completion": completion, "total": whole, "supervised": completion}, errors)
    if t == "preference":
        if conv:
            prompt = chat([r["prompt"] for r in rows], True)
            chosen = minus(chat([list(r["prompt"]) + list(r["chosen"]) for r in rows], False), prompt)
            rejected = minus(chat([list(r["prompt"]) + list(r["rejected"]) for r in rows], False), prompt)
        else:  # trl 1.16 DPO: tokenizer(prompt), tokenizer(prompt + chosen + eos), tokenizer(prompt + rejected + eos)
            prompt = plain([r["prompt"] for r in rows], True)
            chosen = minus(with_eos([_text(r["prompt"]) + _text(r["chosen"]) for r in rows]), prompt)
            rejected = minus(with_eos([_text(r["prompt"]) + _text(r["rejected"]) for r in rows]), prompt)
        longer = [max(a, b) if a is not None and b is not None else None for a, b in zip(chosen, rejected, strict=False)]
        return Measured(
            {"prompt": prompt, "chosen": chosen, "rejected": rejected, "total": plus(prompt, longer), "supervised": plus(chosen, rejected)}, errors
        )
    # implicit preference: each answer carries the prompt
    if conv:
        chosen = chat([r["chosen"] for r in rows], False)
        rejected = chat([r["rejected"] for r in rows], False)
    else:
        chosen = with_eos([r["chosen"] for r in rows])
        rejected = with_eos([r["rejected"] for r in rows])
    total = [max(a, b) if a is not None and b is not None else None for a, b in zip(chosen, rejected, strict=False)]
    return Measured({"chosen": chosen, "rejected": rejected, "total": total, "supervised": plus(chosen, rejected)}, errors)


def prompts_of(row: dict, det: Detection) -> Any:
    """The prompt a GRPO/PPO run would generate from (for conversations: the turns before the last answer)."""
    if det.type == "language_modeling" and det.form == "conversational":
        return conversation_prompt(row["messages"])
    return row.get("prompt")
