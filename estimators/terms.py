"""One small function per memory term, each on plain numbers.

Every function returns bytes and says in its docstring what it models and what it ignores. Conventions:
  T  = tokens in the micro-batch (batch x sequence length), S = sequence length
  r  = bytes of the residual stream (2 for bf16/fp16 weights, 4 when the embeddings are fp32: mixed precision,
       fp32, or QLoRA after `prepare_model_for_kbit_training` upcasts them)
  a  = bytes of matmul activations (2 under bf16/fp16 autocast, 4 in fp32)
The model is what Hugging Face transformers 5.x + peft 0.21 + bitsandbytes 0.50 allocate for a decoder layer,
read from their forward code; `advisor measure` checks it against traces.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dtypes import OPT8_BLOCK, four_bit_bytes_per_param
from .model import ModelSpec
from .params import Linear, count_params, layer_linears
from .setup import Setup, lora_target_names

# Families whose RMSNorm computes in fp32 and multiplies by an fp32 weight before casting back (Gemma's
# `x * (1 + w)`, OLMo 2), so both the fp32 input and the fp32 normalised tensor are saved for backward.
FP32_WEIGHT_NORMS = {"gemma", "gemma2", "gemma3", "gemma3_text", "olmo2"}


# ---------------------------------------------------------------------------------------------- dtypes
def residual_bytes(setup: Setup) -> int:
    if setup.precision == "fp32" or setup.mixed:
        return 4
    if setup.method == "qlora" and setup.kbit_upcast:
        return 4  # fp32 embeddings after the k-bit preparation make the whole residual stream fp32
    return 2


def activation_bytes(setup: Setup) -> int:
    return setup.compute_bytes


def weight_bytes_per_param(setup: Setup) -> int:
    """Storage of a non-quantised weight: fp32 for mixed precision (master weights) and fp32 runs."""
    return 4 if setup.precision == "fp32" or setup.mixed else 2


# ---------------------------------------------------------------------------------------------- LoRA shapes
def lora_linears(m: ModelSpec, setup: Setup) -> list[Linear]:
    """The linear layers LoRA wraps in one decoder layer.

    NB: peft's "all-linear" skips the output head; routers and experts stored as fused 3-D parameters
    (transformers 5 MoE blocks) are not nn.Linear, so LoRA cannot wrap them.
    """
    if setup.method == "full":
        return []
    names = lora_target_names(setup)
    wrapped = []
    for lin in layer_linears(m):
        if lin.group == "router" or (lin.group == "expert" and getattr(m, "experts_fused", False)):
            continue
        if not names or lin.name in names:
            wrapped.append(lin)
    return wrapped


def lora_params(m: ModelSpec, setup: Setup) -> int:
    """A (r x in) and B (out x r) per wrapped layer, all layers."""
    per_layer = sum(setup.lora_r * (x.in_features + x.out_features) * x.count for x in lora_linears(m, setup))
    return per_layer * m.num_layers


def trainable_params(m: ModelSpec, setup: Setup) -> int:
    return count_params(m).total if setup.method == "full" else lora_params(m, setup)


# ---------------------------------------------------------------------------------------------- static terms
def base_weights(m: ModelSpec, setup: Setup) -> int:
    """The model's own weights on the GPU.

    full / LoRA: every parameter at its storage dtype. QLoRA: decoder linear weights in 4 bits with their
    quantisation constants; embeddings, head, norms and biases stay unquantised, upcast to fp32 by
    `prepare_model_for_kbit_training` (peft) when the script calls it, else in the compute dtype.
    NB: ignores buffers (rotary inv_freq: a few KiB).
    """
    pc = count_params(m)
    if setup.method != "qlora":
        return pc.total * weight_bytes_per_param(setup)
    quantized = pc.linear * four_bit_bytes_per_param(setup.double_quant)
    rest = pc.non_linear * (4 if setup.kbit_upcast else setup.compute_bytes)
    return int(quantized + rest)


def adapter_weights(m: ModelSpec, setup: Setup) -> int:
    """LoRA A and B. peft creates them in fp32 over a bf16/fp16 base (autocast_adapter_dtype=True)."""
    return lora_params(m, setup) * 4


def trainable_bytes_per_param(setup: Setup) -> int:
    return 4 if setup.method != "full" else weight_bytes_per_param(setup)


def gradients(m: ModelSpec, setup: Setup) -> int:
    """One gradient per trainable parameter, in the parameter's dtype (fp32 for adapters and master weights)."""
    return trainable_params(m, setup) * trainable_bytes_per_param(setup)


