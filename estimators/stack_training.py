"""Stack- and version-dependent terms of the training state: LoRA adapters stored in the weights' dtype, the
foreach AdamW step's scratch, Unsloth's checkpoints offloaded to host RAM. Rows of rules/stacks.toml [[behaviour]],
applied by estimators/stack_terms.apply.
"""

from __future__ import annotations

from . import terms as t
from .galore_terms import largest_trainable
from .kind_models import TRAINED_SEQUENCES
from .layouts import layout
from .model import ModelSpec
from .setup import Setup
from .stack_change import Change
from .versions import in_range, version_of

HF_STACKS = ("trl", "hf-trainer", "axolotl", "llama-factory", "unsloth")  # the loop is transformers.Trainer
# unsloth_zoo 2026.10.9 gradient_checkpointing.py:1305-1313: GPU_BUFFERS and (double buffering) GPU_BUFFERS_B,
# one staging buffer each for the checkpoint being brought back from host RAM.
UNSLOTH_GPU_STAGING = 2
UNSLOTH_MIN_OFFLOAD = 2 * (1 << 20)  # gradient_checkpointing.py:1326 `MINIMUM_SIZE = 2 * 1024 * 1024` bytes


def _adapter_scale(m: ModelSpec, setup: Setup, why: str) -> list[Change]:
    """LoRA A/B stored in the base weights' dtype instead of fp32: the adapters, their gradients and their AdamW /
    momentum states shrink by that ratio (8-bit, Lion 32-bit and Adafactor states do not depend on it).
    NB: activations unchanged while lora_dropout > 0 (the dropout output is kept in the compute dtype either way)."""
    if setup.adaptation != "lora":
        return []
    wb = t.weight_bytes_per_param(setup)
    if wb == 4:
        return []
    adapters = t.adapter_weights(m, setup)
    saved = adapters - adapters * wb // 4
    out = [Change("delta", "LoRA adapters", -saved, f"A and B in {setup.precision} ({why})")]
    for phase in ("optimizer step", "backward (end)"):
        out.append(Change("delta", "gradients", -saved, f"adapter gradients in {setup.precision} ({why})", phases=(phase,)))
    if setup.optimizer in ("adamw", "sgd_momentum"):
        states = t.optimizer_states(m, setup)
        out.append(Change("delta", "optimizer states", -(states - states * wb // 4), f"{setup.optimizer} states in {setup.precision} ({why})"))
    return out


def peft_adapter_base_dtype(m: ModelSpec, setup: Setup) -> list[Change]:
    """peft < 0.12 (no `autocast_adapter_dtype`): update_layer moves the new adapter to the base layer's device and
    dtype, `self.to(weight.device, dtype=weight.dtype)` for a floating-point base weight, so LoRA over a bf16/fp16 base
    is bf16/fp16 (QLoRA's uint8 weight is not floating point: its adapters stay fp32). peft 0.12.0 added
    `_cast_adapter_dtype` (tuners_utils.py:316), which upcasts them to fp32 by default.
    Read in peft 0.11.1 tuners/lora/layer.py:128-129."""
    return _adapter_scale(m, setup, "peft < 0.12")


def native_adapter_dtype(m: ModelSpec, setup: Setup) -> list[Change]:
    """torchtune and LitGPT build their own LoRA layers inside the model's dtype: torchtune instantiates the model
    under `training.set_default_dtype(self._dtype)` (recipes/lora_finetune_single_device.py:431, dtype bf16 in its
    configs), LitGPT's bf16-true precision converts every parameter. So the adapters, their gradients and AdamW states
    are in the weights' dtype (fp32 only under -mixed or fp32). Read in torchtune 0.6.1 and litgpt 0.5.13 lora.py:171."""
    return _adapter_scale(m, setup, f"{setup.stack}'s own LoRA layers")


def foreach_adamw(m: ModelSpec, setup: Setup) -> list[Change]:
    """The HF Trainer's default optimizer before transformers 5 is `adamw_torch`: torch.optim.AdamW, which runs its
    foreach implementation on CUDA and builds `exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs)`, one state-sized
    tensor for every parameter at once (terms.foreach_adamw_scratch). transformers 5 defaults to `adamw_torch_fused`
    with torch >= 2.8 (no scratch). Read in transformers 4.52.4 training_args.py:1273 (`default_optim =
    "adamw_torch"`) and 5.24.0 training_args.py:806-811. LitGPT passes its optimizer name to torch.optim
    (litgpt/utils.py:646, foreach too); torchtune's configs set `fused: True`."""
    if setup.optimizer != "adamw":
        return []
    scratch = t.foreach_adamw_scratch(m, setup) * trainable_bytes(setup) // t.trainable_bytes_per_param(setup)
    return [Change("add", "foreach AdamW scratch", scratch, "torch._foreach_sqrt(exp_avg_sqs): one state-sized copy", phases=("optimizer step",))]


def adamw_hf_loop(m: ModelSpec, setup: Setup) -> list[Change]:
    """The HF Trainer's default optimizer before transformers 4.32 is `adamw_hf`, transformers.optimization.AdamW:
    a Python loop over the parameters whose step builds `denom = exp_avg_sq.sqrt().add_(eps)`, one state-sized
    tensor of the parameter being updated; the largest (the token embedding for full fine-tuning) is the step's
    scratch. Read in transformers 4.18.0 optimization.py:335-369 and 4.31.0 training_args.py:1026."""
    if setup.optimizer != "adamw":
        return []
    scratch = largest_trainable(m, setup) * trainable_bytes(setup)
    return [Change("add", "transformers AdamW scratch", scratch, "`denom` of the largest parameter, one at a time", phases=("optimizer step",))]


def adapters_in_weight_dtype(setup: Setup) -> bool:
    """Whether LoRA A/B are stored in the base weights' dtype (peft < 0.12 on the HF stacks, torchtune, LitGPT)."""
    if setup.adaptation != "lora":
        return False
    if setup.stack in ("torchtune", "litgpt"):
        return True
    peft = version_of(setup.versions, "peft")
    return setup.stack in HF_STACKS and bool(peft) and in_range(peft, "<0.12")


def trainable_bytes(setup: Setup) -> int:
    """Bytes per trainable parameter (and per AdamW state) on this stack."""
    return t.weight_bytes_per_param(setup) if adapters_in_weight_dtype(setup) else t.trainable_bytes_per_param(setup)


def old_torch_foreach(m: ModelSpec, setup: Setup) -> list[Change]:
    """torch < 2.8 under transformers 5: TrainingArguments keeps `adamw_torch` (the fused default needs
    `is_torch_greater_or_equal_than_2_8`, transformers 5.24.0 training_args.py:808-811): the foreach scratch."""
    if version_of(setup.versions, "transformers") and in_range(version_of(setup.versions, "transformers"), "<5"):
        return []  # foreach_adamw prices it already
    return foreach_adamw(m, setup)


# ------------------------------------------------------------------------------------------------ checkpointing
def unsloth_offloaded_checkpoints(m: ModelSpec, setup: Setup) -> list[Change]:
    """Unsloth's gradient checkpointing (`use_gradient_checkpointing="unsloth"`, what its notebooks set):
    UnslothCheckpointFunction copies each decoder layer's input to pinned host RAM in the forward (all but the last
    layer, `CURRENT_GC_INDEX != LAST_GC_INDEX`; inputs over MINIMUM_SIZE = 2 MiB) and brings one back into a GPU
    staging buffer (two with double buffering) per layer in the backward. On the GPU: the last layer's checkpoint and
    the staging buffers instead of every layer's checkpoint; the rest moves to host RAM.
    Read in unsloth_zoo 2026.10.9 gradient_checkpointing.py:1337-1400 and :1305-1326."""
    if not setup.checkpointing:
        return []
    ckpt = t.checkpoint_saved(m, setup)  # one layer's input, whole micro-batch
    if ckpt <= UNSLOTH_MIN_OFFLOAD or m.num_layers < 2:
        return []
    offloaded = (m.num_layers - 1) * ckpt
    staging = UNSLOTH_GPU_STAGING * m.hidden_size * setup.tokens * 2  # GPU_BUFFER_DTYPE: bf16 (fp16 without bf16)
    delta = staging - offloaded
    note = "checkpoints in host RAM but the last layer's, two GPU staging buffers"
    return [
        Change("delta", "saved activations", delta, note, phases=("forward", "backward (loss)", "backward (top layer)")),
        Change("host", "", offloaded, ""),
    ]


def fsdp_frozen_unit_held_checkpoints(m: ModelSpec, setup: Setup) -> list[Change]:
    """LoRA/QLoRA under FSDP on transformers < 4.52: the model checkpoints each decoder layer from outside its FSDP
    unit (`self._gradient_checkpointing_func(decoder_layer.__call__, ...)`, modeling_llama.py:577 in 4.48.1),
    reentrant by default (modeling_utils.py:2539). The unit's flat parameter is frozen (peft's fsdp_auto_wrap_policy
    puts the adapters in units of their own), so FSDP reshards it with `_register_post_backward_reshard_only_hook`
    (torch fsdp/_runtime_utils.py), a multi-grad hook on the unit's inputs: under reentrant checkpointing those are
    the recompute's detached inputs, which share storage with the layer's checkpoint and carry the gradient of the
    layer's input. The hook's handle (and through its grad_fns the tensors) lives until `_finalize_params` at the end
    of the backward. So at the first layer's backward every other layer's checkpoint and input gradient are still
    held: 2 x (L - 1) layer inputs, one of which (layer 1's input gradient) is the gradient reaching layer 0, alive
    anyway: 2L - 3 more than the single-GPU phase holds. transformers 4.52 (GradientCheckpointingLayer,
    modeling_layers.py:45) checkpoints inside the unit, and full fine-tuning's trainable flat parameters take the
    ordinary post-backward hook: nothing is held there.
    Measured on CPU with 2 gloo ranks: transformers 4.48.1's Trainer with accelerate's FSDP, and
    bench/fsdp_retention.py (bench/results/fsdp_retention.txt: 2 x (L - 1) inputs held, 2L - 3 of them above the other
    variants' live bytes). Priced for the kinds whose trained model runs one batch per micro-step (SFT; DPO and reward
    modelling on chosen + rejected); PPO and GRPO alternate generation and training (not priced here)."""
    sequences = TRAINED_SEQUENCES.get(setup.train, 0) * setup.micro_batch  # PPO/GRPO: none
    if not sequences or not setup.checkpointing or setup.adaptation == "full" or layout(setup).engine != "fsdp" or m.num_layers < 2:
        return []
    held = (2 * m.num_layers - 3) * t.checkpoint_saved(m, setup.with_(micro_batch=sequences))
    return [
        Change(
            "add",
            "checkpoints held by FSDP",
            held,
            "every other layer's checkpoint and input gradient, held by FSDP's reshard hook until the backward ends",
            phases=("backward (layers)",),
            category="activations",
        )
    ]
