"""The time LLaMA-Adapter (`--llama-adapter`, peft AdaptionPrompt) adds to an adapted decoder layer, and how many
layers backward differentiates. Read with the sources of estimators/adapter_prompt_terms.py (peft 0.21.2
tuners/adaption_prompt/layer.py AdaptedAttention.forward, utils.py llama_compute_query_states).

Nothing of LoRA runs: the base is frozen and every layer runs as a frozen one (time_layer.layer_pass with the adapter
off). Each of the top `adapter_layers` layers adds, per forward:
- q_proj again on the layer's hidden states (peft recomputes the query with rotary), and o_proj on the adapter output;
- k_proj and v_proj on the prompt (adapter_len tokens, once per micro-batch: negligible and left out);
- the scores of every query over the adapter_len prompt keys and their product with the prompt values;
- softmax in fp32, its cast, the zero-init gate and the add to the attention output, as bytes.
Backward: the input gradients of those two matmuls and of the score products (the base weights are frozen; the prompt
and gate gradients are tiny), the elementwise bytes twice. Without gradient checkpointing nothing below the lowest
adapted layer needs a gradient (TRL calls enable_input_require_grads only for checkpointing:
adapter_prompt_terms.first_layer_unsaved), so backward runs over the adapted layers only; with checkpointing the
embedding output needs one, and backward and the recompute run over every layer.
"""

from __future__ import annotations

from .adapter_prompt_terms import adapted_layers
from .model import ModelSpec
from .roofline import Constants, Roof, matmul_time, memory_time
from .setup import Setup

ADAPTER_KERNELS = 14  # forward: q_proj, rotary (4), the two score matmuls, softmax, cast, gate, o_proj, add, reshapes (2)


def adapter_pass(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, backward: bool) -> tuple[float, float, float]:
    """(matmul seconds, elementwise seconds, kernels) the adapter adds to one adapted layer's forward or backward."""
    a, tokens, lp = setup.compute_bytes, batch * seq, setup.adapter_len
    fp32 = setup.precision == "fp32"
    h, q = m.hidden_size, m.q_width
    linear_flops, linear_bytes = 2.0 * tokens * h * q, (tokens * (h + q) + h * q) * a
    score_flops = 2 * 2.0 * tokens * lp * q  # queries x prompt keys, and the gated scores x prompt values
    score_bytes = (2 * tokens * q + 2 * batch * lp * q + batch * m.num_heads * seq * lp) * a
    mat = 2 * matmul_time(roof, c, linear_flops, tokens, linear_bytes, fp32) + matmul_time(roof, c, score_flops, tokens, score_bytes, fp32)
    scores = batch * m.num_heads * seq * lp * (a + 4 + 4 + a + a + a)  # scores, fp32 softmax in and out, cast, gated
    elem = scores + 3 * a * tokens * h  # plus the adapter output added to the attention output
    if backward:  # input gradients only (frozen projections), elementwise twice
        return mat, memory_time(roof, c, 2 * elem), 2 * ADAPTER_KERNELS
    return mat, memory_time(roof, c, elem), ADAPTER_KERNELS


def backward_layers(m: ModelSpec, setup: Setup) -> int:
    """Decoder layers backward differentiates: the adapted ones, or every layer under gradient checkpointing."""
    return m.num_layers if setup.checkpointing else adapted_layers(m, setup)
