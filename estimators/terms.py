"""One small function per memory term, each on plain numbers.

Every function returns bytes and says in its docstring what it models and what it ignores. Each term was read
from the transformers / peft / bitsandbytes / torch code and checked against `advisor measure` traces (the peak of
live tensor storage of the real training step, at full size, under fake tensors with CUDA semantics):
estimators/calibration/traces.jsonl, docs/accuracy.md. Conventions:
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
from .lora_targets import lora_target_names
from .model import ModelSpec
from .params import Linear, count_params, encoder_head_params, layer_linears, linear_names, targets_linear
from .setup import Setup
from .versions import in_range, version_of

# Families whose norm computes in fp32 and multiplies by an fp32 weight before casting back (Gemma's
# `x * (1 + w)`, OLMo 2, Cohere's weight-only LayerNorm), so an fp32 input-sized tensor and, when the weight
# trains, the fp32 normalised tensor are saved for backward.
FP32_WEIGHT_NORMS = {"gemma", "gemma2", "gemma3", "gemma3_text", "olmo2", "cohere"}

# Cohere's LayerNorm computes `hidden_states - mean` twice (once for the variance, once to normalise), so two fp32
# input-sized tensors are saved (pow keeps one, the multiply by rsqrt the other).
TWO_CENTRED_COPIES = {"cohere"}

# Non-gated MLP activations as transformers' ACT2FN runs them: "one op" (F.gelu, exact or tanh: saves its input),
# "gelu_new" (NewGELUActivation's formula written out: pow runs in fp32 under autocast, see mlp_saved) or
# "gelu_fast" (FastGELUActivation: `0.5 * x * (1 + tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)))`, no pow,
# so every op stays in the input's dtype; its products and tanh keep seven input-sized tensors: x, 0.044715 x,
# x * 0.797..., the (1 + ...) factor, tanh's output, 0.5 x and 1 + tanh). Activations not listed are priced as
# one op.
MLP_ACTIVATIONS = {
    "gelu": "one op",
    "gelu_pytorch_tanh": "one op",
    "gelu_new": "gelu_new",
    "gelu_fast": "gelu_fast",
    "relu": "one op",
    "silu": "one op",
}
GELU_FAST_SAVED = 7

# Families whose attention takes q, k and v as views of the fused projection's output (GPT-NeoX's
# `qkv.view(..., 3 * head_size).chunk(3)`, Falcon's `_split_heads`): rotary makes new q and k, but the saved v
# keeps the whole fused output alive. Read in transformers 5.24 and seen in `advisor measure --breakdown`.
FUSED_QKV_VIEW = {"gpt_neox", "falcon"}


def falcon_expands_kv(m: ModelSpec) -> bool:
    """Falcon's new decoder architecture (40B, 180B, Falcon 2) `_split_heads`: `key.broadcast_to(query.shape)`
    then `flatten(2, 3)`, so k and v reach attention with every query head (new tensors). The old architecture
    (7B) indexes one multi-query k/v head (`[..., [-2], :]`, a small copy)."""
    if m.model_type != "falcon":
        return False
    return m.num_kv_heads not in (1, m.num_heads) or (m.parallel_block and m.norms_per_layer == 2)


def falcon_mqa_sdpa(m: ModelSpec) -> bool:
    """Falcon 7B under SDPA: one k/v head and q's 71, passed to torch SDPA without enable_gqa, which then cannot
    use the flash or memory-efficient kernels and runs the math path (S x S scores, like eager)."""
    return m.model_type == "falcon" and not falcon_expands_kv(m) and m.num_kv_heads != m.num_heads


def fused_qkv_view(m: ModelSpec, setup: Setup) -> bool:
    """Whether the saved v is a view of the fused qkv output: only when it reaches the kernel in the compute
    dtype (QLoRA's fp32 projections are cast to bf16 first, a new tensor), and for Falcon only in the old
    architecture without multi-query (the others copy k and v out)."""
    if m.model_type not in FUSED_QKV_VIEW or (m.model_type == "falcon" and (falcon_expands_kv(m) or m.num_kv_heads == 1)):
        return False
    return base_out_bytes(setup, norm_out_bytes(m, setup)) == activation_bytes(setup)


# TRL's fused LM head (Setup.loss "fused"), read in trl 1.16: kernels/chunked_logprob.py and trainer/utils.py.
FUSED_TOKEN_CHUNK = 4096  # chunked_logprob.TOKEN_CHUNK_SIZE: tokens per logits tile
FUSED_VOCAB_CHUNK = 32768  # utils._CHUNKED_LOGPROB_CHUNK_SIZE: vocabulary columns per logits tile
FUSED_STATS = 7  # fp32 per-token running statistics ChunkedLogProbFunction.forward allocates (max, sums, target, ...)


# ---------------------------------------------------------------------------------------------- dtypes
def residual_bytes(setup: Setup) -> int:
    if setup.precision == "fp32" or setup.mixed:
        return 4
    if setup.adaptation == "qlora" and setup.kbit_upcast:
        return 4  # fp32 embeddings after the k-bit preparation make the whole residual stream fp32
    return 2


def activation_bytes(setup: Setup) -> int:
    return setup.compute_bytes


def weight_bytes_per_param(setup: Setup) -> int:
    """Storage of a non-quantised weight: fp32 for mixed precision (master weights) and fp32 runs."""
    return 4 if setup.precision == "fp32" or setup.mixed else 2


# ---------------------------------------------------------------------------------------------- LoRA shapes
# peft 0.21 (utils/transformers_weight_conversion.py) maps the transformers-4 names of these model types' router and
# experts onto transformers 5's fused parameters and wraps each with `lora.ParamWrapper`: "all-linear" (and target
# lists naming them) then adapts the router and the experts too. The two names fused into `gate_up_proj` give it
# rank 2r (and alpha 2 alpha). qwen2_moe itself is not in peft's table: there only the nn.Linear layers are wrapped.
_MIXTRAL_NAMES = {"gate": "gate", "w1": "gate_up_proj", "w3": "gate_up_proj", "w2": "down_proj"}
_QWEN_MOE_NAMES = {"gate": "gate", "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj", "down_proj": "down_proj"}
# OLMoE maps its experts like Qwen3-MoE (transformers' conversion_mapping: olmoe -> qwen2_moe patterns); Granite MoE
# renames already-fused parameters (input_linear, output_linear), which "all-linear" leaves alone (checked against
# peft in tests/test_families_lora.py).
PEFT_FUSED_TARGETS = {"mixtral": _MIXTRAL_NAMES, "qwen3_moe": _QWEN_MOE_NAMES, "olmoe": _QWEN_MOE_NAMES}


def _peft_names(m: ModelSpec) -> dict[str, str]:
    return PEFT_FUSED_TARGETS.get(m.model_type, {}) if m.experts_fused else {}


def _wraps_parameter(m: ModelSpec, lin: Linear, names: tuple[str, ...]) -> bool:
    """Whether peft wraps this raw parameter (router or fused experts): "all-linear", or every old name fused
    into it targeted (peft refuses half of a fused pair; `check_lora_targets` says so first)."""
    old = [k for k, v in _peft_names(m).items() if v == lin.name]
    return bool(old) and (not names or all(n in names for n in old))


def lora_linears(m: ModelSpec, setup: Setup) -> list[Linear]:
    """The linear layers LoRA wraps in one decoder layer.

    peft's "all-linear" wraps every nn.Linear but the output head. Raw parameters (transformers 5's fused MoE
    experts and router) are wrapped only for the model types in PEFT_FUSED_TARGETS (`wrapped_parameter`).
    """
    if setup.adaptation == "full":
        return []
    names = lora_target_names(m, setup)
    return [
        lin
        for lin in layer_linears(m)
        if (lin.module and (not names or any(targets_linear(m, n, lin) for n in names))) or (not lin.module and _wraps_parameter(m, lin, names))
    ]


def wrapped_parameter(lin: Linear) -> bool:
    """A wrapped raw parameter (lora.ParamWrapper) rather than an nn.Linear: its LoRA update is folded into a
    merged copy of the weight on every forward, and it cannot take dropout."""
    return not lin.module


def wrapped_parameters(m: ModelSpec, setup: Setup) -> list[Linear]:
    """The raw parameters (router, fused experts) LoRA wraps in one decoder layer, in forward order."""
    return [lin for lin in lora_linears(m, setup) if wrapped_parameter(lin)]


def check_lora_targets(m: ModelSpec, setup: Setup) -> str | None:
    """peft's refusal for a target list naming one half of a fused expert pair, else None."""
    if setup.adaptation == "full":
        return None
    names = lora_target_names(m, setup)
    if not names:
        return None
    by_param: dict[str, list[str]] = {}
    for old, new in _peft_names(m).items():
        by_param.setdefault(new, []).append(old)
    for new, olds in by_param.items():
        hit = [n for n in olds if n in names]
        if 0 < len(hit) < len(olds):
            return f"{m.name} fuses {' and '.join(olds)} into {new}: LoRA targets must name all of them or none (got {', '.join(hit)})"
    return None


