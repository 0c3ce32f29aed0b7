"""Memory terms that depend on the training stack (`Setup.stack`) or on a library version (`Setup.versions`).

estimators/terms.py prices what the pinned stack allocates (TRL 1.16 on transformers 5.24, peft 0.21,
bitsandbytes 0.50, torch 2.13). Each behaviour here is a row of rules/stacks.toml ([[behaviour]]: the package, the
version range, the stacks, the source line) and a function below that re-prices the SFT phases where that stack or
version allocates differently. Every function's docstring gives the range and the line of the library source it
was read from (wheels downloaded with `pip download <pkg>==<version> --no-deps`, read, never installed).

A behaviour returns `Change`s: "set" a term's bytes, "delta" add to a term, or "add" a new term to some phases.
`apply()` runs the applicable ones over an Estimate's phases and finds the peak again.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from functools import cache

from . import terms as t
from .errors import EstimateError
from .option_terms import PRICES as OPTION_PRICES
from .model import ModelSpec
from .result import LOGITS_BACKWARD, LOGITS_FORWARD  # the HF causal-LM loss terms estimators/sft.py prices for --loss full
from .setup import Setup
from .tables import rules_path
from .versions import in_range, version_of

GIB = 1 << 30
HF_STACKS = ("trl", "hf-trainer", "axolotl", "llama-factory", "unsloth")  # the loop is transformers.Trainer

# torchtune 0.6.1 torchtune/modules/loss/ce_chunked_output_loss.py:30 `num_output_chunks: int = 8`
TORCHTUNE_OUTPUT_CHUNKS = 8
# litgpt 0.5.13 litgpt/finetune/lora.py:355 `logits = model(input_ids, lm_head_chunk_size=128)`
LITGPT_HEAD_CHUNK = 128
# unsloth_zoo 2026.10.9 fused_losses/chunked_logprob.py:47-49: `_BYTES_PER_LOGIT = 8.0`, `_CHUNK_GB = 2.0`,
# `_MIN_ROWS = 512`; chunked_logprob_rows: rows = min(2 GiB / (V x 8), max(512, ceil(N / 8)))
UNSLOTH_BYTES_PER_LOGIT, UNSLOTH_CHUNK_BYTES, UNSLOTH_MIN_ROWS = 8, 2 * GIB, 512
# unsloth_zoo 2026.10.9 gradient_checkpointing.py:1305-1313: GPU_BUFFERS and (double buffering) GPU_BUFFERS_B,
# one staging buffer each for the checkpoint being brought back from host RAM.
UNSLOTH_GPU_STAGING = 2
UNSLOTH_MIN_OFFLOAD = 2 * (1 << 20)  # gradient_checkpointing.py:1326 `MINIMUM_SIZE = 2 * 1024 * 1024` bytes


@dataclass(frozen=True)
class Change:
    kind: str  # "set" | "delta" | "add"
    term: str  # the term it sets / changes / adds
    nbytes: int
    note: str
    phases: tuple[str, ...] = ()  # () = every phase that holds the term; for "add" the phases to add it to
    category: str = "temporaries"  # for "add"


@dataclass(frozen=True)
class Behaviour:
    id: str
    package: str  # "" = the stack itself, whatever the versions
    versions: str  # a range for estimators.versions.in_range ("" = any)
    stacks: tuple[str, ...]
    summary: str
    source: str
    option: str = ""  # a Setup field that must be set (estimators/option_terms.py), "" = none


@cache
def behaviours() -> tuple[Behaviour, ...]:
    data = tomllib.loads(rules_path("stacks.toml").read_text(encoding="utf-8"))
    rows = tuple(Behaviour(r["id"], r.get("package", ""), r.get("versions", ""), tuple(r["stacks"]), r["summary"], r["source"],
                           r.get("option", "")) for r in data.get("behaviour", []))
    missing = [b.id for b in rows if b.id not in PRICES]
    if missing:
        raise EstimateError(f"rules/stacks.toml behaviours without a pricing function: {', '.join(missing)}")
    return rows


def applies(b: Behaviour, setup: Setup) -> bool:
    """Whether a behaviour's stack and version range match the set-up (the priced version: given, else pinned)."""
    if setup.stack not in b.stacks or (b.option and not getattr(setup, b.option)):
        return False
    if not b.package:
        return True
    version = version_of(setup.versions, b.package)
    return bool(version) and in_range(version, b.versions)


