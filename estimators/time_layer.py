"""The time of one decoder layer's pass and of one micro-batch's forward and backward, term by term (pure Python).

Bytes moved are counted from the Hugging Face modelling code the memory model reads (estimators/terms.py): every
unfused elementwise op reads its inputs and writes its output once. The per-op counts are in estimators/time_bytes.py;
backward elementwise work is taken as twice the forward's (gradients read the saved input and the incoming
gradient and write one gradient per input). A decoder layer is also bounded below by the CPU time to launch its
kernels (eager PyTorch), which is what small micro-batches hit. estimators/timing.py sums these into a step.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import flops as fl
from . import terms as t
from .adapter_prompt_terms import adapted_layers
from .dtypes import four_bit_bytes_per_param
from .model import ModelSpec
from .roofline import Constants, Roof, attention_time, dispatch_time, matmul_time, memory_time
from .setup import Setup, save_module_names
from .time_adapter_prompt import adapter_pass, backward_layers
from .time_bytes import layer_elementwise_bytes, layer_kernels, lora_elementwise_bytes, norm_bytes
from .time_dora import dora_pass
from .time_step_terms import autocast_casts, fsdp_units

BACKWARD_ELEMENTWISE = 2.0  # backward elementwise bytes per forward byte (reads saved input + gradient, writes one)
BACKWARD_KERNELS = 2.0  # autograd launches about two kernels per forward op (grad of each input, accumulation)
HEAD_KERNELS = 12  # final norm, head matmul, upcast, log-softmax, gather, mean (HF ForCausalLMLoss), and backward
# Bytes per logit of the loss, forward and backward. HF ForCausalLMLoss: logits written (a), upcast (a in, 4 out),
# log-softmax (4 in, 4 out), its backward (4 + 4 in, 4 out) and the cast of the gradient (4 in, a out): 28 + 3a.
# TRL's fused chunked log-prob head keeps the [4096 x 32768] tile in cache-sized chunks: the tile is written
# and read once in forward and recomputed in backward (4a).
FULL_LOSS_BYTES = 28


# ------------------------------------------------------------------------------------------------ one layer
@dataclass(frozen=True)
class Pass:
    """The GPU time of one decoder layer pass over a micro-batch, split by what bounds it."""

    matmul: float
    attention: float
    elementwise: float
    kernels: float

    def gpu(self) -> float:
        return self.matmul + self.attention + self.elementwise

    def plus(self, extra: tuple[float, float, float], share: float = 1.0) -> "Pass":
        """This pass with an option's (matmul s, elementwise s, kernels) added, `share` of it per layer."""
        mat, elem, kernels = extra
        return Pass(self.matmul + share * mat, self.attention, self.elementwise + share * elem, self.kernels + share * kernels)


def _weight_read_bytes(m: ModelSpec, setup: Setup, lin) -> float:
    """Bytes of one linear's weight a matmul reads: the compute-dtype copy (for QLoRA the dequantised one)."""
    return lin.in_features * lin.out_features * lin.count * setup.compute_bytes


def _linears_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, weight_grad: bool, backward: bool) -> float:
    a = setup.compute_bytes
    fp32 = setup.precision == "fp32"
    total = 0.0
    for mm, lin in zip(fl.linear_matmuls(m, tokens), fl.active_linears_routed(m), strict=False):
        nbytes = mm.count * (mm.m * mm.k + mm.m * mm.n) * a + _weight_read_bytes(m, setup, lin)
        one = matmul_time(roof, c, mm.flops, mm.m, nbytes, fp32)
        total += one * ((1 + (1 if weight_grad else 0)) if backward else 1)
    return total


def _lora_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, backward: bool) -> float:
    total = 0.0
    fp32 = not t.uses_autocast(setup)  # outside autocast peft runs the branch in the adapters' fp32
    for mm in fl.lora_matmuls(m, setup, tokens):
        nbytes = mm.count * (mm.m * mm.k + mm.k * mm.n + mm.m * mm.n) * (4 if fp32 else setup.compute_bytes)
        one = matmul_time(roof, c, mm.flops, mm.m, nbytes, fp32)
        total += one * (2 if backward else 1)  # backward: input grad and weight grad
    return total


