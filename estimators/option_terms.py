"""Options users add to a run, priced on top of the SFT phases: DoRA, peft's modules_to_save, activation
offloading (the generated scripts run these three where TRL has them) and torchtune's optimizer step inside backward (GaLore's
pricers are in estimators/galore_terms.py). Rows of rules/stacks.toml ([[behaviour]] with `option = "<Setup field>"`), each mapped
to its pricer by PRICES at the end; applied by estimators/stack_terms.apply like the stack terms.
Each function's docstring gives the library source it was read from; tests/test_stack_options.py checks each by hand
and against `advisor measure` traces (estimators/calibration/traces.jsonl).
"""

from __future__ import annotations

from . import terms as t
from .adapter_prompt_terms import llama_adapter
from .galore_terms import galore, galore_layerwise, one_gradient_at_a_time
from .model import ModelSpec
from .params import embedding_modules, encoder_head_params
from .setup import Setup, save_module_names
from .stack_change import Change


def option_trainable(m: ModelSpec, setup: Setup) -> int:
    """Parameters the options add to what trains, as peft's print_trainable_parameters counts them: DoRA's
    magnitude vectors and modules_to_save's full copies (0 for full fine-tuning, where everything trains)."""
    if setup.adaptation == "full":
        return 0
    return (dora_magnitude_params(m, setup) if setup.dora else 0) + sum(saved_module_params(m, setup).values())


# ------------------------------------------------------------------------------------------------ DoRA
def dora_linears(m: ModelSpec, setup: Setup):
    """The nn.Linear layers peft gives a DoRA magnitude vector (raw MoE parameters take no DoRA)."""
    return [lin for lin in t.lora_linears(m, setup) if not t.wrapped_parameter(lin)]


def dora_magnitude_params(m: ModelSpec, setup: Setup) -> int:
    """One trained magnitude per output feature of every DoRA layer (`lora_magnitude_vector`, fp32 like the
    adapters: `self.weight = nn.Parameter(weight_norm, requires_grad=True)`, peft 0.21 tuners/lora/dora.py:130)."""
    return m.num_layers * sum(lin.out_features * lin.count for lin in dora_linears(m, setup))


def dora_x_bytes(m: ModelSpec, setup: Setup, lin) -> int:
    """dtype of x inside DoraLinearLayer.forward: lora.Linear casts x to the adapter's fp32 first
    (`x = self._cast_input_dtype(x, lora_A.weight.dtype)`); QLoRA under autocast keeps x's own dtype."""
    if t.bnb_lora_skips_cast(setup):
        return t.lora_input(m, setup, lin)[1]
    return 4


def dora_weight_bytes(setup: Setup) -> int:
    """dtype of the frozen weight DoraLinearLayer casts to x's dtype (`dequantize_module_weight`, dora.py:137): QLoRA's
    dequantised compute-dtype copy, else the stored weight."""
    return t.activation_bytes(setup) if setup.adaptation == "qlora" else t.weight_bytes_per_param(setup)


def dora_saved_per_token(m: ModelSpec, setup: Setup) -> int:
    """What DoRA keeps for backward per decoder layer beyond LoRA, per token (peft 0.21 dora.py:155-165):
    `(mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling` keeps the base output and the
    separate LoRA output (T x out each, compute dtype) for the magnitude's gradient."""
    a = t.activation_bytes(setup)
    return sum(2 * a * lin.out_features * lin.count for lin in dora_linears(m, setup))


def dora_weight_copies(m: ModelSpec, setup: Setup, upto: int | None = None) -> int:
    """With lora_dropout > 0 the base matmul runs again on dropout(x) (variants.py: `base_result = None`, then
    dora.py:163 `F.linear(x, transpose(weight, ...))`) and autocast's compute-dtype copy of the frozen weight
    (out x in) is kept for the input gradient: per DoRA linear of the layer (the first `upto` of them)."""
    if setup.lora_dropout <= 0:
        return 0
    a = t.activation_bytes(setup)
    return sum(a * lin.in_features * lin.out_features * lin.count for lin in dora_linears(m, setup)[:upto])


def _dora_transient_one(m: ModelSpec, setup: Setup, lin) -> int:
    a = t.activation_bytes(setup)
    x = dora_x_bytes(m, setup, lin)
    w = lin.in_features * lin.out_features
    dequant = a * w if setup.adaptation == "qlora" else 0
    base_cast = x * w if dora_weight_bytes(setup) != x else 0
    lora_weight = x * w  # `lora_weight.to(x.dtype)` (the compute-dtype product itself when x is that dtype)
    norm_terms = 2 * x * w  # scaling * lora_weight, and weight + that
    eye = a * lin.in_features**2 if t.uses_autocast(setup) else 0
    return dequant + base_cast + lora_weight + norm_terms + eye


