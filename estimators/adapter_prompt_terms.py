"""LLaMA-Adapter (peft `AdaptionPromptConfig`, `--llama-adapter`): trained prompts and zero-init gates in the top
attention layers of a frozen base, priced on top of the SFT phases (a rules/stacks.toml [[behaviour]] row with
`option = "llama_adapter"`, applied by estimators/stack_terms.apply like the other options).

Read in peft 0.21.2 src/peft/tuners/adaption_prompt/ (config.py, layer.py, model.py, utils.py) with transformers 5.24
and trl 1.16; measured on CPU with bench/llama_adapter_saved.py (bench/results/llama_adapter_saved.txt: the saved bytes
of every decoder layer of small Llama, GQA Llama and Mistral models, one with q narrower than hidden, match the terms
to the byte) and traced at full size with the project's tracer (advisor/measure/adapter_trace.py,
bench/results/llama_adapter_trace.txt: Llama 2 7B, Mistral 7B, Llama 3.1 8B, with and without checkpointing, peak
within 0.01 %).
Nothing of LoRA runs: the set-up is `--method lora` for its frozen 16-bit base only, and the LoRA terms the SFT
phases price are replaced here (adapters, their gradients, states and saved branches).

Conventions as in estimators/terms.py: T tokens of the micro-batch, a the compute dtype's bytes, n the adapted layers.
"""

from __future__ import annotations

from dataclasses import replace

from . import terms as t
from .errors import EstimateError
from .grad_accum import ACCUMULATED, SUFFIX
from .model import ModelSpec
from .setup import Setup
from .stack_change import Change
from .versions import in_range, version_of

# peft 0.21.2 tuners/adaption_prompt/config.py:50-72 TRANSFORMERS_MODEL_CONFIG: the model types AdaptionPrompt wraps
# (prepare_config, :80, raises "Unsupported model type for adaption prompt" for any other). GPT-2's variant
# (AdaptedAttentionGPT, layer.py:62-139: no o_proj on the adapter output) is not priced.
PEFT_MODEL_TYPES = ("llama", "mistral", "gpt2")
PRICED_MODEL_TYPES = ("llama", "mistral")
TERM = "adaption prompts"
# TRL's fused LM head (estimators/stacks.py TRL_FUSED_HEAD, not imported: stacks -> stack_terms -> option_terms -> here)
TRL_FUSED_HEAD = ">=1.15"


def check_stack(setup: Setup) -> None:
    """TRL >= 1.15's SFTTrainer cannot train an AdaptionPrompt model: it patches the base model's forward with its
    fused LM head (`add_fused_lm_head(model.get_base_model())`, trl 1.16 sft_trainer.py:1144) and calls
    `model(..., fused_lm_head=True)`, but AdaptionPromptModel bound the unpatched forward when it was built
    (model.py:58 `self.forward = self.model.forward`), so the logits come back and compute_loss fails on
    `outputs.log_probs` (AttributeError, checked with a real 2-step SFTTrainer run on a tiny Llama). The HF Trainer
    (its model's own loss) trains it, with and without checkpointing."""
    version = version_of(setup.versions, "trl")
    if setup.stack == "trl" and (not version or in_range(version, TRL_FUSED_HEAD)):
        raise EstimateError(
            f"--llama-adapter cannot run on TRL {version or ''}'s SFTTrainer: its fused LM head patches the "
            "model's forward, which peft's AdaptionPromptModel has already bound (compute_loss fails on "
            "`log_probs`); price the HF Trainer, --stack hf-trainer (or axolotl, llama-factory), or TRL "
            "before 1.15 (--versions trl=1.14)"
        )


def check_model(m: ModelSpec) -> None:
    """One-line refusals for models peft's AdaptedAttention does not run (or that are not priced)."""
    if m.model_type not in PRICED_MODEL_TYPES:
        extra = " (peft also has GPT-2, not priced)" if m.model_type == "gpt2" else ""
        raise EstimateError(
            f"--llama-adapter: peft's AdaptionPrompt supports model types {', '.join(PEFT_MODEL_TYPES)}; "
            f"{m.name} is {m.model_type or 'of an unknown type'}; priced: {', '.join(PRICED_MODEL_TYPES)}{extra}"
        )
    factor = m.hidden_size // max(1, m.kv_width)  # layer.py:171 `k_proj.in_features // k_proj.out_features`
    heads = m.num_heads // max(1, factor)
    if heads * m.head_size != m.kv_width or heads * factor != m.num_heads:
        raise EstimateError(
            f"--llama-adapter: peft's AdaptedAttention views the prompt keys as num_heads // (hidden / kv width) "
            f"= {heads} heads of {m.head_size} (layer.py:171-184), not {m.name}'s kv width {m.kv_width}: the run "
            "fails (RuntimeError in view); models whose hidden / kv width divides the heads into the kv heads run"
        )


