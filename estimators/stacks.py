"""The training stack a run uses (`Setup.stack`) and the library versions priced (`Setup.versions`).

The stacks are rows of rules/stacks.toml; the behaviours that depend on a stack or a version are priced in
estimators/stack_terms.py. `--stack` changes only what is priced: the generated scripts always run TRL.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .errors import EstimateError
from .setup import LOSSES, STACKS, Setup
from .tables import read_table
from .versions import in_range, parse_versions, priced_versions, version_of


def applied(model, setup):
    if is_default_stack(setup):
        return []
    from .stack_terms import applied as _applied  # loaded only off the default stack: the fast path stays as fast

    return _applied(model, setup)


def is_default_stack(setup) -> bool:
    """The pinned stack with no option: estimators/terms.py alone prices it (no behaviour of rules/stacks.toml applies;
    tests/test_stack_terms.py checks that)."""
    return (
        setup.stack == "trl"
        and not setup.versions
        and setup.loss != "chunked"
        and not (setup.dora or setup.modules_to_save or setup.act_offload or setup.optim_in_bwd or setup.galore or setup.llama_adapter)
    )


def apply_stack(est, after_layout: bool = False):
    """`est` with its stack's, versions' and options' behaviours priced (estimators/stack_terms.py): those of the
    single-GPU SFT phases, or with `after_layout` those of one GPU under the parallel layout."""
    if is_default_stack(est.setup):
        return est
    from .stack_terms import apply

    if est.setup.llama_adapter and not after_layout:  # what trains and the paged states (estimators/adapter_prompt_terms.py)
        from .adapter_prompt_terms import finish

        return finish(apply(est, after_layout))
    return apply(est, after_layout)


# trl 1.15.0 added the fused LM head (trl/trainer/sft_trainer.py:1137 `add_fused_lm_head(`); 1.14.2 has none.
TRL_FUSED_HEAD = ">=1.15"


@dataclass(frozen=True)
class Stack:
    id: str
    name: str
    trainer: str  # the loop underneath: "hf" (transformers.Trainer), "litgpt", "torchtune"
    head: str  # the LM head and loss it runs by default (a LOSSES value)
    packages: tuple[str, ...]
    source: str


@cache
def stacks() -> dict[str, Stack]:
    out = {}
    for row in read_table("stacks.toml")["stack"]:
        st = Stack(row["id"], row["name"], row["trainer"], row["head"], tuple(row["packages"]), row["source"])
        if st.head not in LOSSES:
            raise EstimateError(f"rules/stacks.toml: stack '{st.id}' has head '{st.head}'; valid: {', '.join(LOSSES)}")
        out[st.id] = st
    if tuple(out) != STACKS:
        raise EstimateError(f"rules/stacks.toml lists stacks {', '.join(out)}; estimators/setup.py STACKS has {', '.join(STACKS)}")
    return out


def stack_of(setup: Setup) -> Stack:
    return stacks()[setup.stack]


def head_for_stack(setup: Setup) -> str:
    """The LM head priced. `--loss fused` (the Setup default) is TRL's fused head, which only TRL has; under another
    stack it means that stack's own default head (the HF loss for the HF Trainer, axolotl and LLaMA-Factory; chunked
    cross-entropy for LitGPT, torchtune and Unsloth). `--loss full` or `--loss chunked` is priced as given."""
    if setup.loss == "fused" and setup.stack != "trl":
        return stack_of(setup).head
    if setup.loss == "fused" and not in_range(version_of(setup.versions, "trl"), TRL_FUSED_HEAD):
        return "full"  # trl before 1.15 trains through the model's own causal-LM loss
    return setup.loss


def for_stack(setup: Setup) -> Setup:
    """`setup` as its stack runs it (estimators/effective.py applies it)."""
    head = head_for_stack(setup)
    return setup if head == setup.loss else setup.with_(loss=head)


def stack_summary(setup: Setup, model=None) -> dict:
    """What the estimate output says about the stack it priced: the stack, the version of each package that
    matters for it, which of those were given rather than pinned, and (given the model) the stack- and
    version-dependent behaviours that changed the figures (estimators/stack_terms.py)."""
    st = stack_of(setup)
    versions = priced_versions(setup.versions, st.packages)
    given = sorted(parse_versions(setup.versions)) if setup.versions else []
    return {
        "id": st.id,
        "name": st.name,
        "versions": versions,
        "given": given,
        "head": setup.loss,
        "behaviours": applied(model, setup) + layer_options(model, setup) if model is not None else [],
        "note": "priced only: generated scripts run the default stack (trl) with its pinned versions",
    }


def layer_options(model, setup: Setup) -> list[dict]:
    """The options rules/stacks.toml [[layer_option]] lists that the layer terms priced for `setup` (estimators/terms.py
    LAYER_OPTIONS), in the form `applied` gives the behaviours."""
    if not setup.torch_compile:  # the only one: the fast path reads no table for it
        return []
    from .terms import LAYER_OPTIONS

    return [
        {"id": r["id"], "summary": r["summary"], "package": "", "versions": "", "source": r["source"]}
        for r in read_table("stacks.toml").get("layer_option", [])
        if getattr(setup, r["option"]) and setup.stack in r["stacks"] and LAYER_OPTIONS[r["id"]](model, setup)
    ]


def stack_line(summary: dict) -> str:
    """One line for human output: "stack=trl (torch 2.13.0, transformers 5.24.0 given, ...)"."""
    parts = [f"{name} {ver}" + (" given" if name in summary["given"] else "") for name, ver in summary["versions"].items() if ver]
    line = f"stack={summary['id']} ({', '.join(parts)}) head={summary.get('head', '')}"
    ids = [b["id"] for b in summary.get("behaviours", [])]
    return line + (f"  priced: {', '.join(ids)}" if ids else "")


def installed_mismatch(setup: Setup, version_of=None) -> str | None:
    """For tools that run the installed stack (`advisor measure`): a one-line reason when `setup.versions` names a
    version that is not the installed one (the row would record versions that did not run), else None. A given
    "4.44" matches an installed "4.44.2". Reads package metadata only."""
    import importlib.metadata

    version_of = version_of or importlib.metadata.version
    for name, want in parse_versions(setup.versions).items() if setup.versions else ():
        try:
            have = version_of(name).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            have = ""
        if not have or not in_range(have, f"=={want}") and not have.startswith(want + "."):
            return (
                f"--versions {name}={want} but {name} {have or 'is not installed'} here: measuring runs what is installed "
                "(use --versions detect, or run in an environment with that version)"
            )
    return None