def dora_forward_transient(m: ModelSpec, setup: Setup) -> int:
    """The working set of one DoRA layer's forward (or recomputation) at its largest linear, beyond what the layer
    saves, plus (with dropout) the weight copies its earlier DoRA linears already keep. DoraLinearLayer.forward
    builds the full-rank update `lora_B(lora_A(torch.eye(in)))` (autocast keeps the compute-dtype copy of the in x in
    identity for lora_A's weight gradient while the result is alive), casts it and the frozen weight to x's dtype,
    and `get_weight_norm` forms `weight + scaling * lora_weight` (two more out x in tensors) for its row norms; QLoRA
    first dequantises the 4-bit weight (compute dtype). Read in peft 0.21 tuners/lora/dora.py:86-153. Checked against
    `advisor measure --dora` (7B, down_proj: 4 x 172 MiB fp32 matrices and the 231 MiB bf16 identity copy)."""
    lins = dora_linears(m, setup)
    return max((_dora_transient_one(m, setup, lin) + dora_weight_copies(m, setup, i) for i, lin in enumerate(lins)), default=0)


def dora_layer_extra(m: ModelSpec, setup: Setup) -> int:
    """How much higher one layer's activations peak under DoRA while it runs (or is recomputed) than the LoRA layer
    priced in terms.py (its saved tensors plus the LoRA branch's working set, terms.layer_forward_transient). The
    candidate moments: each DoRA linear's weight-norm working set (dora_forward_transient's parts), on top of what the
    layer has saved so far (an attention linear runs before the MLP saves anything), the LoRA branch's own working
    set (peft's fp32 cast of x and the dropout output are alive meanwhile), the earlier linears' DoRA outputs and
    weight copies and its own base output; and the end of the layer, with every DoRA output and weight copy."""
    a, tokens = t.activation_bytes(setup), setup.tokens
    old = t.layer_forward_transient(m, setup)
    saved = t.layer_saved(m, setup)
    mlp_part = (t.mlp_saved(m, setup) + t.norm_saved(m, setup, 0)) * tokens
    lins = dora_linears(m, setup)
    best = saved + dora_saved_per_token(m, setup) * tokens + dora_weight_copies(m, setup)
    done = 0  # DoRA outputs (base and LoRA, per token) of the linears already run
    for i, lin in enumerate(lins):
        before = saved - (mlp_part if lin.group == "attention" else 0)
        moment = before + old + _dora_transient_one(m, setup, lin) + dora_weight_copies(m, setup, i) + (done + a * lin.out_features) * tokens
        best = max(best, moment)
        done += 2 * a * lin.out_features * lin.count
    return max(0, best - saved - old)


def dora(m: ModelSpec, setup: Setup) -> list:
    """peft's DoRA (`LoraConfig(use_dora=True)`): magnitude vectors (fp32, trained: gradients and AdamW states),
    the extra saved tensors of every adapted layer (all layers without checkpointing, the recomputed one with it)
    and the weight-norm working set of the layer being run (dora_forward_transient).
    NB without checkpointing the working set is priced in the forward phase (at the last layer, whose own saved
    tensors are not complete yet), an approximation of the op order."""
    if setup.adaptation == "full":
        return []
    mag = dora_magnitude_params(m, setup)
    states = 2 * mag * 4 if setup.optimizer == "adamw" else t.optimizer_states(m, setup) * mag // max(1, t.trainable_params(m, setup))
    extra = dora_layer_extra(m, setup)
    out = [
        Change("delta", "LoRA adapters", mag * 4, "A and B in fp32, DoRA magnitude vectors"),
        Change("delta", "optimizer states", states, "incl. the DoRA magnitudes'"),
        Change("delta", "gradients", mag * 4, "incl. the DoRA magnitudes'", phases=("optimizer step",)),
        Change(
            "delta", "layer activations", extra, "DoRA: base and LoRA outputs, weight copies / weight-norm working set", phases=("backward (layers)",)
        ),
    ]
    if setup.checkpointing:
        out.append(
            Change(
                "delta",
                "saved activations",
                extra,
                "DoRA: the recomputed layer's outputs and weight-norm working set",
                phases=("backward (top layer)",),
            )
        )
        return out
    kept = dora_saved_per_token(m, setup) * setup.tokens + dora_weight_copies(m, setup)  # per layer, all layers keep it
    tail = max(0, dora_forward_transient(m, setup) - t.layer_saved(m, setup) - kept)
    out += [
        Change("delta", "saved activations", m.num_layers * kept + tail, "DoRA: every layer's outputs (and weight copies)", phases=("forward",)),
        Change(
            "delta",
            "saved activations",
            m.num_layers * kept,
            "DoRA: every layer's outputs (and weight copies)",
            phases=("backward (loss)", "backward (top layer)"),
        ),
    ]
    return out


# ------------------------------------------------------------------------------------------------ modules_to_save
def saved_module_params(m: ModelSpec, setup: Setup) -> dict[str, int]:
    """Parameters of each module `modules_to_save` copies, by role: the input embedding and the output head (V x h
    each, Phi's head bias too). A tied head is copied like any module: peft 0.21 deep-copies each named module and
    re-ties only trainable tokens (utils/other.py; ensure_weight_tying is off by default), so both copies are trained
    (tests/test_lora_presets_families.py counts them on meta-device models)."""
    names = save_module_names(setup)
    table = m.vocab_size * m.hidden_size
    out = {}
    if "embed_tokens" in names:
        out["embed_tokens"] = table
    if "lm_head" in names:
        out["lm_head"] = _classifier_params(m) if m.encoder else table + (m.vocab_size if m.lm_head_bias else 0)
    return out