def optimizer_states(m: ModelSpec, setup: Setup) -> int:
    """Optimizer state per trainable parameter.

    adamw: exp_avg and exp_avg_sq in the parameter's dtype (torch.optim.AdamW uses zeros_like(param)).
    8-bit AdamW (bitsandbytes): two uint8 states plus an fp32 absmax per 256 values. NB: bitsandbytes keeps
    tensors under 4096 elements in 32 bits; that is ignored (norms of a full fine-tune: < 0.1 %).
    adafactor (transformers): fp32 row and column second moments per matrix, full size for vectors, no momentum.
    sgd: none; sgd_momentum: one buffer in the parameter dtype; lion (bitsandbytes 32-bit): one fp32 buffer.
    """
    n = trainable_params(m, setup)
    p = trainable_bytes_per_param(setup)
    if setup.optimizer == "adamw":
        return 2 * n * p
    if setup.optimizer in ("adamw8bit", "paged_adamw8bit"):
        return int(2 * n * (1 + 4 / OPT8_BLOCK))
    if setup.optimizer == "adafactor":
        return adafactor_states(m, setup)
    if setup.optimizer == "sgd_momentum":
        return n * p
    if setup.optimizer == "lion":
        return n * 4
    return 0


def adafactor_states(m: ModelSpec, setup: Setup) -> int:
    """Factored second moment: rows + columns per matrix, fp32."""
    if setup.method != "full":
        per_layer = sum((setup.lora_r + x.in_features) + (x.out_features + setup.lora_r) for x in lora_linears(m, setup))
        return 4 * m.num_layers * per_layer * max(1, _expert_factor(lora_linears(m, setup)))
    pc = count_params(m)
    per_layer = sum((x.in_features + x.out_features) * x.count + x.bias_params for x in layer_linears(m))
    tables = (m.vocab_size + m.hidden_size) * (1 if m.tie_embeddings else 2)
    return 4 * (m.num_layers * per_layer + tables + pc.norm)


def _expert_factor(linears: list[Linear]) -> int:
    return max((x.count for x in linears), default=1)


def optimizer_step_temporaries(m: ModelSpec, setup: Setup) -> int:
    """Scratch memory of one optimizer step.

    adamw is the fused kernel (transformers' default `adamw_torch_fused` for torch >= 2.8): no scratch.
    adafactor updates one parameter at a time with about three fp32 copies of it; the largest is the embedding.
    NB: 8-bit and Lion bitsandbytes kernels update in place.
    """
    if setup.optimizer != "adafactor":
        return 0
    if setup.method == "full":
        largest = m.vocab_size * m.hidden_size
    else:
        largest = max((setup.lora_r * max(x.in_features, x.out_features) for x in lora_linears(m, setup)), default=0)
    return 3 * 4 * largest


# ---------------------------------------------------------------------------------------------- activations
def norm_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token one pre-norm saves, its output as the next matmul's input included.

    Llama-style RMSNorm: the fp32 copy of x (4h), the normalised tensor in the input dtype (r*h) and the
    output (a*h, the cast copy autocast gives the next linear). Gemma/OLMo 2: normalised tensor stays fp32.
    LayerNorm (GPT-2): its input and the output; mean and rstd are per-token scalars (ignored).
    """
    h, r, a = m.hidden_size, residual_bytes(setup), activation_bytes(setup)
    if m.norm == "layer":
        return (r + a) * h
    normalised = 4 if m.model_type in FP32_WEIGHT_NORMS else r
    return (4 + normalised + a) * h


def attention_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the attention block saves (projections, rotary, kernel, output projection input).

    SDPA flash / memory-efficient: q and k after rotary, v, the output, its transposed copy that feeds o_proj,
    and a fp32 log-sum-exp per head. Eager adds K/V repeated to every head (GQA); its S x S terms are in
    `eager_scores_saved`. NB: ignores the rotary cos/sin tables (S x head_dim, shared by all layers).
    """
    a = activation_bytes(setup)
    q, kv = m.q_width, m.kv_width
    if setup.attention == "eager":
        kv = q  # repeat_kv materialises K and V for every query head
    return a * (3 * q + 2 * kv) + 4 * m.num_heads


def eager_scores_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per sequence of eager attention's S x S terms saved for backward: the fp32 softmax output and
    its cast to the compute dtype. Zero for SDPA/flash, which never store the scores."""
    if setup.attention != "eager":
        return 0
    return m.num_heads * setup.seq_len * setup.seq_len * (4 + activation_bytes(setup))


def mlp_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the MLP saves.

    Gated (SwiGLU/GeGLU): gate output, up output, activation output and their product (4 x intermediate).
    Plain (GPT-2): the fc output and the activation output. MoE: each token's top-k experts, each with a
    gathered input and weighted output copy, plus fp32 router logits.
    NB: ignores the one-byte dropout masks of models trained with MLP dropout.
    """
    a = activation_bytes(setup)
    if not m.is_moe:
        return a * m.intermediate_size * (4 if m.gated_mlp else 2)
    k = m.experts_per_token
    per_expert = a * (4 * m.expert_intermediate + 2 * m.hidden_size)
    shared = a * 4 * m.shared_expert_intermediate_size
    return k * per_expert + shared + 4 * m.num_experts


