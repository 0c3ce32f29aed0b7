"""Compose the memory terms into phases of a training step and find the peak.

A step is priced at steady state (the second optimizer step and later): weights and optimizer states are
alive throughout; gradients exist from backward until `zero_grad(set_to_none=True)` after the step.
The phases are the points where the live set is largest (each checked against `advisor measure` traces):
  forward              the loss: every layer's saved tensors (or checkpoints) and the LM head (the vocabulary-sized
                       logits of the HF loss, or the fused head's logits tile)
  backward (loss)      the start of backward: the loss gradients (fused head: its fp32 gradient accumulators)
  backward (top layer) the last layer's backward: all checkpoints, that layer recomputed with its working set
  backward (layers)    the first layer's backward: (nearly) all gradients, one layer's activations and scratch
  backward (end)       tied embeddings, full fine-tuning: the shared matrix's two gradient contributions
  optimizer step       gradients, states and the optimizer's scratch
"""

from __future__ import annotations

from . import terms as t
from .grad_accum import with_accumulation
from .lora_targets import lora_target_text
from .model import ModelSpec
from .option_terms import option_trainable
from .params import count_params
from .result import FUSED_BACKWARD, FUSED_FORWARD, FUSED_SAVED, LOGITS_BACKWARD, LOGITS_FORWARD, Estimate, phase_total
from .setup import Setup
from .stacks import apply_stack


def _term(name: str, category: str, nbytes: float, note: str) -> t.TermValue:
    return t.TermValue(name, category, int(nbytes), note)


def is_single_gpu_sft(setup: Setup) -> bool:
    return (
        setup.train == "sft"
        and setup.parallel == "none"
        and setup.world_size == 1
        and not setup.offload_optimizer
        and not setup.offload_params
        and setup.ref_model == "auto"
    )


def estimate_sft(model: ModelSpec, setup: Setup) -> Estimate:
    """Price one single-GPU SFT step of `setup` (already `normalised`) on `model`: the peak over its phases."""
    m = model
    paged = setup.optimizer == "paged_adamw8bit"
    weights = [_term("base weights", "parameters", t.base_weights(m, setup), _weights_note(setup))]
    if setup.adaptation != "full":
        weights.append(_term("LoRA adapters", "parameters", t.adapter_weights(m, setup), f"A and B in fp32, on {lora_target_text(m, setup)}"))
    states = t.optimizer_states(m, setup)
    steady = list(weights)
    if not paged:
        steady.append(_term("optimizer states", "optimizer", states, setup.optimizer))
    head_copy = _optional("output head copy", "activations", t.head_weight_copy(m, setup), "compute-dtype copy of the fp32 head, kept for backward")
    casts = _optional("autocast weight copies", "temporaries", t.autocast_weight_copies(m, setup), "bf16/fp16 copies of fp32 weights") + head_copy
    casts_bwd = (
        _optional("autocast weight copies", "temporaries", t.autocast_copies_in_backward(m, setup), "copies the backward still needs") + head_copy
    )
    acts = _term("saved activations", "activations", t.stack_activations(m, setup), _acts_note(m, setup))
    grads = _term("gradients", "gradients", t.gradients(m, setup), "one per trainable parameter")
    dequant = _optional("4-bit dequantisation buffer", "temporaries", t.dequant_scratch(m, setup), "largest weight, compute dtype")

    full_untied = setup.adaptation == "full" and not m.tie_embeddings
    layer_casts = _optional(
        "autocast weight copies", "temporaries", t.autocast_copies_in_layers(m, setup), "compute-dtype weight copies the layers' backward needs"
    )
    merged_grad = _optional(
        "merged expert weight gradient",
        "temporaries",
        t.merged_weight_gradient(m, setup),
        "LoRA on fused experts: the gradient of one layer's merged expert weights",
    )
    grad_buffers = _term("hidden-state gradients", "temporaries", t.backward_grad_buffers(m, setup), "flowing between layers")
    phases = {
        "forward": steady + casts + [acts] + _head_forward(m, setup),
        "backward (loss)": steady + casts_bwd + [acts] + _head_backward(m, setup),
        "backward (top layer)": steady
        + layer_casts
        + [
            _term("saved activations", "activations", _top_layer(m, setup), "all layers' checkpoints or saved tensors, the top layer rebuilt"),
            grad_buffers,
            *merged_grad,
            _term("gradients", "gradients", t.head_gradients(m, setup), "output head and final norm"),
        ],
        "backward (layers)": steady
        + dequant
        + (layer_casts if setup.checkpointing else [])
        + [
            _term("layer activations", "activations", _bottom_layer(m, setup), "checkpoints and the layer being differentiated"),
            _term("layer backward scratch", "temporaries", t.layer_backward_scratch(m, setup), "MLP gradients"),
            *merged_grad,
            _term(
                "gradients",
                "gradients",
                t.gradients(m, setup) - t.embedding_gradient(m, setup) - t.layer_gradients(m, setup),
                "all but the first layer's (being computed)" + (" and the input embedding's" if full_untied else ""),
            ),
        ],
        "optimizer step": steady
        + [grads]
        + _optional("optimizer scratch", "temporaries", t.optimizer_step_temporaries(m, setup), "per-parameter update copies"),
    }
    if setup.adaptation == "full" and m.tie_embeddings:
        phases["backward (end)"] = steady + [
            grads,
            _term(
                "embedding gradient",
                "temporaries",
                t.tied_embedding_transient(m, setup),
                "the embedding's V x h gradient and its sum with the tied head's",
            ),
        ]
        phases["optimizer step"] = phases.pop("optimizer step")
    phases = with_accumulation(phases, setup.grad_accum)  # micro-steps 2+ hold the gradients (grad_accum.py)
    peak = max(phases, key=lambda name: phase_total(phases[name]))
    return apply_stack(
        Estimate(  # stack- and version-dependent terms: estimators/stack_terms.py
            model=m,
            setup=setup,
            params=count_params(m),
            trainable=t.trainable_params(m, setup) + option_trainable(m, setup),  # what peft reports trainable
            phases={k: tuple(v) for k, v in phases.items()},
            peak_phase=peak,
            paged_bytes=states if paged else 0,
            warnings=tuple(_warnings(m, setup)),
        )
    )