def changes_for(m: ModelSpec, setup: Setup) -> list[tuple[Behaviour, list[Change]]]:
    out = []
    for b in behaviours():
        if applies(b, setup):
            changes = PRICES[b.id](m, setup)
            if changes:
                out.append((b, changes))
    return out


def applied(m: ModelSpec, setup: Setup) -> list[dict]:
    """The behaviours that changed an estimate, for its output."""
    return [{"id": b.id, "summary": b.summary, "package": b.package, "versions": b.versions, "source": b.source}
            for b, _ in changes_for(m, setup)]


def apply(est):
    """`est` (an estimators.result.Estimate of single-GPU SFT) with its stack's and versions' behaviours priced."""
    found = changes_for(est.model, est.setup)
    if not found:
        return est
    phases = {name: list(values) for name, values in est.phases.items()}
    host = est.host_offload_bytes
    for b, changes in found:
        for ch in changes:
            if ch.kind == "host":
                host += ch.nbytes
                continue
            for name, values in phases.items():
                if ch.phases and name not in ch.phases:
                    continue
                if ch.kind == "add":
                    values.append(t.TermValue(ch.term, ch.category, int(ch.nbytes), f"{ch.note} [{b.id}]"))
                    continue
                for i, v in enumerate(values):
                    if v.name != ch.term:
                        continue
                    nbytes = ch.nbytes if ch.kind == "set" else v.bytes + ch.nbytes
                    values[i] = t.TermValue(v.name, v.category, max(0, int(nbytes)), f"{ch.note} [{b.id}]")
    frozen = {k: tuple(v) for k, v in phases.items()}
    peak = max(frozen, key=lambda name: sum(v.bytes for v in frozen[name]))
    return replace(est, phases=frozen, peak_phase=peak, host_offload_bytes=host)


# ------------------------------------------------------------------------------------------------ LM heads
@dataclass(frozen=True)
class HfLoss:
    style: str  # "fp32-in-model" | "compute-dtype"
    model_types: tuple[str, ...]
    versions: str
    source: str


HF_LOSS_STYLES = ("fp32-in-model", "compute-dtype")


@cache
def hf_loss_rows() -> tuple[HfLoss, ...]:
    """rules/stacks.toml [[hf_loss]]: which loss code each family's ForCausalLM ran in which transformers 4.x."""
    data = tomllib.loads(rules_path("stacks.toml").read_text(encoding="utf-8"))
    rows = tuple(HfLoss(r["style"], tuple(r["model_types"]), r["versions"], r["source"]) for r in data.get("hf_loss", []))
    bad = [r.style for r in rows if r.style not in HF_LOSS_STYLES]
    if bad:
        raise EstimateError(f"rules/stacks.toml [[hf_loss]]: unknown style {bad[0]!r} (valid: {', '.join(HF_LOSS_STYLES)})")
    return rows


def hf_loss_code(m: ModelSpec, setup: Setup) -> str:
    """The causal-LM loss code `m`'s family runs under the priced transformers: "fp32-in-model" (the model upcasts
    its logits and returns them in fp32), "compute-dtype" (CrossEntropyLoss on the compute-dtype logits) or
    "loss-function" (`self.loss_function`, ForCausalLMLoss: the upcast happens inside the loss). Families without
    an [[hf_loss]] row keep the Llama rule: fp32-in-model below 4.46."""
    version = version_of(setup.versions, "transformers")
    if not version:
        return "loss-function"
    for row in hf_loss_rows():
        if m.model_type in row.model_types:
            if in_range(version, row.versions):
                return row.style
            return "loss-function"
    return "fp32-in-model" if in_range(version, "<4.46") else "loss-function"


def _tokens_vocab(m: ModelSpec, setup: Setup) -> int:
    return setup.tokens * m.vocab_size


def _shifted(m: ModelSpec, setup: Setup) -> int:
    """Logits of the shifted positions, B x (S - 1) x V: what the older losses slice and score."""
    return setup.micro_batch * (setup.seq_len - 1) * m.vocab_size


