"""Stack- and version-dependent LM heads: the loss code each transformers version ran (rules/stacks.toml
[[hf_loss]]) and each stack's chunked cross-entropy, priced as `Change`s to the SFT head terms of estimators/sft.py.
Rows of rules/stacks.toml [[behaviour]], applied by estimators/stack_terms.apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from . import terms as t
from .dtypes import GIB
from .errors import EstimateError
from .model import ModelSpec
from .result import LOGITS_BACKWARD, LOGITS_FORWARD  # the HF causal-LM loss terms estimators/sft.py prices for --loss full
from .setup import Setup
from .stack_change import Change
from .tables import read_table
from .versions import in_range, version_of

# torchtune 0.6.1 torchtune/modules/loss/ce_chunked_output_loss.py:30 `num_output_chunks: int = 8`
TORCHTUNE_OUTPUT_CHUNKS = 8
# litgpt 0.5.13 litgpt/finetune/lora.py:355 `logits = model(input_ids, lm_head_chunk_size=128)`
LITGPT_HEAD_CHUNK = 128
# unsloth_zoo 2026.10.9 fused_losses/chunked_logprob.py:47-49: `_BYTES_PER_LOGIT = 8.0`, `_CHUNK_GB = 2.0`,
# `_MIN_ROWS = 512`; chunked_logprob_rows: rows = min(2 GiB / (V x 8), max(512, ceil(N / 8)))
UNSLOTH_BYTES_PER_LOGIT, UNSLOTH_CHUNK_BYTES, UNSLOTH_MIN_ROWS = 8, 2 * GIB, 512


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
    rows = tuple(HfLoss(r["style"], tuple(r["model_types"]), r["versions"], r["source"]) for r in read_table("stacks.toml").get("hf_loss", []))
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
    return [
        Change("set", LOGITS_FORWARD, nbytes, "B x S x V: logits, fp32 upcast, shifted fp32 copy (micro-batch > 1), fp32 log-softmax"),
        _shifted_backward(m, setup),
    ]


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
    return [
        Change("set", LOGITS_FORWARD, nbytes, "B x S x V: fp32 logits in the outputs, shifted fp32 copy (micro-batch > 1), fp32 log-softmax"),
        _shifted_backward(m, setup),
    ]


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
    return [
        Change("set", LOGITS_FORWARD, forward, "B x S x V: compute-dtype logits, shifted copy (micro-batch > 1), log-softmax, no fp32 upcast"),
        Change("set", LOGITS_BACKWARD, backward, "three B x (S-1) x V tensors in the loss dtype"),
    ]


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
    grad_weight = v * h * t.head_weight_bytes(setup) if setup.adaptation == "full" else 0
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
    grad_weight = v * h * 4 if setup.adaptation == "full" else 0
    return 2 * n * h * ho + rows * v * UNSLOTH_BYTES_PER_LOGIT + 8 * 4 * n + grad_weight, n * h * ho + grad_weight


def unsloth_full_head(m: ModelSpec, setup: Setup) -> list[Change]:
    """Unsloth with UNSLOTH_RETURN_LOGITS=1 (`--stack unsloth --loss full`): the logits in the compute dtype and its
    Triton `fast_cross_entropy_loss`, which keeps the logits and an fp32 log-sum-exp per token and writes the logits'
    gradient into the logits themselves: no fp32 upcast, no log-softmax tensor.
    Read in unsloth 2026.10.9 models/llama.py:2172 (`loss = fast_cross_entropy_loss(`) and kernels/cross_entropy_loss.py."""
    if setup.loss != "full":
        return []
    n, a = _tokens_vocab(m, setup), setup.compute_bytes
    return [
        Change("set", LOGITS_FORWARD, a * n + 4 * setup.tokens, "B x S x V logits, fp32 log-sum-exp (Unsloth's CE kernel)"),
        Change("set", LOGITS_BACKWARD, a * n + 4 * setup.tokens, "the logits' gradient written in place"),
    ]


CHUNKED_HEADS = {
    "trl": liger_head,
    "hf-trainer": liger_head,
    "axolotl": liger_head,
    "llama-factory": liger_head,
    "torchtune": torchtune_head,
    "litgpt": litgpt_head,
    "unsloth": unsloth_head,
}
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