def _head_forward(m: ModelSpec, setup: Setup) -> list[t.TermValue]:
    """The LM head and the loss at the end of the forward: the B x S x V logits of the HF loss, or TRL's fused head
    (what it saves for backward and its working set)."""
    if not t.fused_head(setup):
        return [_term(LOGITS_FORWARD, "activations", t.logits_forward(m, setup), "B x S x V, fp32 upcast")]
    return [
        _term(FUSED_SAVED, "activations", t.fused_head_saved(m, setup), "compact hidden states, targets, fp32 log-normaliser and entropy"),
        _term(FUSED_FORWARD, "activations", t.fused_head_forward(m, setup), "last hidden state, [4096 x 32768] logits tile, fp32 statistics"),
    ]


def _head_backward(m: ModelSpec, setup: Setup) -> list[t.TermValue]:
    """The head's backward: the loss gradients over B x S x V, or the fused head's fp32 gradient accumulators."""
    if not t.fused_head(setup):
        return [_term(LOGITS_BACKWARD, "temporaries", t.logits_backward(m, setup), "three fp32 B x S x V tensors")]
    what = "fp32 hidden-state" + (" and head-weight" if setup.adaptation == "full" else "") + " gradients, their casts, the logits tile"
    return [
        _term(FUSED_SAVED, "activations", t.fused_head_saved(m, setup), "compact hidden states, targets, fp32 log-normaliser and entropy"),
        _term(FUSED_BACKWARD, "temporaries", t.fused_head_backward(m, setup), what),
    ]


def _optional(name: str, category: str, nbytes: int, note: str) -> list[t.TermValue]:
    return [_term(name, category, nbytes, note)] if nbytes else []


def _bottom_layer(m: ModelSpec, setup: Setup) -> int:
    """Activations alive while differentiating the first layer: its own saved tensors (recomputed under
    checkpointing, where only its checkpoint input remains besides, with its forward working set) and the
    embedding output."""
    extra = t.checkpoint_saved(m, setup) + (t.layer_forward_transient(m, setup) if setup.checkpointing else 0)
    return t.layer_saved(m, setup) + extra + t.embedding_norm_saved(m, setup)


def _top_layer(m: ModelSpec, setup: Setup) -> int:
    """Activations alive when backward reaches the last decoder layer (the final norm's are freed): with
    checkpointing every layer's input plus the last layer rebuilt with its forward working set; without, every
    layer's saved tensors."""
    if setup.checkpointing:
        return m.num_layers * t.checkpoint_saved(m, setup) + t.recompute_layer(m, setup) + t.eager_mask(m, setup) + t.embedding_norm_saved(m, setup)
    if m.encoder:  # its one outside norm is at the bottom: alive until backward ends (terms.embedding_norm_saved)
        return t.stack_activations(m, setup)
    return t.stack_activations(m, setup) - t.norm_saved(m, setup, 1) * setup.tokens


def _weights_note(setup: Setup) -> str:
    if setup.adaptation == "qlora":
        dq = "+double quant" if setup.double_quant else ""
        upcast = "other weights fp32" if setup.kbit_upcast else "other weights in compute dtype"
        return f"{setup.quant_type}{dq} linears, {upcast}"
    return "fp32 master weights" if t.weight_bytes_per_param(setup) == 4 else f"{setup.precision} weights"


def _acts_note(m: ModelSpec, setup: Setup) -> str:
    mode = "checkpointed (layer inputs)" if setup.checkpointing else "all layers"
    compiled = ", as torch.compile saves them" if t.compile_priced(m, setup) and not setup.checkpointing else ""
    return f"{mode}, {setup.attention} attention{compiled}"


def _warnings(m: ModelSpec, setup: Setup) -> list[str]:
    out = []
    if setup.seq_len > m.max_positions:
        out.append(f"sequence length {setup.seq_len} exceeds {m.name}'s {m.max_positions} positions")
    if setup.adaptation != "full" and not t.lora_linears(m, setup):
        out.append(f"LoRA targets '{setup.lora_targets}' match no linear layer of {m.name}")
    if m.attn_softcap and setup.attention == "sdpa":
        out.append(
            f"{m.name} uses attention soft-capping, which sdpa cannot do: transformers runs eager attention "
            "(priced so; --attention flash keeps no S x S scores)"
        )
    wrapped = [lin.name for lin in t.wrapped_parameters(m, setup)]
    if wrapped:
        out.append(
            f"LoRA also adapts {m.name}'s {', '.join(wrapped)} (peft lora.ParamWrapper on transformers 5's fused "
            "parameters): every forward builds a merged copy of each layer's experts, and dropout is off "
            "(lora_dropout 0); --lora-targets attention leaves them frozen"
        )
    if setup.torch_compile and not t.compile_priced(m, setup):
        out.append(
            f"torch.compile is priced as eager for this set-up ({m.name}, {setup.adaptation}, {setup.precision}): its "
            "saved set was measured on Llama-style layers with full fine-tuning or LoRA in bf16/fp16 only, so "
            "the layer activations are an over-estimate"
        )
    from .checks import setup_warnings  # QLoRA that costs more than LoRA (estimators/checks.py)

    out += setup_warnings(m, setup)
    return out
