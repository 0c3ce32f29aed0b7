"""Floating-point operations of one training step, term by term, on plain numbers (no torch).

A matmul of an [M x K] by a [K x N] matrix is 2·M·K·N FLOPs (one multiply and one add per term), the convention of
torch.utils.flop_counter.FlopCounterMode, which tests/test_time_flops.py checks these counts against on tiny
models. Shapes come from estimators/params.py (`layer_linears`) and estimators/terms.py (`lora_linears`,
`lora_factors`): nothing here re-derives an architecture.

Per linear layer y = x·Wᵀ over T tokens (Narayanan et al. 2021, arXiv:2104.04473, §5.1):
  forward                 2·T·in·out
  backward, input grad    2·T·in·out   (always: the layers below need it)
  backward, weight grad   2·T·in·out   (only if W is trained: a frozen weight needs none, which is LoRA's saving)
Attention scores and values: 2·S·S·d for QKᵀ and the same for P·V per sequence (d = heads x head size); a causal
flash kernel skips the masked upper triangle, half of it. Flash backward recomputes the scores: 5 matmuls of the
forward's 2, i.e. 2.5x the forward (Dao 2023, FlashAttention-2, arXiv:2307.08691, §3.1.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import ModelSpec
from .params import Linear, layer_linears
from .setup import Setup
from .terms import lora_factors, lora_linears, lora_rank, wrapped_parameter

FLASH_BACKWARD_RATIO = 2.5  # FlashAttention-2 §3.1.2: backward = 5 of the forward's 2 matmuls (scores recomputed)
EAGER_BACKWARD_RATIO = 2.0  # eager attention: each of its two batched matmuls has two gradients, nothing recomputed


@dataclass(frozen=True)
class Matmul:
    """One matmul shape [M x K] x [K x N], `count` times (experts, LoRA factors)."""

    name: str
    m: float  # rows: tokens, or an expert's average share of them (T·k/E, not a whole number)
    k: int
    n: int
    count: int = 1

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n * self.count


def active_linears(m: ModelSpec) -> list[Linear]:
    """The linears one token passes through in a decoder layer: for a MoE layer, its top-k routed experts."""
    return layer_linears(m, m.experts_per_token) if m.is_moe else layer_linears(m)


def active_linears_routed(m: ModelSpec) -> list[Linear]:
    """Every linear of a decoder layer, experts with their full count (each sees its routed share of the tokens)."""
    return layer_linears(m)


def linear_matmuls(m: ModelSpec, tokens: float) -> list[Matmul]:
    """The forward matmuls of one decoder layer's linears over `tokens` tokens, in `active_linears_routed` order.
    An expert sees the tokens routed to it: T·k/E on average, so E experts cost T·k tokens' worth of FLOPs."""
    out = []
    for lin in active_linears_routed(m):
        rows = tokens * m.experts_per_token / m.num_experts if lin.group == "expert" else tokens
        out.append(Matmul(lin.name, rows, lin.in_features, lin.out_features, lin.count))
    return out


def lora_matmuls(m: ModelSpec, setup: Setup, tokens: int) -> list[Matmul]:
    """The forward matmuls of LoRA in one decoder layer: x·Aᵀ (T x in -> T x r), then ·Bᵀ (-> T x out). An expert's
    adapter sees only the tokens routed to it (top-k of E experts: T·k/E on average). A wrapped raw parameter
    (transformers 5 fused experts, `terms.wrapped_parameter`) instead merges B·A into a copy of the weight on every
    forward: one [out x r] x [r x in] matmul per expert, whatever the token count."""
    out: list[Matmul] = []
    if setup.adaptation == "full":
        return out
    for lin in lora_linears(m, setup):
        if wrapped_parameter(lin):
            r = lora_rank(m, lin, setup)
            out.append(Matmul(f"{lin.name}.lora_merge", lin.out_features, r, lin.in_features, lin.count))
            continue
        routed = tokens * m.experts_per_token / m.num_experts if lin.group == "expert" else tokens
        factors = lora_factors(m, lin, setup)
        for (r, fan_in), (fan_out, _) in zip(factors[0::2], factors[1::2], strict=False):
            out.append(Matmul(f"{lin.name}.lora_A", routed, fan_in, r))
            out.append(Matmul(f"{lin.name}.lora_B", routed, r, fan_out))
    return out


