"""Memory terms that depend on the training stack (`Setup.stack`) or on a library version (`Setup.versions`).

estimators/terms.py prices what the pinned stack allocates (TRL 1.16 on transformers 5.24, peft 0.21,
bitsandbytes 0.50, torch 2.13). Each behaviour is a row of rules/stacks.toml ([[behaviour]]: the package, the
version range, the stacks, the source line) and a function that re-prices the SFT phases where that stack or
version allocates differently: the LM heads in estimators/stack_heads.py, the adapters, optimizer and checkpoints in
stack_training.py, the options users add in option_terms.py (GaLore in galore_terms.py). Every function's docstring gives the range and the line
of the library source it was read from (wheels downloaded with `pip download <pkg>==<version> --no-deps`, read,
never installed).

This module reads the behaviour rows, picks the ones that apply to a set-up and runs their `Change`s
(estimators/stack_change.py) over an Estimate's phases with `apply()`, which finds the peak again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from . import terms as t
from .errors import EstimateError
from .model import ModelSpec
from .option_terms import PRICES as OPTION_PRICES
from .setup import Setup
from .stack_change import Change
from .stack_heads import chunked_head, hf_loss_compute_dtype, hf_loss_fp32_logits, hf_loss_shift_copy, unsloth_full_head
from .stack_training import (
    adamw_hf_loop,
    foreach_adamw,
    fsdp_frozen_unit_held_checkpoints,
    native_adapter_dtype,
    old_torch_foreach,
    peft_adapter_base_dtype,
    unsloth_offloaded_checkpoints,
)
from .tables import read_table
from .versions import in_range, version_of


@dataclass(frozen=True)
class Behaviour:
    id: str
    package: str  # "" = the stack itself, whatever the versions
    versions: str  # a range for estimators.versions.in_range ("" = any)
    stacks: tuple[str, ...]
    summary: str
    source: str
    option: str = ""  # a Setup field that must be set (estimators/option_terms.py), "" = none
    # priced on the per-GPU phases, after the parallel layout (estimators/kinds.py), not on the single-GPU SFT phases
    # the layouts start from: a behaviour of the layout itself (FSDP's hooks), where those phases have no layout yet
    after_layout: bool = False


@cache
def behaviours() -> tuple[Behaviour, ...]:
    rows = tuple(
        Behaviour(
            r["id"],
            r.get("package", ""),
            r.get("versions", ""),
            tuple(r["stacks"]),
            r["summary"],
            r["source"],
            r.get("option", ""),
            r.get("after_layout", False),
        )
        for r in read_table("stacks.toml").get("behaviour", [])
    )
    missing = [b.id for b in rows if b.id not in PRICES]
    if missing:
        raise EstimateError(f"rules/stacks.toml behaviours without a pricing function: {', '.join(missing)}")
    return rows


def applies(b: Behaviour, setup: Setup) -> bool:
    """Whether a behaviour's stack and version range match the set-up (the priced version: given, else pinned)."""
    if setup.stack not in b.stacks or (b.option and not getattr(setup, b.option)):
        return False
    if not b.package:
        return True
    version = version_of(setup.versions, b.package)
    return bool(version) and in_range(version, b.versions)


def changes_for(m: ModelSpec, setup: Setup, after_layout: bool | None = None) -> list[tuple[Behaviour, list[Change]]]:
    """The behaviours that change `setup`'s estimate (`after_layout`: only those priced before / after the layout)."""
    out = []
    for b in behaviours():
        if m.encoder and b.id in LM_HEAD_BEHAVIOURS:
            continue  # an encoder's loss is CrossEntropyLoss over B x num_labels (terms.logit_count): no LM head
        if applies(b, setup) and after_layout in (None, b.after_layout):
            changes = PRICES[b.id](m, setup)
            if changes:
                out.append((b, changes))
    return out


def applied(m: ModelSpec, setup: Setup) -> list[dict]:
    """The behaviours that changed an estimate, for its output."""
    return [{"id": b.id, "summary": b.summary, "package": b.package, "versions": b.versions, "source": b.source} for b, _ in changes_for(m, setup)]


def apply(est, after_layout: bool = False):
    """`est` (an estimators.result.Estimate of single-GPU SFT; with `after_layout`, of one GPU under its layout) with
    its stack's and versions' behaviours priced."""
    found = changes_for(est.model, est.setup, after_layout)
    if not found:
        return est
    phases = {name: list(values) for name, values in est.phases.items()}
    host = est.host_offload_bytes
    for b, changes in found:
        for ch in changes:
            if ch.kind == "host":
                host += ch.nbytes
                continue
            for name, values in phases.items():
                if ch.phases and name not in ch.phases:
                    continue
                if ch.kind == "add":
                    values.append(t.TermValue(ch.term, ch.category, int(ch.nbytes), f"{ch.note} [{b.id}]"))
                    continue
                for i, v in enumerate(values):
                    if v.name != ch.term:
                        continue
                    nbytes = ch.nbytes if ch.kind == "set" else v.bytes + ch.nbytes
                    values[i] = t.TermValue(v.name, v.category, max(0, int(nbytes)), f"{ch.note} [{b.id}]")
    frozen = {k: tuple(v) for k, v in phases.items()}
    peak = max(frozen, key=lambda name: sum(v.bytes for v in frozen[name]))
    return replace(est, phases=frozen, peak_phase=peak, host_offload_bytes=host)


# The behaviours of a causal LM's head and loss (B x S x V logits, their copies and chunks).
LM_HEAD_BEHAVIOURS = ("hf-loss-shift-copy", "hf-loss-fp32-logits", "hf-loss-compute-dtype", "chunked-head", "unsloth-full-head")
PRICES = {
    **OPTION_PRICES,
    "hf-loss-shift-copy": hf_loss_shift_copy,
    "hf-loss-fp32-logits": hf_loss_fp32_logits,
    "hf-loss-compute-dtype": hf_loss_compute_dtype,
    "chunked-head": chunked_head,
    "unsloth-full-head": unsloth_full_head,
    "peft-adapter-base-dtype": peft_adapter_base_dtype,
    "native-adapter-dtype": native_adapter_dtype,
    "hf-default-foreach-adamw": foreach_adamw,
    "hf-adamw-hf-default": adamw_hf_loop,
    "torch-before-fused-default": old_torch_foreach,
    "litgpt-foreach-adamw": foreach_adamw,
    "unsloth-offloaded-checkpoints": unsloth_offloaded_checkpoints,
    "fsdp-frozen-unit-held-checkpoints": fsdp_frozen_unit_held_checkpoints,
}
