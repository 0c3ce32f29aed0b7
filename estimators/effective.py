"""The set-up as the stack runs it: the one normalisation every consumer applies, once.

The user's flags are not always what runs. peft refuses dropout on the raw parameters it wraps (MoE experts
fused into one tensor in transformers 5), the stack picks its LM head (estimators/stacks.py), and FSDP flattens
each layer into one dtype so peft's fp32 upcast of QLoRA's unquantised weights cannot be used there. The plan
stores the result per stage, so the estimate, the generated script and the run README all read the same set-up;
the estimator applies it again (it is idempotent) so a hand-built `Setup` is priced as it will run."""

from __future__ import annotations

from .checks import check_setup
from .errors import EstimateError
from .layouts import priced_setup
from .model import ModelSpec
from .setup import Setup, save_module_names
from .stacks import for_stack
from .terms import check_lora_targets, wrapped_parameters


def effective_setup(spec: ModelSpec, setup: Setup) -> Setup:
    """`setup` as it runs on `spec`: peft's limits (for_model, which also refuses set-ups that cannot run), the
    stack's LM head, and the parallel layout's dtype rule (layouts.priced_setup)."""
    runs = priced_setup(for_stack(for_model(spec, setup)))
    if spec.encoder and runs.loss != "full":  # a classification head on the first token: no LM head to fuse or chunk
        runs = runs.with_(loss="full")
    return runs


def for_model(m: ModelSpec, setup: Setup) -> Setup:
    """`setup` as peft will run it on `m`: a ParamWrapper refuses dropout, so LoRA dropout is 0 wherever a raw
    parameter is wrapped; a reward model's modules_to_save has no lm_head to copy. Raises on a half-targeted fused
    pair, unknown or empty LoRA targets, an absurd rank, a response with no prompt room (estimators/checks.py)."""
    problem = check_lora_targets(m, setup)
    if problem:
        raise EstimateError(problem)
    check_setup(m, setup)
    if setup.train == "reward" and "lm_head" in save_module_names(setup):
        # a reward model has no lm_head (its `score` head, which peft's SEQ_CLS trains anyway): peft skips the name
        setup = setup.with_(modules_to_save=",".join(n for n in save_module_names(setup) if n != "lm_head"))
    if m.encoder and setup.adaptation != "full" and "lm_head" not in save_module_names(setup):
        # peft's SEQ_CLS task (what a classifier is trained with) adds the head to modules_to_save: `classifier` trains
        # in full next to the adapters (peft 0.21 peft_model.py PeftModelForSequenceClassification)
        setup = setup.with_(modules_to_save=",".join((*save_module_names(setup), "lm_head")))
    if setup.lora_dropout and wrapped_parameters(m, setup):
        return setup.with_(lora_dropout=0.0)
    return setup


def adjustments(given: Setup, effective: Setup) -> list[str]:
    """What `effective_setup` changed in `given`, in words worth a warning line (the user asked for something else)."""
    out = []
    if given.adaptation == "qlora" and given.kbit_upcast and not effective.kbit_upcast:
        out.append(
            f"QLoRA under --parallel {given.parallel} runs without peft's fp32 upcast (FSDP flattens each layer into "
            "one dtype): priced so, and the script skips it"
        )
    if "lm_head" in save_module_names(given) and "lm_head" not in save_module_names(effective):
        out.append(
            f"a reward model has no lm_head (its score head is trained already): modules_to_save keeps {effective.modules_to_save or 'nothing'} there"
        )
    return out