def lora_rank(m: ModelSpec, lin: Linear, setup: Setup) -> int:
    """The rank peft gives a wrapped layer: r, or r x the number of old names fused into the parameter."""
    if not wrapped_parameter(lin):
        return setup.lora_r
    return setup.lora_r * max(1, sum(1 for v in _peft_names(m).values() if v == lin.name))


def lora_factors(m: ModelSpec, lin: Linear, setup: Setup) -> list[tuple[int, int]]:
    """Shapes of the LoRA matrices of one wrapped layer: A (r x in) and B (out x r) per module (per expert for
    experts that are nn.Linear modules); one A (rank*E x in) and one B (out x rank*E) for a ParamWrapper."""
    r = lora_rank(m, lin, setup)
    if wrapped_parameter(lin):
        return [(r * lin.count, lin.in_features), (lin.out_features, r * lin.count)]
    return [(r, lin.in_features), (lin.out_features, r)] * lin.count


def lora_params(m: ModelSpec, setup: Setup) -> int:
    """Every A and B, all layers."""
    per_layer = sum(rows * cols for lin in lora_linears(m, setup) for rows, cols in lora_factors(m, lin, setup))
    return per_layer * m.num_layers


def trainable_params(m: ModelSpec, setup: Setup) -> int:
    return count_params(m).total if setup.adaptation == "full" else lora_params(m, setup)


# ---------------------------------------------------------------------------------------------- static terms
def base_weights(m: ModelSpec, setup: Setup) -> int:
    """The model's own weights on the GPU.

    full / LoRA: every parameter at its storage dtype. QLoRA: decoder linear weights in 4 bits with their
    quantisation constants; embeddings, head, norms and biases stay unquantised, upcast to fp32 by
    `prepare_model_for_kbit_training` (peft) when the script calls it, else in the compute dtype.
    NB: ignores buffers (rotary inv_freq: a few KiB).
    """
    pc = count_params(m)
    if setup.adaptation != "qlora":
        return pc.total * weight_bytes_per_param(setup)
    quantized = pc.linear * four_bit_bytes_per_param(setup.double_quant)
    rest = pc.non_linear * (4 if setup.kbit_upcast else setup.compute_bytes)
    return int(quantized + rest)


def adapter_weights(m: ModelSpec, setup: Setup) -> int:
    """LoRA A and B. peft creates them in fp32 over a bf16/fp16 base (autocast_adapter_dtype=True)."""
    return lora_params(m, setup) * 4


def trainable_bytes_per_param(setup: Setup) -> int:
    return 4 if setup.adaptation != "full" else weight_bytes_per_param(setup)


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
    if setup.adaptation != "full":
        per_layer = sum(rows + cols for lin in lora_linears(m, setup) for rows, cols in lora_factors(m, lin, setup))
        return 4 * m.num_layers * per_layer
    pc = count_params(m)
    per_layer = sum((x.in_features + x.out_features) * x.count + x.bias_params for x in layer_linears(m))
    tables = (m.vocab_size + m.hidden_size) * (1 if m.tie_embeddings else 2)
    return 4 * (m.num_layers * per_layer + tables + pc.norm)


def foreach_adamw_scratch(m: ModelSpec, setup: Setup) -> int:
    """torch.optim.AdamW's foreach implementation (its default on CUDA; the HF Trainer's `adamw_torch`) builds
    `exp_avg_sq_sqrt = torch._foreach_sqrt(exp_avg_sqs)`: one state-sized tensor per parameter, all alive at once
    (torch/optim/adam.py, `_multi_tensor_adam`). The fused kernel (`adamw_torch_fused`, the Trainer's default
    since transformers 5 with torch >= 2.8, and Setup's "adamw") needs none."""
    return trainable_params(m, setup) * trainable_bytes_per_param(setup)


def optimizer_step_temporaries(m: ModelSpec, setup: Setup) -> int:
    """Scratch memory of one optimizer step.

    adamw is the fused kernel (transformers' default `adamw_torch_fused` for torch >= 2.8): no scratch.
    adafactor (transformers.optimization.Adafactor.step) updates one parameter at a time; for a 16-bit parameter
    four fp32 tensors of its size are alive at once (the gradient's and the parameter's fp32 copies, the old and
    the new `update`), for an fp32 one two (grad**2 + eps and its successor). The largest is the embedding.
    NB: 8-bit and Lion bitsandbytes kernels update in place.
    """
    if setup.optimizer != "adafactor":
        return 0
    if setup.adaptation == "full":
        largest = m.vocab_size * m.hidden_size
    else:
        largest = max((rows * cols for lin in lora_linears(m, setup) for rows, cols in lora_factors(m, lin, setup)), default=0)
    copies = 4 if trainable_bytes_per_param(setup) == 2 else 2
    return copies * 4 * largest