def lora_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the LoRA branches save, per layer.

    peft casts x to the adapter's fp32 dtype, applies dropout (saving a one-byte mask when p > 0), and under
    autocast lora_A keeps its compute-dtype input copy; lora_B keeps lora_A's output (rank wide).
    NB: layers reading the same x (q, k, v) each make their own copy, as peft does.
    """
    a = activation_bytes(setup)
    mask = 1 if setup.lora_dropout > 0 else 0
    per_token = 0
    for lin in lora_linears(m, setup):
        copies = lin.count if lin.group != "expert" else m.experts_per_token
        per_token += copies * ((a + mask) * lin.in_features + a * setup.lora_r)
    return per_token


def layer_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes one decoder layer saves for backward, whole micro-batch."""
    per_token = 2 * norm_saved(m, setup) + attention_saved(m, setup) + mlp_saved(m, setup) + lora_saved(m, setup)
    return per_token * setup.tokens + setup.micro_batch * eager_scores_saved(m, setup)


def checkpoint_saved(m: ModelSpec, setup: Setup) -> int:
    """With gradient checkpointing each layer keeps only its input hidden states (residual dtype)."""
    return residual_bytes(setup) * m.hidden_size * setup.tokens


def stack_activations(m: ModelSpec, setup: Setup) -> int:
    """Everything the decoder stack holds for backward at the end of the forward pass, plus the final
    norm's saved tensors and the embedding output."""
    per_layer = checkpoint_saved(m, setup) if setup.checkpointing else layer_saved(m, setup)
    final_norm = norm_saved(m, setup) * setup.tokens
    return m.num_layers * per_layer + final_norm


def recompute_layer(m: ModelSpec, setup: Setup) -> int:
    """Gradient checkpointing: one layer's activations rebuilt during backward, plus its backward
    scratch (gradients of its largest intermediates). Zero without checkpointing."""
    if not setup.checkpointing:
        return 0
    return layer_saved(m, setup) + layer_backward_scratch(m, setup)


def layer_backward_scratch(m: ModelSpec, setup: Setup) -> int:
    """Gradients alive while back-propagating through one MLP: three intermediate-width tensors and the
    hidden-state gradient. NB: an approximation of the autograd graph's transient order."""
    a = activation_bytes(setup)
    inter = m.expert_intermediate * max(1, m.experts_per_token) if m.is_moe else m.intermediate_size
    return (3 * a * inter + 2 * 4 * m.hidden_size) * setup.tokens


def logits_forward(m: ModelSpec, setup: Setup) -> int:
    """Logits in the compute dtype, their fp32 upcast in the loss, and log-softmax's fp32 output.
    NB: the vocabulary-sized terms of the loss dominate for 128k-256k vocabularies."""
    n = setup.tokens * m.vocab_size
    upcast = 4 if activation_bytes(setup) == 2 else 0
    return n * (activation_bytes(setup) + upcast + 4)


def logits_backward(m: ModelSpec, setup: Setup) -> int:
    """At the start of backward: the saved fp32 log-softmax output, the incoming fp32 gradient and the
    gradient log-softmax produces (three fp32 B x S x V tensors)."""
    return 12 * setup.tokens * m.vocab_size


def dequant_scratch(m: ModelSpec, setup: Setup) -> int:
    """QLoRA: bitsandbytes dequantises one weight matrix at a time to the compute dtype for each matmul."""
    if setup.method != "qlora":
        return 0
    largest = max((x.in_features * x.out_features for x in layer_linears(m) if x.group != "router"), default=0)
    return largest * setup.compute_bytes


def autocast_weight_copies(m: ModelSpec, setup: Setup) -> int:
    """Mixed precision: autocast caches a bf16/fp16 copy of every fp32 weight a matmul uses until the
    forward region ends, and the matmuls keep them for backward. NB: assumes all linears (head included)."""
    if not setup.mixed:
        return 0
    head = m.vocab_size * m.hidden_size
    return (count_params(m).linear + head) * setup.compute_bytes


@dataclass(frozen=True)
class TermValue:
    name: str
    category: str  # parameters | gradients | optimizer | activations | temporaries | other
    bytes: int
    note: str