def _shift_copy(m: ModelSpec, setup: Setup) -> int:
    """`logits[..., :-1, :].contiguous()` copies only when the slice is not contiguous already: for a micro-batch of
    2 or more sequences (one sequence's slice is a prefix of its storage). Measured: see hf_loss_forward_old."""
    return 4 * _shifted(m, setup) if setup.micro_batch > 1 else 0


def hf_loss_shift_copy(m: ModelSpec, setup: Setup) -> list[Change]:
    """transformers >= 4.46, < 4.49, --loss full: `ForCausalLMLoss` upcasts the logits (`logits = logits.float()`) and
    then copies the shifted fp32 logits, `shift_logits = logits[..., :-1, :].contiguous()`, while the compute-dtype
    logits live on in the model outputs; log-softmax runs over B x (S - 1) positions. From 4.49.0 the loss pads the
    labels instead (`labels = nn.functional.pad(labels, (0, 1), value=ignore_index)`), no copy.
    Read in transformers 4.48.3 loss/loss_utils.py:36-39 and 4.49.0 loss_utils.py:36-39. Measured with
    `python -m advisor.measure.stack_head` (estimators/calibration/stack_heads.jsonl): 4.48.3, 1 x 1024 tokens:
    10.00 bytes per logit in the head's forward (the slice of one sequence is contiguous: no copy); 2 x 1024: 13.99.
    The backward is unchanged (8 bytes per logit above the saved log-softmax in every version measured)."""
    if setup.loss != "full" or hf_loss_code(m, setup) != "loss-function":
        return []
    a = setup.compute_bytes
    up = 4 if a != 4 else 0
    nbytes = (a + up) * _tokens_vocab(m, setup) + _shift_copy(m, setup) + 4 * _shifted(m, setup) + t.logit_softcap_saved(m, setup)
    return [Change("set", LOGITS_FORWARD, nbytes, "B x S x V: logits, fp32 upcast, shifted fp32 copy (micro-batch > 1), fp32 log-softmax"),
            _shifted_backward(m, setup)]


def _shifted_backward(m: ModelSpec, setup: Setup) -> Change:
    """The loss backward of the versions that slice the logits: three fp32 tensors over B x (S - 1) x V (the saved
    log-softmax, the incoming gradient, log-softmax's gradient), as now but one position fewer per sequence."""
    return Change("set", LOGITS_BACKWARD, 12 * _shifted(m, setup) + t.logit_softcap_saved(m, setup), "three fp32 B x (S-1) x V tensors")


def hf_loss_fp32_logits(m: ModelSpec, setup: Setup) -> list[Change]:
    """transformers < 4.46, --loss full: LlamaForCausalLM.forward (and the families copied from it) upcasts the
    logits in the model itself, `logits = logits.float()`, and returns the fp32 logits in its outputs (the
    compute-dtype ones are freed), then `shift_logits = logits[..., :-1, :].contiguous()` (a copy for a micro-batch
    of 2 or more) feeds CrossEntropyLoss: fp32 logits + (shifted fp32 copy) + fp32 log-softmax.
    Read in transformers 4.44.2 models/llama/modeling_llama.py:1209 (`logits = logits.float()`) and :1214. Measured
    with `python -m advisor.measure.stack_head` on 4.44.2: 8.00 bytes per logit at 1 x 1024 tokens (no copy), 11.99 at
    2 x 1024, against 10.00 for transformers 5.24 at both.
    Family scope (rules/stacks.toml [[hf_loss]], read per version): Llama and the families copied from it below
    4.46, StarCoder2 below 4.47, Mistral and Granite below 4.48, GraniteMoE below 4.48.3. GPT-2, GPTBigCode,
    GPT-NeoX, Falcon and StableLM never upcast in the model (hf_loss_compute_dtype)."""
    if setup.loss != "full" or hf_loss_code(m, setup) != "fp32-in-model":
        return []
    nbytes = 4 * _tokens_vocab(m, setup) + _shift_copy(m, setup) + 4 * _shifted(m, setup) + t.logit_softcap_saved(m, setup)
    return [Change("set", LOGITS_FORWARD, nbytes, "B x S x V: fp32 logits in the outputs, shifted fp32 copy (micro-batch > 1), fp32 log-softmax"),
            _shifted_backward(m, setup)]