def _dequant_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants) -> float:
    """bitsandbytes dequantises every 4-bit weight before each matmul that uses it: packed weight and constants
    read, compute-dtype copy written (bytes per use; not per token)."""
    if setup.adaptation != "qlora":
        return 0.0
    params = sum(lin.weight_params for lin in fl.active_linears_routed(m) if lin.module)
    return memory_time(roof, c, params * (four_bit_bytes_per_param(setup.double_quant) + setup.compute_bytes))


def layer_pass(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, backward: bool, lora: bool = True) -> Pass:
    """One decoder layer's forward (backward=False) or backward over `batch` x `seq` tokens."""
    tokens = batch * seq
    trained = setup.adaptation == "full"
    s = setup if lora else setup.without_adapter()  # a reference forward with the adapter disabled
    mat = _linears_time(m, setup, roof, c, tokens, trained, backward)
    if lora and setup.adaptation != "full":
        mat += _lora_time(m, setup, roof, c, tokens, backward)
    mat += _dequant_time(m, setup, roof, c)
    a = setup.compute_bytes
    aflops = fl.attention_flops(m, batch, seq, t.causal_attention(m, setup))
    if t.attention_kernel(m, setup) != "eager":
        io = tokens * (2 * m.q_width + 2 * m.kv_width) * a
        attn = attention_time(roof, c, aflops * (fl.FLASH_BACKWARD_RATIO if backward else 1), io * (2 if backward else 1))
    else:  # eager: S x S scores written, fp32 softmax read and written, cast, read by P·V
        keys = min(seq, m.sliding_window) if m.sliding_window else seq
        scores = batch * m.num_heads * seq * keys * (a + 4 + 4 + a + a)
        attn = max(
            aflops * (2 if backward else 1) / (roof.peak_flops * c.matmul_efficiency),
            memory_time(roof, c, scores * (BACKWARD_ELEMENTWISE if backward else 1)),
        )
    elem = tokens * layer_elementwise_bytes(m, setup)
    if lora and setup.adaptation != "full":
        elem += tokens * lora_elementwise_bytes(m, setup)
    elem = memory_time(roof, c, elem * (BACKWARD_ELEMENTWISE if backward else 1))
    kernels = layer_kernels(m, setup if lora else s) * (BACKWARD_KERNELS if backward else 1)
    return Pass(mat, attn, elem, kernels).plus(dora_pass(m, s, roof, c, tokens, backward, BACKWARD_ELEMENTWISE))  # 0 without DoRA


def _bounded(p: Pass, c: Constants, layers: int) -> tuple[float, float]:
    """(GPU time, launch time) of `layers` identical passes: the GPU waits on the CPU when launching is slower."""
    gpu, launch = layers * p.gpu(), layers * dispatch_time(c, p.kernels)
    return gpu, launch


# ------------------------------------------------------------------------------------------------ a micro-batch
def _head_time(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, tokens: int, scored: int, backward: bool, vocab: int | None = None) -> float:
    """The output head and the loss over `scored` tokens: the logits matmul (and its backward: input gradient,
    weight gradient when the head trains: full fine-tuning, or its modules_to_save copy) and the loss's elementwise
    bytes per logit."""
    v = m.vocab_size if vocab is None else vocab
    a = setup.compute_bytes
    h = m.hidden_size
    fp32 = setup.precision == "fp32"
    flops = 2.0 * scored * h * v
    nbytes = (scored * h + h * v + scored * v) * a
    one = matmul_time(roof, c, flops, scored, nbytes, fp32)
    trained = setup.adaptation == "full" or "lm_head" in save_module_names(setup)  # modules_to_save trains a copy
    passes = 1 + ((2 if trained else 1) if backward else 0)
    # the HF loss materialises fp32 logits; TRL's fused head and the stacks' chunked losses work in tiles
    per_logit = (FULL_LOSS_BYTES + 3 * a) if setup.loss == "full" else 4 * a
    loss = memory_time(roof, c, scored * v * per_logit * (1 if backward else 0.5)) if v > 1 else 0.0
    norm = memory_time(roof, c, tokens * norm_bytes(m, setup, h) * (1 + (BACKWARD_ELEMENTWISE if backward else 0)))
    return one * passes + loss + norm


