"""One hand-checked test per memory term (estimators/terms.py), on a model small enough to count by hand.

TINY: Llama-style, hidden h=8, intermediate i=16, 2 layers, 2 query heads and 1 key/value head of size 4
(q width 8, kv width 4), vocabulary V=32, untied. Parameters: embedding 32*8=256, head 256, per layer
q 64 + k 32 + v 32 + o 64 + gate 128 + up 128 + down 128 = 576 (1152 for two), norms 2*8 per layer + 8 final = 40;
total 1704. Batch 1 x 4 tokens (T=4) unless a test says otherwise. LoRA r=2 on all linears:
q 2*(8+8)=32, k 2*(8+4)=24, v 24, o 32, gate 2*(8+16)=48, up 48, down 48 = 256 per layer, 512 in all.
The set-ups below price the HF causal-LM loss (loss="full": B x S x V logits); the fused LM head tests (TRL's
chunked log-probs, the default) use `.with_(loss="fused")`.
"""

import inspect

import pytest

from estimators import terms as t
from estimators.model import ModelSpec
from estimators.setup import Setup

TINY = ModelSpec(name="tiny", model_type="llama", hidden_size=8, intermediate_size=16, num_layers=2, num_heads=2, num_kv_heads=1, vocab_size=32)
TIED = TINY.with_(tie_embeddings=True)
LORA = Setup(adaptation="lora", lora_r=2, micro_batch=1, seq_len=4, loss="full")  # bf16, dropout 0.05, checkpointing on
FULL = Setup(adaptation="full", micro_batch=1, seq_len=4, loss="full")  # bf16, checkpointing off
QLORA = Setup(adaptation="qlora", lora_r=2, micro_batch=1, seq_len=4, loss="full")
MIXED = FULL.with_(precision="bf16-mixed")


# --------------------------------------------------------------------------- dtypes
def test_dtypes():
    assert t.residual_bytes(LORA) == 2 and t.residual_bytes(MIXED) == 4 and t.residual_bytes(QLORA) == 4
    assert t.activation_bytes(LORA) == 2 and t.activation_bytes(FULL.with_(precision="fp32")) == 4
    assert t.weight_bytes_per_param(FULL) == 2 and t.weight_bytes_per_param(MIXED) == 4
    assert t.norm_weight_bytes(QLORA) == 4 and t.norm_weight_bytes(QLORA.with_(kbit_upcast=False)) == 2
    # Llama norm output = weight * x.to(input dtype): fp32 as soon as either is fp32
    assert t.norm_out_bytes(TINY, LORA) == 2 and t.norm_out_bytes(TINY, MIXED) == 4 and t.norm_out_bytes(TINY, QLORA) == 4
    # Linear4bit returns its input's dtype; other linears the autocast dtype
    assert t.base_out_bytes(QLORA, 4) == 4 and t.base_out_bytes(LORA, 4) == 2
    # under autocast an fp32 input is cast by each of 3 consumers: 3 x 2 bytes; a bf16 input is shared: 2
    assert t.kept_input(MIXED, 4, 3) == 6 and t.kept_input(FULL, 2, 3) == 2


# --------------------------------------------------------------------------- static terms
def test_lora_shapes():
    assert len(t.lora_linears(TINY, LORA)) == 7
    assert t.lora_params(TINY, LORA) == 512
    assert t.lora_params(TINY, LORA.with_(lora_targets="qv")) == 2 * (32 + 24)
    assert t.trainable_params(TINY, FULL) == 1704


def test_base_weights():
    assert t.base_weights(TINY, LORA) == 1704 * 2
    assert t.base_weights(TINY, MIXED) == 1704 * 4
    # 1152 4-bit weights at 0.5 + 1/64 + 4/(64*256) bytes = 594.28 -> 594; 552 others upcast to fp32 = 2208
    assert t.base_weights(TINY, QLORA) == 594 + 2208


def test_adapter_weights():
    assert t.adapter_weights(TINY, LORA) == 512 * 4  # fp32 A and B