def hf_loss_compute_dtype(m: ModelSpec, setup: Setup) -> list[Change]:
    """transformers < 4.48.3 (GPT-2, GPTBigCode, Falcon, StableLM) and < 4.49 (GPT-NeoX), --loss full: the model's
    forward scores the compute-dtype logits as they are, `shift_logits = lm_logits[..., :-1, :].contiguous()` (a copy
    for a micro-batch of 2 or more) into `CrossEntropyLoss()`, with no `.float()` anywhere: the logits, the shifted
    copy and log-softmax's saved output are all in the compute dtype, and so are the loss backward's two gradients.
    Under mixed precision CUDA autocast runs cross_entropy in fp32 (an fp32 copy of the shifted logits, fp32
    log-softmax), which is priced too. From 4.48.3 (GPT-NeoX: 4.49.0) these families call self.loss_function, which
    upcasts (ForCausalLMLoss: hf_loss_shift_copy, then the pinned terms).
    Read in transformers 4.45.2 models/gpt_bigcode/modeling_gpt_bigcode.py:1181 and :1184, 4.48.2 :1182-1185, 4.48.3
    :1182 (`loss = self.loss_function(`); gpt_neox 4.48.3 modeling_gpt_neox.py:1137-1139, 4.49.0 :850. Measured with
    `python -m advisor.measure.stack_head --family gpt_bigcode` on 4.45.2 (estimators/calibration/stack_heads.jsonl):
    4.00 bytes per logit in the head's forward at 1 x 1024 tokens, 6.00 at 2 x 1024 (bf16 logits, bf16 shifted copy,
    bf16 log-softmax), and 4.00 above the saved log-softmax at the start of the backward; 4.48.3: 10.00, 13.99, 7.99."""
    if setup.loss != "full" or hf_loss_code(m, setup) != "compute-dtype":
        return []
    a, shifted = setup.compute_bytes, _shifted(m, setup)
    copy = a * shifted if setup.micro_batch > 1 else 0
    amp = setup.mixed and a != 4  # autocast's fp32 cross_entropy: an fp32 copy of the shifted logits, fp32 log-softmax
    lsm = 4 if amp else a
    forward = a * _tokens_vocab(m, setup) + copy + (4 * shifted if amp else 0) + lsm * shifted + t.logit_softcap_saved(m, setup)
    backward = 3 * lsm * shifted + t.logit_softcap_saved(m, setup)  # saved log-softmax, its incoming and outgoing gradients
    return [Change("set", LOGITS_FORWARD, forward, "B x S x V: compute-dtype logits, shifted copy (micro-batch > 1), log-softmax, no fp32 upcast"),
            Change("set", LOGITS_BACKWARD, backward, "three B x (S-1) x V tensors in the loss dtype")]


def liger_head(m: ModelSpec, setup: Setup) -> tuple[int, int]:
    """Liger's fused linear cross-entropy (`--loss chunked` under the HF Trainer stacks: `use_liger_kernel=True`,
    axolotl's and LLaMA-Factory's Liger plugins): no B x S x V tensor. `fused_linear_cross_entropy_forward` computes
    the loss and the gradients in the forward, chunk by chunk: `grad_input = torch.zeros_like(_input)` (N x h in the
    hidden states' dtype), for a trained head `grad_weight = torch.zeros_like(weight)`, `loss_1d` fp32 per token, and
    one [chunk x V] logits tile with chunk = next_power_of_2(ceil(N / ceil(V / h))). The backward only scales
    grad_input. Read in liger-kernel 0.8.5 ops/fused_linear_cross_entropy.py (chunk_size, grad_input, grad_weight).
    Returns (forward, backward) bytes: the last hidden state (the caller's), grad_input, the tile, loss_1d (and
    grad_weight); backward: grad_input (and grad_weight). Autocast's compute-dtype copy of an fp32 head weight
    (mixed precision, QLoRA's upcast head) is counted once."""
    n, h, v = setup.tokens, m.hidden_size, m.vocab_size
    ho, a = t.norm_out_bytes(m, setup), setup.compute_bytes
    chunk = min(n, 1 << max(0, math.ceil(math.log2(max(1, math.ceil(n / math.ceil(v / h)))))))
    grad_weight = v * h * t.head_weight_bytes(setup) if setup.method == "full" else 0
    weight_cast = v * h * a if t.head_weight_bytes(setup) != a else 0
    forward = 2 * n * h * ho + chunk * v * a + 4 * n + grad_weight + weight_cast
    return forward, n * h * ho + grad_weight


