"""The set-up as the stack runs it: the one normalisation every consumer applies, once.

The user's flags are not always what runs. peft refuses dropout on the raw parameters it wraps (MoE experts
fused into one tensor in transformers 5), the stack picks its LM head (estimators/stacks.py), and FSDP flattens
each layer into one dtype so peft's fp32 upcast of QLoRA's unquantised weights cannot be used there. The plan
stores the result per stage, so the estimate, the generated script and the run README all read the same set-up;
the estimator applies it again (it is idempotent) so a hand-built `Setup` is priced as it will run."""

from __future__ import annotations

from . import terms as t
from .model import ModelSpec
from .parallel import priced_setup
from .setup import Setup
from .stacks import for_stack


def effective_setup(spec: ModelSpec, setup: Setup) -> Setup:
    """`setup` validated and as it runs on `spec`: peft's limits (terms.for_model, which also refuses set-ups that
    cannot run), the stack's LM head, and the parallel layout's dtype rule (parallel.priced_setup)."""
    return priced_setup(for_stack(t.for_model(spec, setup.validated())))


def adjustments(given: Setup, effective: Setup) -> list[str]:
    """What `effective_setup` changed in `given`, in words worth a warning line (the user asked for something else)."""
    out = []
    if given.method == "qlora" and given.kbit_upcast and not effective.kbit_upcast:
        out.append(f"QLoRA under --parallel {given.parallel} runs without peft's fp32 upcast (FSDP flattens each layer into "
                   "one dtype): priced so, and the script skips it")
    return out