def layer_linear_flops(m: ModelSpec, tokens: int) -> float:
    """Forward FLOPs of one layer's linears over `tokens` tokens."""
    return sum(mm.flops for mm in linear_matmuls(m, tokens))


def attention_flops(m: ModelSpec, batch: int, seq: int, causal: bool = True) -> float:
    """Forward FLOPs of QKᵀ and P·V in one layer for `batch` sequences of `seq` tokens. A sliding window caps the
    keys each query sees; `causal` (a flash kernel) computes about half the S x S scores. Eager attention computes
    them all and masks afterwards: `causal=False`."""
    keys = min(seq, m.sliding_window) if m.sliding_window else seq
    full = 2 * 2.0 * batch * seq * keys * m.q_width
    if not causal:
        return full
    if keys < seq:  # each query sees min(position, window) keys
        return full * (1 - keys / (2 * seq))
    return full / 2


def head_flops(m: ModelSpec, tokens: int) -> float:
    """Forward FLOPs of the output head (hidden -> vocabulary logits) over `tokens` scored tokens."""
    return 2.0 * tokens * m.hidden_size * m.vocab_size


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one micro-batch's forward and backward, by term (all layers)."""

    linear_forward: float
    linear_backward_input: float
    linear_backward_weight: float
    lora: float  # forward + both backward matmuls of every LoRA factor
    attention_forward: float
    attention_backward: float
    recompute: float  # gradient checkpointing: the layers' forward again (linears, LoRA, attention)
    head: float  # forward, input gradient and (full fine-tuning) weight gradient of the output head

    @property
    def total(self) -> float:
        return (
            self.linear_forward
            + self.linear_backward_input
            + self.linear_backward_weight
            + self.lora
            + self.attention_forward
            + self.attention_backward
            + self.recompute
            + self.head
        )


def step_flops(
    m: ModelSpec,
    setup: Setup,
    batch: int | None = None,
    seq: int | None = None,
    scored: int | None = None,
    causal: bool = True,
    flash: bool | None = None,
) -> StepFlops:
    """FLOPs of forward + backward of one micro-batch (`batch` x `seq`, default the setup's), `scored` tokens through
    the head (default all). `causal`: half the S x S scores; `flash`: the flash kernel's backward (recomputes the
    scores), by default causal's (an encoder runs flash without the causal half)."""
    b = setup.micro_batch if batch is None else batch
    s = setup.seq_len if seq is None else seq
    tokens = b * s
    scored = tokens if scored is None else scored
    L = m.num_layers
    fwd = L * layer_linear_flops(m, tokens)
    trained = setup.adaptation == "full"
    lora = 3 * L * sum(mm.flops for mm in lora_matmuls(m, setup, tokens))  # forward, input grad, weight grad
    attn = L * attention_flops(m, b, s, causal)
    recompute = (fwd + lora / 3 + attn) if setup.checkpointing else 0.0
    head = head_flops(m, scored) * (3 if trained else 2)
    ratio = FLASH_BACKWARD_RATIO if (causal if flash is None else flash) else EAGER_BACKWARD_RATIO
    return StepFlops(fwd, fwd, fwd if trained else 0.0, lora, attn, attn * ratio, recompute, head)


def forward_flops(m: ModelSpec, setup: Setup, batch: int, seq: int, scored: int | None = None) -> float:
    """FLOPs of a forward pass alone (a frozen reference model, reward scoring, a prefill)."""
    tokens = batch * seq
    lora = sum(mm.flops for mm in lora_matmuls(m, setup, tokens))
    return m.num_layers * (layer_linear_flops(m, tokens) + lora + attention_flops(m, batch, seq)) + head_flops(
        m, tokens if scored is None else scored
    )