def torchtune_head(m: ModelSpec, setup: Setup) -> tuple[int, int]:
    """torchtune's CEWithChunkedOutputLoss (its recipes' default loss): the decoder returns the logits as 8 chunks
    in the model dtype (`set_num_output_chunks`), the loss upcasts one chunk at a time (`logits.float()`) and
    F.cross_entropy keeps each chunk's fp32 log-softmax for backward; the recipe frees the logits before backward
    (`del logits`, recipes/lora_finetune_single_device.py:659). Forward: the logits, all chunks' fp32 log-softmax and
    the last chunk's upcast; backward: the saved log-softmax and the first chunk's two fp32 gradients.
    Read in torchtune 0.6.1 torchtune/modules/loss/ce_chunked_output_loss.py:30-41."""
    n = _tokens_vocab(m, setup)
    a = setup.compute_bytes
    chunk = -(-setup.seq_len // TORCHTUNE_OUTPUT_CHUNKS) * setup.micro_batch * m.vocab_size
    upcast = 4 * chunk if a != 4 else 0
    return a * n + 4 * n + upcast, 4 * n + 2 * 4 * chunk


def litgpt_head(m: ModelSpec, setup: Setup) -> tuple[int, int]:
    """LitGPT's chunked LM head and chunked_cross_entropy (litgpt/finetune/*.py: `model(input_ids,
    lm_head_chunk_size=128)`, then `chunked_cross_entropy(logits, targets[..., 1:])`): a list of 128-token logit
    chunks in the compute dtype, F.cross_entropy per chunk without an upcast (so its log-softmax is in the compute
    dtype under bf16-true, fp32 under -mixed autocast). The training loop keeps `logits` referenced through
    `fabric.backward(loss)`, so the logits live through the backward too.
    Read in litgpt 0.5.13 litgpt/utils.py:302-331 and litgpt/finetune/lora.py:355-359."""
    n = _tokens_vocab(m, setup)
    a = setup.compute_bytes
    lsm = 4 if setup.mixed or a == 4 else a
    chunk = setup.micro_batch * min(setup.seq_len, LITGPT_HEAD_CHUNK) * m.vocab_size
    return a * n + lsm * n, a * n + lsm * n + 2 * lsm * chunk


def unsloth_head(m: ModelSpec, setup: Setup) -> tuple[int, int]:
    """Unsloth's fused cross-entropy (its default: CausalLM_fast_forward calls `unsloth_fused_ce_loss` unless
    UNSLOTH_RETURN_LOGITS=1, unsloth 2026.10.9 models/llama.py:2122): unsloth_zoo's fused linear CE scores
    [rows x V] tiles with rows = min(2 GiB / (V x 8 bytes), max(512, N / 8)) and builds the hidden-state gradient
    (N x h, hidden dtype; `grad_h = torch.zeros((N, H), ...)`, fused_linear.py:1294) and, for a trained head, an fp32
    head-gradient accumulator in the forward. Read in unsloth_zoo 2026.10.9 fused_losses/chunked_logprob.py:47-71.
    NB: the tile's exact working set inside the Triton kernels is approximated by rows x V x 8 bytes."""
    n, h, v = setup.tokens, m.hidden_size, m.vocab_size
    ho = t.norm_out_bytes(m, setup)
    rows = min(n, int(UNSLOTH_CHUNK_BYTES / (v * UNSLOTH_BYTES_PER_LOGIT)), max(UNSLOTH_MIN_ROWS, -(-n // 8)))
    grad_weight = v * h * 4 if setup.method == "full" else 0
    return 2 * n * h * ho + rows * v * UNSLOTH_BYTES_PER_LOGIT + 8 * 4 * n + grad_weight, n * h * ho + grad_weight


def unsloth_full_head(m: ModelSpec, setup: Setup) -> list[Change]:
    """Unsloth with UNSLOTH_RETURN_LOGITS=1 (`--stack unsloth --loss full`): the logits in the compute dtype and its
    Triton `fast_cross_entropy_loss`, which keeps the logits and an fp32 log-sum-exp per token and writes the logits'
    gradient into the logits themselves: no fp32 upcast, no log-softmax tensor.
    Read in unsloth 2026.10.9 models/llama.py:2172 (`loss = fast_cross_entropy_loss(`) and kernels/cross_entropy_loss.py."""
    if setup.loss != "full":
        return []
    n, a = _tokens_vocab(m, setup), setup.compute_bytes
    return [Change("set", LOGITS_FORWARD, a * n + 4 * setup.tokens, "B x S x V logits, fp32 log-sum-exp (Unsloth's CE kernel)"),
            Change("set", LOGITS_BACKWARD, a * n + 4 * setup.tokens, "the logits' gradient written in place")]


CHUNKED_HEADS = {"trl": liger_head, "hf-trainer": liger_head, "axolotl": liger_head, "llama-factory": liger_head,
                 "torchtune": torchtune_head, "litgpt": litgpt_head, "unsloth": unsloth_head}
CHUNKED_NOTES = {
    liger_head: ("Liger fused linear CE: hidden-state gradient, [chunk x V] tile", "Liger: the hidden-state gradient computed in the forward"),
    torchtune_head: ("8 logit chunks, fp32 log-softmax of each, one fp32 upcast", "saved fp32 log-softmax, one chunk's fp32 gradients"),
    litgpt_head: ("128-token logit chunks and their log-softmax", "logits kept by the loop, log-softmax, one chunk's gradients"),
    unsloth_head: ("Unsloth fused CE: hidden-state gradient, [rows x V] tile", "Unsloth: the hidden-state gradient computed in the forward"),
}


def chunked_head(m: ModelSpec, setup: Setup) -> list[Change]:
    """`--loss chunked`: the stack's chunked cross-entropy in place of the B x S x V terms (see each head's function)."""
    if setup.loss != "chunked":
        return []
    head = CHUNKED_HEADS[setup.stack]
    forward, backward = head(m, setup)
    fwd_note, bwd_note = CHUNKED_NOTES[head]
    return [Change("set", LOGITS_FORWARD, forward, fwd_note), Change("set", LOGITS_BACKWARD, backward, bwd_note)]


# ------------------------------------------------------------------------------------------------ adapters, optimizer
def _adapter_scale(m: ModelSpec, setup: Setup, why: str) -> list[Change]:
    """LoRA A/B stored in the base weights' dtype instead of fp32: the adapters, their gradients and their AdamW /
    momentum states shrink by that ratio (8-bit, Lion 32-bit and Adafactor states do not depend on it).
    NB: activations unchanged while lora_dropout > 0 (the dropout output is kept in the compute dtype either way)."""
    if setup.method != "lora":
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
    return [Change("add", "foreach AdamW scratch", scratch, "torch._foreach_sqrt(exp_avg_sqs): one state-sized copy",
                   phases=("optimizer step",))]


def adapters_in_weight_dtype(setup: Setup) -> bool:
    """Whether LoRA A/B are stored in the base weights' dtype (peft < 0.12 on the HF stacks, torchtune, LitGPT)."""
    if setup.method != "lora":
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
    return [Change("delta", "saved activations", delta, note, phases=("forward", "backward (loss)", "backward (top layer)")),
            Change("host", "", offloaded, "")]


PRICES = {
    **OPTION_PRICES,
    "hf-loss-shift-copy": hf_loss_shift_copy,
    "hf-loss-fp32-logits": hf_loss_fp32_logits,
    "hf-loss-compute-dtype": hf_loss_compute_dtype,
    "chunked-head": chunked_head,
    "unsloth-full-head": unsloth_full_head,
    "peft-adapter-base-dtype": peft_adapter_base_dtype,
    "native-adapter-dtype": native_adapter_dtype,
    "hf-default-foreach-adamw": foreach_adamw,
    "torch-before-fused-default": old_torch_foreach,
    "litgpt-foreach-adamw": foreach_adamw,
    "unsloth-offloaded-checkpoints": unsloth_offloaded_checkpoints,
}