def test_gradients():
    assert t.gradients(TINY, LORA) == 512 * 4
    assert t.gradients(TINY, FULL) == 1704 * 2


def test_optimizer_states():
    assert t.optimizer_states(TINY, LORA) == 2 * 512 * 4
    assert t.optimizer_states(TINY, FULL) == 2 * 1704 * 2
    assert t.optimizer_states(TINY, FULL.with_(optimizer="adamw8bit")) == int(2 * 1704 * (1 + 4 / 256))  # 3461
    assert t.optimizer_states(TINY, FULL.with_(optimizer="sgd")) == 0
    assert t.optimizer_states(TINY, FULL.with_(optimizer="sgd_momentum")) == 1704 * 2
    assert t.optimizer_states(TINY, FULL.with_(optimizer="lion")) == 1704 * 4


def test_adafactor_states():
    # rows + columns per matrix: q 16, k 12, v 12, o 16, gate 24, up 24, down 24 = 128 per layer -> 256;
    # embedding and head (32 + 8) each = 80; vectors in full = 40 norms; all fp32: 376 * 4
    assert t.adafactor_states(TINY, FULL.with_(optimizer="adafactor")) == 1504


def test_foreach_adamw_scratch():
    assert t.foreach_adamw_scratch(TINY, FULL) == 1704 * 2  # one state-sized tensor per parameter


def test_optimizer_step_temporaries():
    assert t.optimizer_step_temporaries(TINY, FULL) == 0  # fused AdamW
    # Adafactor, largest parameter V x h = 256: four fp32 copies for a bf16 parameter, two for fp32
    assert t.optimizer_step_temporaries(TINY, FULL.with_(optimizer="adafactor")) == 4 * 4 * 256
    assert t.optimizer_step_temporaries(TINY, FULL.with_(optimizer="adafactor", precision="fp32")) == 2 * 4 * 256


# --------------------------------------------------------------------------- activations, per token
def test_norm_saved():
    assert t.norm_saved(TINY, LORA, 3) == 4 * 8  # frozen: the fp32 input copy only
    assert t.norm_saved(TINY, FULL, 3) == (4 + 2 + 2) * 8  # + normalised bf16 + output shared by q, k, v
    assert t.norm_saved(TINY, MIXED, 3) == (4 + 4 + 3 * 2) * 8  # fp32 output cast once per consumer
    gemma = TINY.with_(model_type="gemma2", norms_per_layer=4)
    assert t.norm_saved(gemma, FULL, 0) == (4 + 4) * 8  # Gemma keeps the normalised tensor in fp32


def test_layer_norms_saved():
    assert t.layer_norms_saved(TINY, FULL) == (8 + 8) * 8  # both outputs bf16, shared by their consumers
    assert t.layer_norms_saved(TINY, MIXED) == (14 + 12) * 8  # 3 copies before attention, 2 before the MLP


def test_attention_kernel():
    assert t.attention_kernel(TINY, LORA) == "flash"
    assert t.attention_kernel(TINY, LORA.with_(attention="eager")) == "eager"
    assert t.attention_kernel(TINY, FULL.with_(precision="fp32")) == "eager"  # GQA in fp32: SDPA math path
    assert t.attention_kernel(TINY.with_(num_kv_heads=2), FULL.with_(precision="fp32")) == "flash"


def test_attention_saved():
    assert t.attention_saved(TINY, LORA) == 2 * (2 * 8 + 2 * 4) + 4 * 2  # q, out, k, v in bf16, fp32 lse: 56
    # eager, full: q, K and V repeated to 2 heads (8 wide each), the transposed output copy
    assert t.attention_saved(TINY, FULL.with_(attention="eager")) == 2 * (8 + 2 * 8) + 2 * 8


def test_eager_scores_saved():
    assert t.eager_scores_saved(TINY, LORA) == 0
    assert t.eager_scores_saved(TINY, LORA.with_(attention="eager")) == 2 * 4 * 4 * (4 + 2)  # fp32 + bf16 probs


def test_eager_mask():
    assert t.eager_mask(TINY, LORA.with_(attention="eager")) == 1 * 4 * 4 * 2