# ---------------------------------------------------------------------------------------------- activations
# What autograd keeps is decided op by op: a matmul keeps its input only when its weight is trained (the input is
# needed for the weight gradient), an elementwise product keeps each operand the other one's gradient needs, an
# activation function keeps its input. So a LoRA/QLoRA decoder (frozen base) keeps much less than a full
# fine-tune: its norms' outputs and the MLP product feed frozen matmuls only. Checked op by op against
# `advisor measure --breakdown` traces (estimators/calibration/traces.jsonl).
def uses_autocast(setup: Setup) -> bool:
    """The HF Trainer runs the forward under autocast for bf16/fp16 (both pure and mixed); fp32 runs without."""
    return setup.precision != "fp32"


def norm_weight_bytes(setup: Setup) -> int:
    """Storage of the norm weights: QLoRA's k-bit preparation upcasts them to fp32."""
    if setup.adaptation == "qlora":
        return 4 if setup.kbit_upcast else setup.compute_bytes
    return weight_bytes_per_param(setup)


def norm_out_bytes(m: ModelSpec, setup: Setup) -> int:
    """dtype of a pre-norm's output. Llama-style RMSNorm returns `weight * x.to(input_dtype)` (type promotion:
    fp32 if the weight or the residual is fp32); Gemma/OLMo 2 cast back to x's dtype; LayerNorm is on CUDA
    autocast's fp32 list."""
    if m.norm == "layer":
        return 4 if uses_autocast(setup) else residual_bytes(setup)
    if m.norm == "none" or m.model_type in FP32_WEIGHT_NORMS:  # OLMo: F.layer_norm in fp32, cast back
        return residual_bytes(setup)
    return max(norm_weight_bytes(setup), residual_bytes(setup))


def base_out_bytes(setup: Setup, in_bytes: int) -> int:
    """dtype of a frozen or trained base linear's output given its input's: the autocast dtype, except that
    bitsandbytes' Linear4bit casts its output back to the input's dtype (`Linear4bit.forward`: `.to(inp_dtype)`)."""
    if setup.adaptation == "qlora":
        return in_bytes
    return activation_bytes(setup) if uses_autocast(setup) else 4


def kept_input(setup: Setup, in_bytes: int, consumers: int) -> int:
    """Bytes per element that trained linears keep of one input. Under autocast an input in another dtype is cast
    by every consumer separately (autocast caches only leaf weights), and each matmul keeps its own copy."""
    a = activation_bytes(setup)
    if uses_autocast(setup) and in_bytes != a:
        return consumers * a
    return in_bytes


def norm_saved(m: ModelSpec, setup: Setup, consumers: int = 1) -> int:
    """Bytes per token one pre-norm keeps, its output as its `consumers` linears keep it included.

    RMSNorm (Llama): `x.to(float32)` is kept by pow and mul (4h, x itself when already fp32). Full fine-tuning
    adds the normalised tensor in the input dtype (kept by `weight * x`, r*h) and the output as the next linears
    keep it. Gemma/OLMo 2 keep the normalised tensor in fp32. LayerNorm (GPT-2) runs in fp32 under CUDA autocast:
    its fp32 input copy, then the linears' cast copies of its fp32 output.
    Frozen norm and linears (LoRA, QLoRA): only the fp32 input; LoRA branches keep their own copies (lora_saved).
    NB: ignores the per-token rsqrt / mean statistics (4 bytes per token).
    """
    h = m.hidden_size
    full = setup.adaptation == "full"
    per = 4
    if m.model_type in TWO_CENTRED_COPIES:
        per += 4
    if full and m.norm in ("rms", "layer_nobias"):  # the weight multiplies the normalised tensor: kept
        per += 4 if m.model_type in FP32_WEIGHT_NORMS else residual_bytes(setup)
    if full and consumers:
        per += kept_input(setup, norm_out_bytes(m, setup), consumers)
    return per * h


def layer_norms_saved(m: ModelSpec, setup: Setup) -> int:
    """The norms of one decoder layer: before attention (feeding q, k, v or a fused qkv), before the MLP (feeding
    gate and up, a fused gate_up, GPT-2's c_fc or a MoE router) and, for Gemma 2/3, the two post-norms whose
    outputs only feed residual additions."""
    attn = 1 if m.fused_qkv else 3
    mlp = 1 if (m.fused_gate_up or not m.gated_mlp or m.is_moe) else 2
    if m.norms_per_layer == 1:  # parallel block (Phi, Falcon 7B, Cohere): one norm feeds attention and MLP
        return norm_saved(m, setup, attn + mlp)
    per = norm_saved(m, setup, attn) + norm_saved(m, setup, mlp)
    if m.parallel_block and residual_bytes(setup) == 4:
        per -= 4 * m.hidden_size  # GPT-NeoX / Falcon 40B: both norms keep the same fp32 layer input (no cast copy)
    per += max(0, m.norms_per_layer - 2) * norm_saved(m, setup, 0)
    return per


def attention_kernel(m: ModelSpec, setup: Setup) -> str:
    """The kernel a GPU runs: "flash" for sdpa/flash (SDPA dispatches flash for bf16/fp16, causal, no mask,
    GQA via enable_gqa; fp32 without GQA runs memory-efficient attention, which keeps the same output and fp32
    log-sum-exp); "eager" when asked, for sdpa on models transformers refuses sdpa for (Gemma 2's attention
    soft-capping), and for sdpa in fp32 with GQA (flash needs 16-bit, memory-efficient attention takes no GQA,
    so SDPA's math path runs, which keeps what eager keeps)."""
    if setup.attention == "eager":
        return "eager"
    if setup.attention == "sdpa" and (m.attn_softcap or (setup.precision == "fp32" and m.num_kv_heads != m.num_heads) or falcon_mqa_sdpa(m)):
        return "eager"
    return "flash"


def causal_attention(m: ModelSpec, setup: Setup) -> bool:
    """Whether the kernel computes about half the S x S scores: a causal flash kernel skips the masked ones; eager
    attention computes them all and masks afterwards, and an encoder's every query sees every key."""
    return not m.encoder and attention_kernel(m, setup) != "eager"