def adapted_layers(m: ModelSpec, setup: Setup) -> int:
    """The top `adapter_layers` decoder layers (model.py:81 `parents[-config.adapter_layers:]`), capped at the model's
    layers: peft refuses more (model.py:73), so the default 30 (peft's examples) is priced as every layer of a smaller
    model, as the run would be configured."""
    return min(setup.adapter_layers, m.num_layers)


def adapter_params(m: ModelSpec, setup: Setup) -> int:
    """Trained parameters: per adapted layer `adaption_prompt` (1 x adapter_len x hidden) and `adaption_gate` (1),
    layer.py:55-59; every other parameter is frozen (model.py:212-216, `_mark_only_adaption_prompts_as_trainable`)."""
    return adapted_layers(m, setup) * (setup.adapter_len * m.hidden_size + 1)


def param_bytes(setup: Setup) -> int:
    """dtype of the prompts and gates: the wrapped q_proj's weight dtype (layer.py:145-149 `target_dtype =
    model.q_proj.weight.dtype`), so bf16 over a bf16 base (not fp32 as LoRA's adapters), fp32 under fp32. Their
    gradients and AdamW states (`zeros_like`) share it."""
    return t.weight_bytes_per_param(setup)


def adapter_states(m: ModelSpec, setup: Setup) -> int:
    """Optimizer states of the prompts and gates, by terms.optimizer_states' rules: AdamW two states in the parameter
    dtype; 8-bit AdamW two bytes (+ absmax) per value, the 1-element gate kept in 32 bits (bitsandbytes keeps tensors
    under 4096 elements in fp32); Adafactor a factored fp32 second moment of the 1 x adapter_len x hidden prompt (rows
    adapter_len, columns hidden) and a full one of the gate; momentum SGD one buffer; Lion one fp32 buffer."""
    n = adapted_layers(m, setup)
    prompt, p = setup.adapter_len * m.hidden_size, param_bytes(setup)
    opt = setup.optimizer
    if opt == "adamw":
        return 2 * (prompt + 1) * p * n
    if opt in ("adamw8bit", "paged_adamw8bit"):
        eight = int(2 * prompt * (1 + 4 / 256)) if prompt >= 4096 else 2 * 4 * prompt
        return n * (eight + 2 * 4)
    if opt == "adafactor":
        return n * 4 * (setup.adapter_len + m.hidden_size + 1)
    if opt == "sgd_momentum":
        return n * (prompt + 1) * p
    if opt == "lion":
        return n * (prompt + 1) * 4
    return 0