def test_mlp_saved():
    assert t.mlp_saved(TINY, LORA) == 3 * 2 * 16  # gate, activation, up; the product feeds a frozen down_proj
    assert t.mlp_saved(TINY, FULL) == 4 * 2 * 16
    assert t.mlp_saved(TINY, QLORA) == 3 * 4 * 16  # 4-bit linears return the fp32 input dtype
    gpt2 = TINY.with_(model_type="gpt2", gated_mlp=False, norm="layer")
    # fp32 copy kept by pow, tanh, 1 + tanh, 0.5 * x (bf16), c_proj's cast copy (bf16)
    assert t.mlp_saved(gpt2, FULL) == (4 + 4 + 4 + 2) * 16 + 2 * 16


def test_dropout_saved():
    assert t.dropout_saved(TINY, FULL) == 0
    assert t.dropout_saved(TINY.with_(model_type="gpt2", resid_dropout=True), FULL) == 2 * 8  # a spec field since issue 15


def test_lora_saved():
    # per wrapped linear: 1-byte mask + bf16 input copy per input feature, bf16 lora_A output (rank 2)
    assert t.lora_saved(TINY, LORA) == 6 * (3 * 8 + 2 * 2) + (3 * 16 + 2 * 2)
    assert t.lora_saved(TINY, LORA.with_(lora_dropout=0.0)) == 6 * (2 * 8 + 4) + (2 * 16 + 4)


def test_qlora_branches_share_their_input_under_autocast():
    """peft's bitsandbytes LoRA layers skip the fp32 cast under autocast: without dropout a bf16 input is kept once
    (attention norm output for q/k/v, MLP norm output for gate/up, the product for down; o_proj's is the attention
    output the kernel keeps) plus each lora_A output; after the k-bit upcast (fp32 input) each branch gets
    autocast's bf16 copy; with dropout each branch keeps its dropout output and mask."""
    bf16_in = QLORA.with_(kbit_upcast=False, lora_dropout=0.0)
    assert t.lora_saved(TINY, bf16_in) == (2 * 8 + 2 * 8 + 2 * 16) + 7 * 2 * 2
    upcast = QLORA.with_(lora_dropout=0.0)  # o_proj still reads the bf16 attention output: no copy
    assert t.lora_saved(TINY, upcast) == 5 * (2 * 8 + 4) + 4 + (2 * 16 + 4)
    assert t.lora_saved(TINY, QLORA.with_(kbit_upcast=False)) == 6 * (3 * 8 + 2 * 2) + (3 * 16 + 2 * 2)


# --------------------------------------------------------------------------- activations, whole batch
def test_layer_saved():
    per_token = 2 * 32 + 56 + 96 + 220
    assert t.layer_saved(TINY, LORA) == per_token * 4


def test_checkpoint_saved():
    assert t.checkpoint_saved(TINY, LORA) == 2 * 8 * 4
    assert t.checkpoint_saved(TINY, QLORA) == 4 * 8 * 4


def test_stack_activations():
    assert t.stack_activations(TINY, LORA) == 2 * 64 + 4 * 8 * 4  # two checkpoints and the final norm's fp32 copy
    per_layer = ((8 + 8) * 8 + 56 + 128) * 4
    assert t.stack_activations(TINY, FULL) == 2 * per_layer + 8 * 8 * 4


def test_layer_forward_transient():
    # down_proj's LoRA branch: the bf16 product (kept by no frozen op), its fp32 copy and the fp32 dropout
    # output: (2 + 4 + 4) * 16 per token
    assert t.layer_forward_transient(TINY, LORA) == 10 * 16 * 4
    assert t.layer_forward_transient(TINY, FULL) == 0
    # QLoRA down_proj: fp32 product + dropout output (its fp32 "copy" is free): (4 + 4) * 16 * 4 = 512, or the base
    # step: product 4*16*4 + bf16 cast 2*16*4 + dequantised 16x8 weight in bf16 = 256 + 128 + 256 = 640
    assert t.layer_forward_transient(TINY, QLORA) == 640