def attention_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the attention block keeps (its norm and LoRA branches excluded).

    flash: q and k after rotary, v (cast to the compute dtype, also when QLoRA's projections are fp32), the
    output, which o_proj reads through a view (the kernel writes [B, S, H, D]), and a fp32 log-sum-exp per head.
    eager: q, K and V repeated to every head for GQA (repeat_kv copies), and for full fine-tuning the transposed
    output copy o_proj keeps; its S x S terms are in `eager_scores_saved`. Per-head q/k norms (Qwen3, Gemma 3,
    OLMo 2) keep their fp32 input copies (and the normalised tensor when trained).
    NB: ignores rotary cos/sin (S x head_dim, shared) and the flash kernel's RNG state (two 512-byte blocks).
    """
    a = activation_bytes(setup)
    q, kv = m.q_width, m.kv_width
    full = setup.adaptation == "full"
    if falcon_expands_kv(m):  # k and v broadcast to every head and flattened: copies as wide as q
        kv = q
    kv_v = q + 2 * kv if fused_qkv_view(m, setup) else kv  # v a view of the fused output: all of it stays alive
    if attention_kernel(m, setup) == "eager":
        rep = q if m.num_kv_heads != m.num_heads else kv
        per = a * (q + 2 * rep) + (a * q if full else 0)
    else:
        per = a * (2 * q + kv + kv_v) + 4 * m.num_heads
    return per + qk_norm_saved(m, setup)


def qk_norm_saved(m: ModelSpec, setup: Setup) -> int:
    """Per-head q/k RMSNorms (Qwen3, Gemma 3, OLMo 2): their fp32 input copies, and the normalised tensors when
    trained; zero for families without them."""
    if not m.qk_norm:
        return 0
    return (4 + (activation_bytes(setup) if setup.adaptation == "full" else 0)) * (m.q_width + m.kv_width)


def eager_scores_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per sequence of eager attention's S x S terms kept for backward: the fp32 softmax output (CUDA
    autocast runs softmax in fp32) and its cast to the compute dtype; Gemma 2's attention soft-capping adds the
    tanh output. Zero for flash, which never stores the scores.
    Dropout on the probabilities (ModelSpec.attn_dropout: BERT's attention_probs_dropout_prob, GPT-2's attn_pdrop)
    keeps its one-byte mask, and the dropped copy becomes what the matmul with V keeps: in place of the cast copy
    (GPT-2 casts before dropout; BERT drops the fp32 probabilities and autocast casts them for the matmul, the
    same bytes), and in fp32 as a tensor of its own (without dropout the matmul shares the softmax output).
    transformers 5.24 modeling_bert.py / modeling_gpt2.py eager_attention_forward; BERT's 4.x BertSelfAttention
    has the same softmax -> dropout -> matmul order."""
    if attention_kernel(m, setup) != "eager":
        return 0
    a = activation_bytes(setup)
    per = 4 + (a if a != 4 else 0) + (a if m.attn_softcap else 0)
    if m.attn_dropout:
        per += 1 + (4 if a == 4 else 0)
    if softmax_keeps_input(setup):
        per += 4
    return m.num_heads * setup.seq_len * setup.seq_len * per


def softmax_keeps_input(setup: Setup) -> bool:
    """torch < 1.11: softmax's backward took its input as well as its output (derivatives.yaml
    `self: _softmax_backward_data(grad, result, dim, self)`; 1.11 passes `self.scalar_type()` instead), so autograd
    kept the fp32 S x S scores of every eager softmax too (under autocast the fp32 copy it casts them to)."""
    torch = version_of(setup.versions, "torch")
    return bool(torch) and in_range(torch, "<1.11")


def eager_mask(m: ModelSpec, setup: Setup) -> int:
    """Eager attention's additive causal mask [B, 1, S, S] in the model dtype, built once per forward and kept
    (every layer reads it) until backward ends; Gemma 2 builds a second one for its sliding-window layers."""
    if attention_kernel(m, setup) != "eager":
        return 0
    masks = 2 if m.sliding_window and m.norms_per_layer == 4 else 1
    return masks * setup.micro_batch * setup.seq_len * setup.seq_len * weight_bytes_per_param(setup)


def mlp_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the MLP keeps (its norm and LoRA branches excluded).

    Gated (SwiGLU/GeGLU, fused gate_up too): gate (kept by the activation), activation output and up (kept by
    their product), and for full fine-tuning the product down_proj keeps. QLoRA's 4-bit linears return their
    input's dtype, so with fp32 norms these are fp32.
    GPT-2 and Phi (gelu_new under CUDA autocast: pow is on the fp32 list, so the chain runs in fp32): the fp32 copy
    of the c_fc output kept by pow, tanh's output, 1 + tanh, 0.5 * x in the compute dtype, and for full
    fine-tuning the cast copy c_proj keeps. One-op GELU (GPT-NeoX, Falcon, StarCoder 2): its input, and the
    output a trained fc_out keeps. SantaCoder's gelu_fast: seven input-dtype tensors (MLP_ACTIVATIONS).
    MoE (transformers 5 grouped experts): per routed token and expert the gate_up output, the activation output
    and the down output (kept by the routing-weight product); full fine-tuning, or LoRA on the fused experts,
    adds the gathered input and the product; the router keeps fp32 probabilities (and, adapted, its input). A Qwen2-MoE shared expert is a gated MLP whose output is kept
    by its sigmoid gate.
    """
    full = setup.adaptation == "full"
    o = base_out_bytes(setup, norm_out_bytes(m, setup))
    h, i = m.hidden_size, m.intermediate_size
    if not m.is_moe:
        if m.gated_mlp:
            return 3 * o * i + (kept_input(setup, o, 1) * i if full else 0)
        act = MLP_ACTIVATIONS.get(m.mlp_act, "one op")
        if act == "one op":  # not on autocast's fp32 list: keeps its input; a trained fc_out keeps the output
            return o * i + (kept_input(setup, o, 1) * i if full else 0)
        if act == "gelu_fast":
            return GELU_FAST_SAVED * o * i + (kept_input(setup, o, 1) * i if full else 0)
        f32 = 4
        half = o if uses_autocast(setup) else 4
        return (3 * f32 + half) * i + (kept_input(setup, f32 if uses_autocast(setup) else 4, 1) * i if full else 0)
    k, e = m.experts_per_token, m.expert_intermediate
    wrapped = {lin.name for lin in wrapped_parameters(m, setup)}
    keeps_input = full or "gate_up_proj" in wrapped  # a trained (merged) weight needs its matmul's input
    keeps_product = full or "down_proj" in wrapped
    per = k * (o * (3 * e + h) + (o * h if keeps_input else 0) + (o * e if keeps_product else 0)) + 4 * m.num_experts
    if "gate" in wrapped:  # the router's merged weight trains: its matmul keeps the norm output
        per += kept_input(setup, norm_out_bytes(m, setup), 1) * h
    si = m.shared_expert_intermediate_size
    if si:
        per += 3 * o * si + o * h + (o * si if full else 0)
    return per


def dropout_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token of dropout masks in a decoder layer: the fused CUDA kernel keeps a one-byte mask.
    GPT-2 / SantaCoder (resid_pdrop 0.1), Phi-2 (resid_pdrop 0.1) and StarCoder 2 (residual_dropout) train with
    dropout after attention and after the MLP (attention dropout runs inside the flash kernel); the other
    families' configs set it to 0, and dropout with p = 0 returns its input."""
    return 2 * m.hidden_size if m.resid_dropout else 0


def lora_input(m: ModelSpec, setup: Setup, lin: Linear) -> tuple[str, int]:
    """Which tensor a LoRA branch reads and its dtype bytes: the attention norm's output (q, k, v, fused qkv), the
    attention output (o_proj, kept by the kernel), the MLP norm's output (gate, up, fused gate_up, c_fc, router) or
    the MLP product (down_proj, c_proj of the MLP)."""
    norm_out = norm_out_bytes(m, setup)
    if lin.group == "attention":
        if lin.in_features != m.hidden_size or lin.name == linear_names(m)["o"]:
            return "attention output", activation_bytes(setup)
        return "attention norm", norm_out
    if lin.in_features != m.hidden_size:
        return "mlp product", base_out_bytes(setup, norm_out)
    return "mlp norm", norm_out


def bnb_lora_skips_cast(setup: Setup) -> bool:
    """peft's bitsandbytes LoRA layers (QLoRA) cast x to the adapter's fp32 dtype only when autocast is off
    (`requires_conversion = not torch.is_autocast_enabled()`); the plain lora.Linear always does."""
    return setup.adaptation == "qlora" and uses_autocast(setup)


def lora_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the LoRA branches save, per layer.

    lora.Linear casts x to the adapter's fp32 dtype, applies dropout (saving a one-byte mask when p > 0), and under
    autocast lora_A keeps its compute-dtype input copy; lora_B keeps lora_A's output (rank wide). Layers reading
    the same x (q, k, v) each make their own copy, as peft does.
    QLoRA under autocast skips the fp32 cast: with dropout, lora_A keeps the dropout output (in x's dtype); without,
    an x already in the compute dtype is kept as it is, shared by the branches that read it (the attention output
    is kept by the kernel anyway); an x in another dtype (fp32 after the k-bit upcast) gets autocast's copy per
    branch.
    """
    a = activation_bytes(setup)
    mask = 1 if setup.lora_dropout > 0 else 0
    per_token, shared = 0, set()
    for lin in lora_linears(m, setup):
        if wrapped_parameter(lin):
            continue  # no branch: the update is folded into the weight (merged_weights_saved)
        copies = lin.count if lin.group != "expert" else m.experts_per_token
        source, in_b = lora_input(m, setup, lin)
        if bnb_lora_skips_cast(setup) and not mask and in_b == a and lin.group != "expert":
            if source not in shared and source != "attention output":
                per_token += in_b * lin.in_features
            shared.add(source)
            per_token += a * setup.lora_r
            continue
        per_token += copies * ((a + mask) * lin.in_features + a * setup.lora_r)
    return per_token


def merged_weights_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes one decoder layer keeps for backward for each raw parameter peft wraps (lora.ParamWrapper: MoE
    router and fused experts). Under `parametrize.cached()` the layer's forward builds W + s * B @ A: one
    `baddbmm` per stacked expert parameter, a new tensor the size of that parameter (all experts) in the compute
    dtype, which the grouped matmul keeps because it now needs a weight gradient; `baddbmm` keeps the two factors
    cast to the compute dtype. The router's merged copy is E x h. Zero when no parameter is wrapped."""
    a = activation_bytes(setup)
    total = 0
    for lin in wrapped_parameters(m, setup):
        total += lin.weight_params * a
        if lin.count > 1 and a != 4:  # the factors are fp32 adapters: baddbmm gets compute-dtype copies
            total += sum(rows * cols for rows, cols in lora_factors(m, lin, setup)) * a
    return total


def merged_weight_gradient(m: ModelSpec, setup: Setup) -> int:
    """The gradient of a merged expert weight during a layer's backward: the grouped matmul's weight gradient, as
    large as the stacked parameter (compute dtype), alive until `baddbmm`'s backward turns it into the factors'
    gradients. Backward meets down_proj first; by gate_up_proj's turn down_proj's merged copy is freed, so the
    extra at gate_up is its gradient minus that copy."""
    a = activation_bytes(setup)
    freed, best = 0, 0
    for lin in reversed([x for x in wrapped_parameters(m, setup) if x.count > 1]):
        size = lin.weight_params * a
        best = max(best, size - freed)
        freed += size
    return best


def layer_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes one decoder layer saves for backward, whole micro-batch (what Inductor's partitioner keeps under
    `--torch-compile`, where that was measured: compiled_layer_saved)."""
    if compile_priced(m, setup):
        per_token = compiled_layer_saved(m, setup)
    else:
        per_token = layer_norms_saved(m, setup) + attention_saved(m, setup) + mlp_saved(m, setup) + lora_saved(m, setup) + dropout_saved(m, setup)
    return per_token * setup.tokens + setup.micro_batch * eager_scores_saved(m, setup) + merged_weights_saved(m, setup)


# ---------------------------------------------------------------------------------------------- torch.compile
def compile_priced(m: ModelSpec, setup: Setup) -> bool:
    """Whether `--torch-compile` changes the layer's saved tensors in this estimate: the layer shapes and set-ups
    whose compiled saved set was measured (advisor/measure/compile_saved.py, bench/compile_saved.txt): sequential
    blocks of two plain RMSNorms, a flash/SDPA attention with separate q/k/v, a gated MLP with separate gate/up, no
    MoE, no residual dropout; full fine-tuning or LoRA with the weights in the compute dtype. Elsewhere a compiled run
    is priced as eager (sft.py says so), an over-estimate of its layer activations."""
    return (
        setup.torch_compile
        and setup.adaptation in ("full", "lora")
        and setup.precision in ("bf16", "fp16")
        and m.norm == "rms"
        and m.norms_per_layer == 2
        and not m.parallel_block
        and m.model_type not in FP32_WEIGHT_NORMS
        and m.gated_mlp
        and not m.is_moe
        and not m.fused_qkv
        and not m.fused_gate_up
        and not m.resid_dropout
        and attention_kernel(m, setup) == "flash"
        and not falcon_expands_kv(m)
    )


# rules/stacks.toml [[layer_option]] id -> whether it changes this estimate (estimators/stacks.py layer_options lists it)
LAYER_OPTIONS = {"torch-compile": compile_priced}


def compiled_layer_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token one decoder layer saves for backward when torch.compile (Inductor) builds its graph.

    AOTAutograd's min-cut partitioner (torch/_functorch/partitioners.py min_cut_rematerialization_partition, the
    Inductor default) saves the cheapest set of tensors from which backward can recompute every elementwise op; it
    never recomputes a matmul or the attention kernel. Measured on CPU for Llama and Qwen3 layers (the compiled
    forward graph's saved outputs; `TORCH_LOGS=aot_graphs` prints them):
      each RMSNorm: its input (the layer input and the residual after attention, the latter saved as o_proj's
        output) and the fp32 1/rms per token, instead of eager's fp32 input copy;
      attention: what the kernel saves (attention_saved), q/k norms' inputs and statistics where the family has them;
      gated MLP: gate and up (the activation is recomputed), not eager's activation output;
      the matmul inputs trained weights need, once each in the compute dtype (no per-consumer or fp32 copies):
        full fine-tuning: both norm outputs and the MLP product; LoRA: compiled_lora_saved.
    NB: with checkpointing the recomputed layer's saved input is its checkpoint, counted twice here (one hidden
    state per token); the forward working set is still priced as eager's."""
    a, h, i = activation_bytes(setup), m.hidden_size, m.intermediate_size
    attention = attention_saved(m, setup) - qk_norm_saved(m, setup) + compiled_qk_norm_saved(m, setup)
    per = 2 * (a * h + 4) + attention + 2 * a * i
    if setup.adaptation == "full":
        return per + a * (2 * h + i)
    return per + compiled_lora_saved(m, setup)


def compiled_qk_norm_saved(m: ModelSpec, setup: Setup) -> int:
    """Per-head q/k RMSNorms under compile (Qwen3): the projections' outputs in the compute dtype and a fp32 1/rms per
    head, in place of qk_norm_saved's fp32 copies; zero for families without them."""
    if not m.qk_norm:
        return 0
    return activation_bytes(setup) * (m.q_width + m.kv_width) + 4 * (m.num_heads + m.num_kv_heads)


def compiled_lora_saved(m: ModelSpec, setup: Setup) -> int:
    """Bytes per token the LoRA branches save under compile: lora_B's input (rank wide) per branch, and lora_A's
    input in the compute dtype, once per tensor the branches read (the attention norm's output for q/k/v, the
    attention output, the MLP norm's output, the MLP product: lora_input) when there is no dropout; with dropout
    every branch keeps its own dropout output and its one-byte mask (random ops are never recomputed)."""
    a = activation_bytes(setup)
    per, read = 0, set()
    for lin in lora_linears(m, setup):
        per += a * lora_rank(m, lin, setup)
        if setup.lora_dropout > 0:
            per += (a + 1) * lin.in_features
            continue
        source, _ = lora_input(m, setup, lin)
        if source not in read:
            per += a * lin.in_features
            read.add(source)
    return per


def checkpoint_saved(m: ModelSpec, setup: Setup) -> int:
    """With gradient checkpointing each layer keeps only its input hidden states: the residual stream's dtype in a
    pre-norm decoder; in a post-LayerNorm encoder the previous LayerNorm's output (fp32 under autocast: layer_norm is
    on its fp32 list), and for the first layer the embedding dropout's fp32 output. Traced: BERT base LoRA, b16 x 512."""
    width = norm_out_bytes(m, setup) if m.encoder else residual_bytes(setup)
    return width * m.hidden_size * setup.tokens


def embedding_norm_saved(m: ModelSpec, setup: Setup) -> int:
    """An encoder's LayerNorm after the embeddings (its one norm outside the layers, ModelSpec.final_norm): its saved
    fp32 input lives until backward ends, at the bottom of the stack. Under checkpointing with a frozen embedding
    (LoRA, QLoRA) peft's enable_input_require_grads keeps the word-embedding output (weight dtype) and the embedding
    dropout its one-byte mask. Zero for decoders, whose final norm is at the top (stack_activations). Traced: BERT
    base LoRA and QLoRA with checkpointing."""
    if not m.encoder:
        return 0
    per = norm_saved(m, setup, 0)
    if setup.checkpointing and setup.adaptation != "full":
        per += residual_bytes(setup) * m.hidden_size  # the embedding's dtype (fp32 after the k-bit upcast)
        per += m.hidden_size if m.embed_dropout else 0
    return per * setup.tokens


def stack_activations(m: ModelSpec, setup: Setup) -> int:
    """Everything the decoder stack holds for backward at the end of the forward pass: every layer's saved
    tensors (or, with checkpointing, its input), the final norm's (its output kept by a trained lm_head; with the
    fused head the head's own copy is `fused_head_saved`), GPT-2's embedding-dropout mask and eager attention's
    mask."""
    per_layer = checkpoint_saved(m, setup) if setup.checkpointing else layer_saved(m, setup)
    final_norm = embedding_norm_saved(m, setup) if m.encoder else norm_saved(m, setup, 0 if fused_head(setup) else 1) * setup.tokens
    embed_dropout = m.hidden_size * setup.tokens if m.embed_dropout and not setup.checkpointing else 0
    return m.num_layers * per_layer + final_norm + embed_dropout + eager_mask(m, setup)


def recompute_layer(m: ModelSpec, setup: Setup) -> int:
    """Gradient checkpointing: one layer's activations rebuilt during backward, plus the working set of its
    forward. Zero without checkpointing."""
    if not setup.checkpointing:
        return 0
    return layer_saved(m, setup) + layer_forward_transient(m, setup)


def layer_forward_transient(m: ModelSpec, setup: Setup) -> int:
    """The largest working set beyond the saved tensors while a LoRA/QLoRA layer runs its forward (or is
    recomputed), whole micro-batch. In a LoRA branch peft casts the input to fp32 (`_cast_input_dtype`, a copy
    unless it is fp32 already) and dropout writes an fp32 output, both alive while lora_A casts its input back to
    the compute dtype; the input itself is alive too where no frozen op keeps it (the MLP product before
    down_proj, a norm's output before q/k/v). QLoRA's Linear4bit first casts its input to the compute dtype and
    dequantises its weight (`dequant_scratch`). The largest wrapped linear sets it (usually down_proj).
    NB: full fine-tuning keeps these inputs anyway; its forward working set (one layer output) is ignored."""
    if setup.adaptation == "full":
        return 0
    a, tokens = activation_bytes(setup), setup.tokens
    norm_out = norm_out_bytes(m, setup)
    o = base_out_bytes(setup, norm_out)
    dropout = setup.lora_dropout > 0
    best = post_norm_transient(m, setup)
    for lin in lora_linears(m, setup):
        if lin.group == "attention" and (lin.name == linear_names(m)["o"] or lin.in_features != m.hidden_size):
            live, in_b = 0, a  # o_proj reads the attention output, which the kernel keeps
        elif lin.in_features != m.hidden_size:
            live, in_b = o, o  # down_proj reads the MLP product, kept by no frozen op
        else:
            live, in_b = norm_out, norm_out
        if bnb_lora_skips_cast(setup):  # no fp32 cast; an fp32 x's dropout output waits for autocast's copy
            lora_step = (live + (4 if dropout and in_b == 4 else 0)) * lin.in_features * tokens
        else:
            lora_step = (live + (4 if in_b != 4 else 0) + (4 if dropout else 0)) * lin.in_features * tokens
        best = max(best, lora_step)
        if setup.adaptation == "qlora":
            base_step = live * lin.in_features * tokens + (a if in_b != a else 0) * lin.in_features * tokens
            best = max(best, base_step + lin.in_features * lin.out_features * setup.compute_bytes)
    return best


def post_norm_transient(m: ModelSpec, setup: Setup) -> int:
    """A post-LayerNorm encoder layer rebuilt with a frozen base (LoRA, QLoRA), at its last LayerNorm: beyond the saved
    tensors, the attention LayerNorm's fp32 output, the output dropout's result, the LayerNorm's own fp32 output and
    the GELU output the frozen output.dense does not keep (BertLayer.feed_forward_chunk). Zero for decoders. Traced:
    BERT base LoRA with checkpointing."""
    if not m.encoder:
        return 0
    a, norm_out = activation_bytes(setup), norm_out_bytes(m, setup)
    return ((2 * norm_out + a) * m.hidden_size + a * m.intermediate_size) * setup.tokens


def backward_grad_buffers(m: ModelSpec, setup: Setup) -> int:
    """Gradients of the hidden states in flight between two layers during backward: the gradient reaching the
    layer, in the residual dtype, and the fp32 gradient the norm backward computed it from. An encoder's top layer
    gets only the fp32 gradient of the pooler's first-token slice scattered into B x S x h."""
    if m.encoder:
        return 4 * m.hidden_size * setup.tokens
    return (residual_bytes(setup) + 4) * m.hidden_size * setup.tokens


def head_weights(m: ModelSpec) -> int:
    """Weight elements of the output head: a decoder's V x h LM head (tied or not: the matrix the head multiplies
    by), an encoder's classification head (params.encoder_head_params, biases included)."""
    return encoder_head_params(m) if m.encoder else m.vocab_size * m.hidden_size


def logit_count(m: ModelSpec, setup: Setup) -> int:
    """Logits one micro-batch's loss computes: every token's V of a causal LM; an encoder classifies the first
    token of each sequence into num_labels (no B x S x V tensor)."""
    return setup.micro_batch * m.num_labels if m.encoder else setup.tokens * m.vocab_size


def head_gradients(m: ModelSpec, setup: Setup) -> int:
    """Full fine-tuning: gradients that exist once the head's backward has run (output head and final norm;
    for tied embeddings the shared matrix, whose embedding contribution is added at the very end)."""
    if setup.adaptation != "full":
        return 0
    norm = m.hidden_size * m.norm_params_per_width
    head_bias = m.vocab_size if m.lm_head_bias else 0
    return (head_weights(m) + norm + head_bias) * trainable_bytes_per_param(setup)


def embedding_gradient(m: ModelSpec, setup: Setup) -> int:
    """Full fine-tuning, untied embeddings: the input embedding's gradient (and GPT-2's position table's), the
    last gradients backward produces; until then they do not exist."""
    if setup.adaptation != "full" or m.tie_embeddings:
        return 0
    extra = (m.max_positions if m.learned_positions else 0) + m.token_types  # GPT-2's position table, BERT's two
    return (m.vocab_size + extra) * m.hidden_size * trainable_bytes_per_param(setup)


def layer_gradients(m: ModelSpec, setup: Setup) -> int:
    """Gradients of one decoder layer's trainable parameters. While backward is inside the first layer, its
    MLP scratch peaks before its weight gradients are all written: the bottom-layer point leaves them out."""
    if setup.adaptation == "full":
        per = (count_params(m).total - count_params(m).embedding - count_params(m).lm_head) // max(1, m.num_layers)
        return per * trainable_bytes_per_param(setup)
    return lora_params(m, setup) // max(1, m.num_layers) * 4


def tied_embedding_transient(m: ModelSpec, setup: Setup) -> int:
    """Full fine-tuning, tied embeddings: the autograd engine holds the head's contribution to the shared
    matrix's gradient in an input buffer until the embedding's arrives (`embedding_dense_backward`, a fresh
    V x h tensor), then adds them into a third; so at the very end two V x h tensors exist beyond the one counted
    as the gradient."""
    if setup.adaptation != "full" or not m.tie_embeddings:
        return 0
    return 2 * m.vocab_size * m.hidden_size * trainable_bytes_per_param(setup)


def layer_backward_scratch(m: ModelSpec, setup: Setup) -> int:
    """Gradients alive while back-propagating through one MLP: three intermediate-width tensors and the
    hidden-state gradient. NB: an approximation of the autograd graph's transient order."""
    a = activation_bytes(setup)
    inter = m.expert_intermediate * max(1, m.experts_per_token) if m.is_moe else m.intermediate_size
    return (3 * a * inter + 2 * 4 * m.hidden_size) * setup.tokens


def logit_softcap_saved(m: ModelSpec, setup: Setup) -> int:
    """Gemma 2's final logit soft-capping (`logits / cap`, tanh, `* cap`): tanh keeps its output, one more
    B x S x V tensor in the compute dtype, from the forward until the head's backward."""
    if not m.logit_softcap:
        return 0
    return setup.tokens * m.vocab_size * activation_bytes(setup)


def logits_forward(m: ModelSpec, setup: Setup) -> int:
    """Logits in the compute dtype, their fp32 upcast in the loss, and log-softmax's fp32 output (plus Gemma 2's
    soft-capping tensor). NB: the vocabulary-sized terms of the loss dominate for 128k-256k vocabularies."""
    n = logit_count(m, setup)
    upcast = 4 if activation_bytes(setup) == 2 else 0
    return n * (activation_bytes(setup) + upcast + 4) + logit_softcap_saved(m, setup)


def logits_backward(m: ModelSpec, setup: Setup) -> int:
    """At the start of backward: the saved fp32 log-softmax output, the incoming fp32 gradient and the
    gradient log-softmax produces (three fp32 B x S x V tensors), plus Gemma 2's saved soft-capping tensor."""
    return 12 * logit_count(m, setup) + logit_softcap_saved(m, setup)


# ---------------------------------------------------------------------------------------------- the fused LM head
# trl 1.16's SFT, DPO and GRPO trainers patch the model with `add_fused_lm_head` and call it with
# `fused_lm_head=True`: the backbone's last hidden state, shifted, is scored by `ChunkedLogProbFunction` on a CUDA
# device with Triton through its compact path: `hidden_states[mask]` (the N positions whose label is not -100) and
# `labels[mask]` are copied, then [4096 x 32768] tiles of logits are computed into one reused buffer in the compute
# dtype and folded by Triton kernels into fp32 per-token statistics; the backward recomputes each tile, turns it into
# the logits gradient in place and accumulates the hidden-state and weight gradients in fp32. No B x S x V tensor.
# `scored` = N, the positions scored (default: every token of the micro-batch; GRPO scores the completion only).
def fused_head(setup: Setup) -> bool:
    """Whether the LM head is TRL's fused one (Setup.loss "fused") rather than the B x S x V logits of the HF loss."""
    return setup.loss == "fused"


def head_weight_bytes(setup: Setup) -> int:
    """Storage of the output head's weight: the weight dtype, fp32 for QLoRA after the k-bit upcast (the head is
    not quantised), the compute dtype for QLoRA without it."""
    if setup.adaptation == "qlora":
        return 4 if setup.kbit_upcast else setup.compute_bytes
    return weight_bytes_per_param(setup)


def fused_tile(m: ModelSpec, setup: Setup, scored: int | None = None) -> int:
    """`mm_buf`: the [min(N, 4096) x 32768] logits tile in the compute dtype (autocast's, else the hidden states'
    dtype), allocated once by the forward and once by the backward, reused by every tile. It is 32768 wide even for
    a smaller vocabulary (Llama 2's 32000): TRL allocates the chunk size, then works on a view."""
    n = setup.tokens if scored is None else scored
    return min(n, FUSED_TOKEN_CHUNK) * FUSED_VOCAB_CHUNK * setup.compute_bytes


def fused_chunk_casts(m: ModelSpec, setup: Setup, scored: int | None = None) -> int:
    """Compute-dtype copies the tile loop makes when its inputs are in another dtype: one vocabulary chunk of an
    fp32 head weight (mixed precision, QLoRA's upcast head: `weight[start:end].to(compute_dtype)`) and one token
    chunk of fp32 hidden states (`hidden[start:end].to(compute_dtype)`). None in pure bf16/fp16 or fp32."""
    n = setup.tokens if scored is None else scored
    a, h = setup.compute_bytes, m.hidden_size
    weight = min(m.vocab_size, FUSED_VOCAB_CHUNK) * h * a if head_weight_bytes(setup) != a else 0
    hidden = min(n, FUSED_TOKEN_CHUNK) * h * a if norm_out_bytes(m, setup) != a else 0
    return weight + hidden


def fused_head_saved(m: ModelSpec, setup: Setup, scored: int | None = None) -> int:
    """What ChunkedLogProbFunction saves for backward, per scored token: the compact copy of the hidden states in
    the final norm's output dtype, the int64 target and the fp32 log-normaliser and entropy (the trainers request
    the entropy for their metrics). Alive from the head's forward to its backward. The weight it saves is the
    head's parameter itself."""
    n = setup.tokens if scored is None else scored
    return n * (m.hidden_size * norm_out_bytes(m, setup) + 8 + 4 + 4)


def fused_head_forward(m: ModelSpec, setup: Setup, scored: int | None = None) -> int:
    """The head's forward working set beyond what it saves: the backbone's last hidden state (every token; freed
    when the head returns, the compact copy replaces it), the logits tile, the chunk casts and the fp32 running
    statistics per scored token (FUSED_STATS, plus the log-prob and entropy outputs being formed)."""
    n = setup.tokens if scored is None else scored
    last_hidden = setup.tokens * m.hidden_size * norm_out_bytes(m, setup)
    return last_hidden + fused_tile(m, setup, n) + fused_chunk_casts(m, setup, n) + n * 4 * (FUSED_STATS + 2)


def fused_head_backward(m: ModelSpec, setup: Setup, scored: int | None = None) -> int:
    """The head's backward at its peak, the return: the fp32 hidden-state gradient (N x h) and its cast to the
    hidden dtype, for a trained head (full fine-tuning, tied or not) the fp32 weight gradient (V x h) and its cast to
    the weight dtype, both `.to()` copies made while the fp32 accumulators, the logits tile and the chunk casts are
    alive; plus the incoming fp32 per-token gradient."""
    n = setup.tokens if scored is None else scored
    h, ho = m.hidden_size, norm_out_bytes(m, setup)
    grad_hidden = n * h * (4 + (ho if ho != 4 else 0))
    grad_weight = 0
    if setup.adaptation == "full":
        wb = head_weight_bytes(setup)
        grad_weight = m.vocab_size * h * (4 + (wb if wb != 4 else 0))
    return grad_hidden + grad_weight + fused_tile(m, setup, n) + fused_chunk_casts(m, setup, n) + 4 * n


def dequant_scratch(m: ModelSpec, setup: Setup) -> int:
    """QLoRA: bitsandbytes dequantises one weight matrix at a time to the compute dtype for each matmul."""
    if setup.adaptation != "qlora":
        return 0
    largest = max((x.in_features * x.out_features for x in layer_linears(m) if x.group != "router"), default=0)
    return largest * setup.compute_bytes


def head_weight_copy(m: ModelSpec, setup: Setup) -> int:
    """QLoRA with `prepare_model_for_kbit_training`: the output head is fp32 and frozen, so autocast casts it to
    the compute dtype at every forward without caching it (autocast caches only weights that require grad), and
    the matmul keeps that copy for the input gradient until the head's backward (tied or not)."""
    if setup.adaptation != "qlora" or not setup.kbit_upcast or not uses_autocast(setup) or fused_head(setup):
        return 0  # the fused head casts one vocabulary chunk at a time (fused_chunk_casts)
    return head_weights(m) * setup.compute_bytes


def autocast_weight_copies(m: ModelSpec, setup: Setup) -> int:
    """Mixed precision, during the forward: autocast caches a bf16/fp16 copy of every fp32 weight a matmul uses
    (the weights require grad) until the forward's autocast region ends. NB: counts the decoder linears and the
    head (not with the fused head, which casts chunks itself); MoE experts stored as raw parameters are cast per
    use."""
    if not setup.mixed:
        return 0
    head = 0 if fused_head(setup) else head_weights(m)
    return (count_params(m).linear + head) * setup.compute_bytes


def layer_weight_copies(m: ModelSpec, setup: Setup) -> int:
    """Mixed precision: the compute-dtype copies of one decoder layer's weights, cast again when the layer is
    recomputed (checkpointing) and kept by its matmuls until its backward is done."""
    if not setup.mixed:
        return 0
    return count_params(m).linear // max(1, m.num_layers) * setup.compute_bytes


def autocast_copies_in_layers(m: ModelSpec, setup: Setup) -> int:
    """Mixed precision, once the head's backward is done: with checkpointing the recomputed layer's copies
    (`layer_weight_copies`), without it every decoder layer's copy still kept by its matmuls."""
    if not setup.mixed:
        return 0
    if setup.checkpointing:
        return layer_weight_copies(m, setup)
    return count_params(m).linear * setup.compute_bytes


def autocast_copies_in_backward(m: ModelSpec, setup: Setup) -> int:
    """Mixed precision, at the start of backward: the cache is gone, and the copies live on only where a matmul
    kept its weight for the input gradient. Without checkpointing that is every copy; with checkpointing the
    layers' forward graphs were discarded, so only the head's copy is kept (each layer recasts its weights when
    it is recomputed). The fused head keeps the fp32 weight itself, no copy."""
    if not setup.mixed:
        return 0
    if setup.checkpointing:
        return 0 if fused_head(setup) else head_weights(m) * setup.compute_bytes
    return autocast_weight_copies(m, setup)


@dataclass(frozen=True)
class TermValue:
    name: str
    category: str  # parameters | gradients | optimizer | activations | temporaries | other
    bytes: int
    note: str