def _classifier_params(m: ModelSpec) -> int:
    """An encoder's `classifier`, the module the head role names (params.LINEAR_NAMES): BERT's Linear(h, num_labels)
    (its pooler is a module of its own), RoBERTa's RobertaClassificationHead (dense and out_proj: the whole head)."""
    labels = m.hidden_size * m.num_labels + m.num_labels
    return encoder_head_params(m) if m.model_type == "roberta" else labels


def modules_to_save(m: ModelSpec, setup: Setup) -> list:
    """peft's ModulesToSaveWrapper keeps the frozen original and trains a full copy (`copy.deepcopy` of the module,
    same dtype: the fp32 upcast is for adapter layers only). So per copied module: its weights once more, a
    gradient, and AdamW states in its dtype (peft 0.21 utils/other.py ModulesToSaveWrapper.update). The copy's
    gradient exists from its backward on: the head's right after the loss, the embedding's at the very end.
    A trained head also makes its backward compute a V x h weight gradient (an fp32 accumulator and its cast in
    TRL's fused head, a compute-dtype one in the HF loss)."""
    if setup.adaptation == "full":
        return []
    params = saved_module_params(m, setup)
    if not params:
        return []
    wb = t.head_weight_bytes(setup) if setup.adaptation == "qlora" else t.weight_bytes_per_param(setup)
    total = sum(params.values())
    states = 2 * total * wb if setup.optimizer == "adamw" else t.optimizer_states(m, setup) * total // max(1, t.trainable_params(m, setup))
    head = params.get("lm_head", 0)
    shown = ", ".join(embedding_modules(m)[role] for role in params)  # as the family names them (GPT-NeoX: embed_in)
    out = [
        Change("add", "modules_to_save copies", total * wb, f"trained copies of {shown}", category="parameters"),
        Change("delta", "optimizer states", states, f"incl. {shown} copies"),
        Change("delta", "gradients", total * wb, f"incl. {shown} copies", phases=("optimizer step",)),
    ]
    if head:
        out += [Change("delta", "gradients", head * wb, "incl. the lm_head copy's", phases=("backward (top layer)", "backward (layers)"))]
        if t.fused_head(setup):
            out.append(
                Change(
                    "delta",
                    "fused head: backward",
                    head * (4 + (wb if wb != 4 else 0)),
                    "fp32 weight-gradient accumulator of the trained head copy and its cast",
                    phases=("backward (loss)",),
                )
            )
        else:
            out.append(
                Change(
                    "add", "head weight gradient", head * setup.compute_bytes, "the trained head copy's V x h gradient", phases=("backward (loss)",)
                )
            )
    return out


# ------------------------------------------------------------------------------------------------ offloading, optimizer in backward
def act_offload(m: ModelSpec, setup: Setup) -> list:
    """Activation offloading (torchtune's OffloadActivations, which TRL's `activation_offloading=True` ports):
    a saved-tensors hook moves every tensor the forward saves (>= 1 KiB, not a parameter) to pinned host RAM and
    brings it back when backward needs it; the LM head is exempt (NoOpManager), and recomputation in backward runs
    outside the hook. On the GPU stay the layer in flight and, with CUDA streams, the one being prefetched: two
    layers' saved tensors (their checkpoints under checkpointing) instead of all of them. Read in trl 1.16
    models/activation_offloading.py:200-240 (pack_tensor) and :640-700 (the head exemption)."""
    per = t.checkpoint_saved(m, setup) if setup.checkpointing else t.layer_saved(m, setup)
    if m.num_layers <= 2:
        return []
    offloaded = (m.num_layers - 2) * per
    phases = ("forward", "backward (loss)", "backward (top layer)")
    return [
        Change("delta", "saved activations", -offloaded, "two layers' saved tensors on the GPU, the rest in host RAM", phases=phases),
        Change("host", "", offloaded, ""),
    ]


def optim_in_bwd(m: ModelSpec, setup: Setup) -> list:
    """The optimizer step inside backward (torchtune `optimizer_in_bwd: True`): a post-accumulate-grad hook steps
    each parameter and frees its gradient at once (`register_optim_in_bwd_hooks`), so
    at most one parameter's gradient exists; there is no separate optimizer step with every gradient alive.
    Read in torchtune 0.6.1 torchtune/training/memory.py:197-240 (create_optim_in_bwd_wrapper, register_optim_in_bwd_hooks);
    recipes/full_finetune_single_device.py:153 refuses gradient accumulation with it."""
    return [one_gradient_at_a_time(m, setup)]


PRICES = {
    "dora": dora,
    "modules-to-save": modules_to_save,
    "act-offload": act_offload,
    "optim-in-bwd": optim_in_bwd,
    "galore": galore,
    "galore-layerwise": galore_layerwise,
    "llama-adapter": llama_adapter,
}