def test_recompute_layer():
    assert t.recompute_layer(TINY, LORA) == t.layer_saved(TINY, LORA) + 640
    assert t.recompute_layer(TINY, LORA.with_(grad_ckpt=False)) == 0


def test_backward_grad_buffers():
    assert t.backward_grad_buffers(TINY, LORA) == (2 + 4) * 8 * 4


def test_head_and_embedding_gradients():
    assert t.head_gradients(TINY, FULL) == (256 + 8) * 2
    assert t.head_gradients(TINY, LORA) == 0
    assert t.embedding_gradient(TINY, FULL) == 256 * 2 and t.embedding_gradient(TIED, FULL) == 0
    assert t.tied_embedding_transient(TIED, FULL) == 2 * 256 * 2 and t.tied_embedding_transient(TINY, FULL) == 0


def test_layer_gradients():
    assert t.layer_gradients(TINY, FULL) == (1704 - 512) // 2 * 2
    assert t.layer_gradients(TINY, LORA) == 256 * 4


def test_layer_backward_scratch():
    assert t.layer_backward_scratch(TINY, FULL) == (3 * 2 * 16 + 2 * 4 * 8) * 4


def test_logits():
    assert t.logits_forward(TINY, LORA) == 4 * 32 * (2 + 4 + 4)  # bf16 logits, fp32 upcast, log-softmax
    assert t.logits_backward(TINY, LORA) == 12 * 4 * 32
    capped = TINY.with_(logit_softcap=30.0)
    assert t.logit_softcap_saved(capped, LORA) == 4 * 32 * 2
    assert t.logits_forward(capped, LORA) == t.logits_forward(TINY, LORA) + 256


# --------------------------------------------------------------------------- the fused LM head (TRL)
F_LORA, F_FULL, F_QLORA, F_MIXED = (s.with_(loss="fused") for s in (LORA, FULL, QLORA, MIXED))
TILE = 4 * 32768 * 2  # the fused head's logits tile for T = 4 in bf16


def test_fused_head_switch():
    assert t.fused_head(Setup()) and not t.fused_head(LORA)  # fused is the default: what generated scripts run
    assert t.head_weight_bytes(F_LORA) == 2 and t.head_weight_bytes(F_MIXED) == 4
    assert t.head_weight_bytes(F_QLORA) == 4 and t.head_weight_bytes(F_QLORA.with_(kbit_upcast=False)) == 2


def test_fused_tile():
    # [min(T, 4096) x 32768] in bf16: TRL allocates the full chunk width even for a 32-word vocabulary
    assert t.fused_tile(TINY, F_LORA) == 4 * 32768 * 2 == TILE
    assert t.fused_tile(TINY, F_LORA, scored=2) == 2 * 32768 * 2
    assert t.fused_tile(TINY, F_LORA.with_(precision="fp32")) == 4 * 32768 * 4  # no autocast: the hidden dtype
    llama3 = TINY.with_(vocab_size=128256)
    assert t.fused_tile(llama3, F_LORA.with_(seq_len=8192)) == 4096 * 32768 * 2  # one tile, reused


def test_fused_chunk_casts():
    assert t.fused_chunk_casts(TINY, F_LORA) == 0  # bf16 head and hidden states: no copies
    # fp32 head (QLoRA's upcast, mixed-precision masters): a 32 x 8 vocabulary chunk in bf16 = 512; fp32 hidden
    # states (fp32 norm weight / residual): a 4 x 8 token chunk in bf16 = 64
    assert t.fused_chunk_casts(TINY, F_QLORA) == 512 + 64
    assert t.fused_chunk_casts(TINY, F_MIXED) == 512 + 64
    assert t.fused_chunk_casts(TINY, F_QLORA.with_(kbit_upcast=False)) == 0


def test_fused_head_saved():
    # per token: hidden (8 x bf16), int64 target, fp32 log-normaliser and entropy
    assert t.fused_head_saved(TINY, F_LORA) == 4 * (8 * 2 + 8 + 4 + 4)
    assert t.fused_head_saved(TINY, F_QLORA) == 4 * (8 * 4 + 16)  # fp32 final-norm output
    assert t.fused_head_saved(TINY, F_LORA, scored=1) == 8 * 2 + 16


