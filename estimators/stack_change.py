"""What a stack-, version- or option-dependent behaviour does to an estimate: a list of `Change`s.

The pricers (estimators/stack_heads.py, stack_training.py, option_terms.py, galore_terms.py) return them and
estimators/stack_terms.apply runs them over an Estimate's phases: "set" a term's bytes, "delta" add to a term, "add"
a new term to some phases, or "host" move bytes to host RAM.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    kind: str  # "set" | "delta" | "add" | "host"
    term: str  # the term it sets / changes / adds
    nbytes: int
    note: str
    phases: tuple[str, ...] = ()  # () = every phase that holds the term; for "add" the phases to add it to
    category: str = "temporaries"  # for "add"