def adapter_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes one adapted layer keeps for backward beyond the frozen layer (AdaptedAttention.forward, layer.py:151-223):
    - the query peft recomputes (utils.py:61-124 llama_compute_query_states: q_proj, then rotary `q * cos +
      rotate_half(q) * sin`, which keeps only the shared cos/sin): kept by the score matmul for the keys' gradient,
      a T x q_width;
    - the scores over the prompt, B x heads x S x adapter_len: softmax's fp32 output (`dtype=torch.float32`, kept by
      its backward), its cast to the compute dtype (kept by the gate product for the gate's gradient; the same tensor
      in fp32) and the gated scores (kept by the value matmul for the values' gradient);
    - the prompt's keys and values repeated to every batch row and head (`repeat`, `repeat_interleave`), each
      B x adapter_len x q_width, kept by the two matmuls.
    k_proj, v_proj (on the prompt) and o_proj (on the adapter output) are frozen and keep nothing. Measured to the byte
    on CPU: bench/results/llama_adapter_saved.txt."""
    a = t.activation_bytes(setup)
    b, s, lp = setup.micro_batch, setup.seq_len, setup.adapter_len
    scores = b * m.num_heads * s * lp * (4 + (a if a != 4 else 0) + a)
    return a * setup.tokens * m.q_width + scores + 2 * a * b * lp * m.q_width


def frozen_layer_saved(m: ModelSpec, setup: Setup) -> int:
    """What one decoder layer of the frozen base keeps (terms.layer_saved without LoRA's branches): its norms' fp32
    inputs, the attention kernel's tensors and the MLP's, as for every frozen LoRA layer."""
    return t.layer_saved(m, setup) - t.lora_saved(m, setup) * setup.tokens - t.merged_weights_saved(m, setup)


def first_layer_unsaved(m: ModelSpec, setup: Setup) -> int:
    """Without gradient checkpointing nothing below the adapters needs a gradient: TRL's SFTTrainer calls
    `enable_input_require_grads` only for checkpointing (trl 1.16 sft_trainer.py:899-900, as transformers'
    activation_checkpointing_enable does), so the embedding output needs no gradient, the layers below the adapted
    ones keep nothing, and the lowest adapted layer's input norm, base attention and prompt keys (the query needs no
    gradient) are not kept either: this much less than a full adapted layer. Measured: bench/results."""
    a = t.activation_bytes(setup)
    attention = (t.attention_saved(m, setup) + t.norm_saved(m, setup, 0)) * setup.tokens
    return attention + setup.micro_batch * t.eager_scores_saved(m, setup) + a * setup.micro_batch * setup.adapter_len * m.q_width


def adapter_transient(m: ModelSpec, setup: Setup) -> int:
    """The largest working set beyond the saved tensors while an adapted layer runs or is recomputed (read, not
    measured; terms.layer_forward_transient is LoRA's). Two moments: the adapter's o_proj, with the adapter output
    made contiguous for it (`transpose(1, 2).reshape`, T x q_width), o_proj's output and the base attention output
    waiting for the sum (T x hidden each), while the MLP has saved nothing yet; and the frozen MLP's down_proj, with
    its input product (T x intermediate, kept by no frozen op) and output (T x hidden), once the layer has saved all
    but the residual. Smaller ones: v_proj's unused output (utils.py:75) and softmax's fp32 input copy."""
    a, tokens = t.activation_bytes(setup), setup.tokens
    mlp_part = (t.mlp_saved(m, setup) + t.norm_saved(m, setup, 0)) * tokens
    at_o_proj = a * tokens * (m.q_width + 2 * m.hidden_size) - mlp_part
    at_down_proj = a * tokens * (m.intermediate_size + m.hidden_size)
    return max(at_o_proj, at_down_proj)


def stack_saved(m: ModelSpec, setup: Setup) -> int:
    """Every layer's saved tensors at the end of the forward: with checkpointing each layer's input (unchanged:
    non-reentrant checkpointing keeps them whether or not a layer is adapted), without it the n adapted layers only
    (frozen layer + adapter_saved each, less first_layer_unsaved), plus the final norm's and the eager mask."""
    if setup.checkpointing:
        return t.stack_activations(m, setup)
    n = adapted_layers(m, setup)
    rest = t.stack_activations(m, setup) - m.num_layers * t.layer_saved(m, setup)
    return n * (frozen_layer_saved(m, setup) + adapter_saved(m, setup)) - first_layer_unsaved(m, setup) + rest


def top_layer(m: ModelSpec, setup: Setup) -> int:
    """When backward reaches the top layer (always adapted): every checkpoint and that layer recomputed with the
    adapter, or every adapted layer's saved tensors (the final norm's freed), as sft._top_layer."""
    if setup.checkpointing:
        recomputed = frozen_layer_saved(m, setup) + adapter_saved(m, setup) + adapter_transient(m, setup)
        return m.num_layers * t.checkpoint_saved(m, setup) + recomputed + t.eager_mask(m, setup)
    return stack_saved(m, setup) - t.norm_saved(m, setup, 1) * setup.tokens


def bottom_layer(m: ModelSpec, setup: Setup) -> int:
    """The lowest layer backward differentiates, with the checkpoint input (sft._bottom_layer): with checkpointing
    layer 0, recomputed (gradients flow to the embedding output), adapted when every layer is; without, backward
    stops at the lowest adapted layer, which keeps less (first_layer_unsaved)."""
    frozen = frozen_layer_saved(m, setup)
    if setup.checkpointing:
        adapted = adapted_layers(m, setup) == m.num_layers
        return frozen + t.checkpoint_saved(m, setup) + (adapter_saved(m, setup) + adapter_transient(m, setup) if adapted else 0)
    return frozen + adapter_saved(m, setup) - first_layer_unsaved(m, setup) + t.checkpoint_saved(m, setup)


def _with_twins(*phases: str) -> tuple[str, ...]:
    return tuple(p for name in phases for p in (name, name + SUFFIX))  # grad_accum.py's micro-step 2+ twins


def llama_adapter(m: ModelSpec, setup: Setup) -> list:
    """peft's LLaMA-Adapter over the frozen base: the LoRA terms of the SFT phases replaced by the prompts and gates
    (adapter_params, in the base dtype), their gradients and optimizer states, and the activations of adapted layers
    (adapter_saved, stack_saved, top_layer, bottom_layer)."""
    check_model(m)
    check_stack(setup)
    per_layer = (setup.adapter_len * m.hidden_size + 1) * param_bytes(setup)
    grads = adapted_layers(m, setup) * per_layer
    states = adapter_states(m, setup)
    note = f"LLaMA-Adapter: {adapted_layers(m, setup)} layers x {setup.adapter_len} prompt tokens"
    grad_phases = _with_twins("optimizer step")
    return [
        Change("set", "LoRA adapters", grads, f"{note} (a prompt and a gate per layer, in the base dtype; no LoRA)"),  # finish renames it
        Change("set", "optimizer states", states, f"{setup.optimizer} on the prompts and gates"),
        Change("set", "foreach AdamW scratch", grads, "torch._foreach_sqrt(exp_avg_sqs) of the prompts' and gates' states"),  # older stacks
        Change("set", "gradients", grads, "the prompts' and gates'", phases=grad_phases),
        Change(
            "set",
            "gradients",
            grads - (per_layer if adapted_layers(m, setup) == m.num_layers else 0),
            "the prompts' and gates' (the lowest adapted layer's being computed)",
            phases=_with_twins("backward (layers)"),
        ),
        Change(
            "set",
            ACCUMULATED,
            grads,
            "the prompts' and gates' gradients, kept until the optimizer step",
            phases=tuple(p + SUFFIX for p in ("forward", "backward (loss)", "backward (top layer)")),
        ),
        Change(
            "set",
            ACCUMULATED,
            per_layer if adapted_layers(m, setup) == m.num_layers else 0,
            "the lowest adapted layer's, kept until the optimizer step",
            phases=("backward (layers)" + SUFFIX,),
        ),
        Change(
            "set",
            "saved activations",
            stack_saved(m, setup),
            f"{note}: " + ("checkpointed (layer inputs)" if setup.checkpointing else "only the adapted layers keep tensors"),
            phases=_with_twins("forward", "backward (loss)"),
        ),
        Change(
            "set",
            "saved activations",
            top_layer(m, setup),
            f"{note}: the top layer " + ("recomputed with its adapter" if setup.checkpointing else "and every adapted layer's tensors"),
            phases=_with_twins("backward (top layer)"),
        ),
        Change(
            "set", "layer activations", bottom_layer(m, setup), f"{note}: the lowest layer differentiated", phases=_with_twins("backward (layers)")
        ),
    ]


def finish(est):
    """The Estimate's own figures that are not phase terms: what trains (peft's print_trainable_parameters: the
    prompts and gates) and the paged optimizer's states, a warning where adapter_layers was capped; and the
    parameters' term under its own name (TERM: no LoRA adapter exists)."""
    setup, m = est.setup, est.model
    warnings = est.warnings
    if setup.adapter_layers > m.num_layers:
        warnings += (
            f"adapter_layers {setup.adapter_layers} is more than {m.name}'s {m.num_layers} layers: priced with all "
            f"{m.num_layers} adapted, as a run must set them (peft refuses more; --adapter-layers {m.num_layers})",
        )
    paged = adapter_states(m, setup) if est.paged_bytes else 0
    phases = {
        name: tuple(t.TermValue(TERM, v.category, v.bytes, v.note) if v.name == "LoRA adapters" else v for v in values)
        for name, values in est.phases.items()
    }
    return replace(est, phases=phases, trainable=adapter_params(m, setup), paged_bytes=paged, warnings=warnings)