def test_fused_head_forward():
    # last hidden state 4 x 8 x 2 = 64, the tile, 9 fp32 per-token vectors 4 x 36 = 144
    assert t.fused_head_forward(TINY, F_LORA) == 64 + TILE + 144
    assert t.fused_head_forward(TINY, F_QLORA) == 4 * 8 * 4 + TILE + 576 + 144
    # GRPO: the last hidden state spans every token, the rest the scored ones
    assert t.fused_head_forward(TINY, F_LORA, scored=2) == 64 + TILE // 2 + 72


def test_fused_head_backward():
    # fp32 hidden gradient + its bf16 cast 4 x 8 x 6 = 192, the tile, incoming fp32 gradient 16; frozen head
    assert t.fused_head_backward(TINY, F_LORA) == 192 + TILE + 16
    # trained head: fp32 weight gradient + its bf16 cast 32 x 8 x 6 = 1536
    assert t.fused_head_backward(TINY, F_FULL) == 192 + 1536 + TILE + 16
    # mixed: fp32 hidden and weight, so no .to() copies (128 + 1024), but the chunk casts (576)
    assert t.fused_head_backward(TINY, F_MIXED) == 128 + 1024 + TILE + 576 + 16


def test_fused_head_replaces_the_head_copies():
    assert t.head_weight_copy(TINY, F_QLORA) == 0  # cast chunk by chunk, not by autocast
    assert t.autocast_weight_copies(TINY, F_MIXED) == 1152 * 2  # decoder linears only, not the head
    assert t.autocast_copies_in_backward(TINY, F_MIXED.with_(grad_ckpt=True)) == 0
    # the final norm's output is kept by the fused head (fused_head_saved), not by a trained lm_head's matmul
    assert t.stack_activations(TINY, FULL) - t.stack_activations(TINY, F_FULL) == 2 * 8 * 4
    assert t.stack_activations(TINY, LORA) == t.stack_activations(TINY, F_LORA)


def test_dequant_scratch():
    assert t.dequant_scratch(TINY, QLORA) == 8 * 16 * 2  # the largest linear (gate/up/down), bf16
    assert t.dequant_scratch(TINY, LORA) == 0


def test_head_weight_copy():
    assert t.head_weight_copy(TINY, QLORA) == 32 * 8 * 2
    assert t.head_weight_copy(TINY, QLORA.with_(kbit_upcast=False)) == 0


def test_autocast_copies():
    assert t.autocast_weight_copies(TINY, MIXED) == (1152 + 256) * 2
    assert t.autocast_weight_copies(TINY, FULL) == 0
    assert t.autocast_copies_in_backward(TINY, MIXED) == (1152 + 256) * 2  # no checkpointing: all kept
    assert t.autocast_copies_in_backward(TINY, MIXED.with_(grad_ckpt=True)) == 256 * 2  # only the head's
    assert t.layer_weight_copies(TINY, MIXED) == 576 * 2
    assert t.autocast_copies_in_layers(TINY, MIXED) == 1152 * 2
    assert t.autocast_copies_in_layers(TINY, MIXED.with_(grad_ckpt=True)) == 576 * 2


def test_every_term_says_what_it_models():
    public = [f for name, f in inspect.getmembers(t, inspect.isfunction) if f.__module__ == t.__name__ and not name.startswith("_")]
    missing = [
        f.__name__
        for f in public
        if not (f.__doc__ or "").strip() and f.__name__ not in ("residual_bytes", "activation_bytes", "trainable_params", "trainable_bytes_per_param")
    ]
    assert missing == []


@pytest.mark.parametrize("setup", [LORA, FULL, QLORA, MIXED, F_LORA, F_FULL, F_QLORA, F_MIXED])
def test_phases_add_up(setup):
    from estimators import estimate

    est = estimate(TINY, setup)
    assert est.peak_allocated == max(sum(v.bytes for v in p) for p in est.phases.values())