def _layer_passes(m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int) -> tuple[Pass, Pass, int]:
    """A layer's forward and backward (the mean over the layers) and how many layers backward runs over: all, or for
    LLaMA-Adapter the frozen base with the adapter's work in its layers (estimators/time_adapter_prompt.py)."""
    if not setup.llama_adapter:
        return layer_pass(m, setup, roof, c, batch, seq, False), layer_pass(m, setup, roof, c, batch, seq, True), m.num_layers
    n, back = adapted_layers(m, setup), backward_layers(m, setup)
    fwd = layer_pass(m, setup, roof, c, batch, seq, False, lora=False).plus(adapter_pass(m, setup, roof, c, batch, seq, False), n / m.num_layers)
    bwd = layer_pass(m, setup, roof, c, batch, seq, True, lora=False).plus(adapter_pass(m, setup, roof, c, batch, seq, True), n / back)
    return fwd, bwd, back


def train_micro_batch(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, scored: int | None = None, vocab: int | None = None
) -> dict[str, tuple[float, str]]:
    """Forward and backward of one micro-batch of `batch` x `seq` tokens, by term: {name: (seconds, bound)}."""
    L = m.num_layers
    tokens = batch * seq
    scored = tokens if scored is None else scored
    fwd, bwd, back = _layer_passes(m, setup, roof, c, batch, seq)
    passes = [("forward", fwd, L), ("backward", bwd, back)]
    if setup.checkpointing:
        passes.append(("checkpoint recompute", fwd, L))
    out: dict[str, tuple[float, str]] = {}
    launch_total = 0.0
    for name, p, layers in passes:
        gpu, launch = _bounded(p, c, layers)
        launch_total += launch
        out[f"{name}: matmuls"] = (layers * p.matmul, "compute")
        out[f"{name}: attention"] = (layers * p.attention, "compute")
        out[f"{name}: elementwise"] = (layers * p.elementwise, "memory")
    head = _head_time(m, setup, roof, c, tokens, scored, True, vocab) if vocab != 0 else 0.0
    out["LM head and loss"] = (head, "compute")
    launch_total += dispatch_time(c, HEAD_KERNELS * (1 + BACKWARD_KERNELS))
    launch_total += fsdp_units(m, setup) * len(passes) * c.fsdp_unit_s  # FSDP's per-unit hooks run on the host too
    gpu_total = sum(s for s, _ in out.values())
    out["host-bound stalls (kernel launches, FSDP hooks)"] = (max(0.0, launch_total - gpu_total), "launch")
    out.update(autocast_casts(m, setup, roof, c))
    return out


def forward_only(
    m: ModelSpec, setup: Setup, roof: Roof, c: Constants, batch: int, seq: int, lora: bool = True, scored: int | None = None, vocab: int | None = None
) -> float:
    """A no-grad forward (reference model, reward/value scoring, a prefill): layers, head, launch floor."""
    p = layer_pass(m, setup, roof, c, batch, seq, backward=False, lora=lora)
    gpu, launch = _bounded(p, c, m.num_layers)
    tokens = batch * seq
    head = 0.0 if vocab == 0 else _head_time(m, setup, roof, c, tokens, tokens if scored is None else scored, False, vocab)
    return max(gpu + head, launch + dispatch_time(c, HEAD_KERNELS) + fsdp_units(m, setup) * c.fsdp_unit_s)
