"""Known library noise in a training run's output: shown only in the stage's log file, not on the console.

Each rule names one message the pinned stack prints on every run that the user can do nothing about, with why
it is harmless (`source`). Its first line matches `start`; the lines right after it that match `follow` (the
`warnings.warn(` source line Python prints under a warning, the rows of a table) belong to it. Anything not
in this table is shown as before, so a real warning still reaches the console.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class NoiseRule:
    id: str
    start: re.Pattern
    follow: re.Pattern | None
    source: str  # where it comes from and why it is harmless


NOISE = (
    NoiseRule(
        "bnb-cpu-kernels",
        re.compile(r"Failed to load CPU gemm_4bit_forward from kernels-community"),
        None,
        "bitsandbytes 0.50 at import on a machine without the optional `kernels` package; it uses its own kernel instead",
    ),
    NoiseRule(
        "hf-gradient-checkpointing-rename",
        re.compile(r"FutureWarning: `(is_gradient_checkpointing|gradient_checkpointing_enable|gradient_checkpointing_disable)` is deprecated"),
        re.compile(r"^\s+warnings\.warn\("),
        "transformers 5.24 renamed gradient checkpointing to activation checkpointing and warns when the Trainer, peft "
        "or trl call the old names; the scripts only set TrainingArguments.gradient_checkpointing",
    ),
    NoiseRule(
        "trl-experimental-import",
        re.compile(r"TRLExperimentalWarning: You are importing from 'trl\.experimental'"),
        re.compile(r"^\s+from trl\.experimental"),
        "the PPO script imports PPOTrainer from trl 1.12's trl.experimental on purpose (PPO lives only there)",
    ),
    NoiseRule(
        "trl-ppo-generation-config",
        re.compile(r"Passing `generation_config` together with generation-related arguments"),
        None,
        "trl 1.12's PPOTrainer passes both to generate(); transformers 5 warns, the sampling is the same",
    ),
    NoiseRule(
        "hf-seq-cls-head-report",
        re.compile(r"ForSequenceClassification LOAD REPORT"),
        # only the rows a new reward head always has: the causal LM head left out, the score head new
        re.compile(r"^(Key\s+\|\s*Status|[-+]+$|lm_head\.weight\s+\|\s+UNEXPECTED|score\.weight\s+\|\s+MISSING|\s*$|Notes:|- (UNEXPECTED|MISSING):)"),
        "a reward model starts from a causal LM: its lm_head is dropped and the score head is new, as intended",
    ),
)


class NoiseFilter:
    """Feed it every output line; `hide(line)` says whether the console should skip it (the log keeps it)."""

    def __init__(self, rules: tuple[NoiseRule, ...] = NOISE) -> None:
        self.rules = rules
        self.current: NoiseRule | None = None  # the rule whose follow-up lines may come next
        self.hidden: dict[str, int] = {}  # rule id -> messages hidden

    def hide(self, line: str) -> bool:
        text = ANSI.sub("", line.rstrip("\n"))
        if self.current is not None and self.current.follow is not None and self.current.follow.search(text):
            return True
        self.current = None
        for rule in self.rules:
            if rule.start.search(text):
                self.current = rule
                self.hidden[rule.id] = self.hidden.get(rule.id, 0) + 1
                return True
        return False

    @property
    def count(self) -> int:
        return sum(self.hidden.values())
