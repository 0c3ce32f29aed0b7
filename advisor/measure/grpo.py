"""GRPO (`--train grpo`) as trl 1.16's GRPOTrainer runs it without vLLM: generation rounds, then training steps.

Read in trl/trainer/grpo_trainer.py and grpo_config.py (trl 1.16.0):
- __init__: the policy gets `add_fused_lm_head(outputs=("log_probs", "entropy"))` (temperature 1.0). beta = 0.0: no
  reference at all; beta > 0: LoRA/QLoRA use the policy with the adapter disabled (`use_adapter(model, None)`), full
  fine-tuning a second model created in the policy's dtype with the default fused head (log_probs), prepared by
  accelerate in evaluation mode (prefs.build_reference). `disable_dropout` defaults to False: LoRA dropout stays on.
- _prepare_inputs: one generation round every steps_per_generation = generation_batch_size / micro_batch micro-steps:
  `_generate_and_score_completions` on the round's prompts, its output shuffled (`shuffle_sequence_dict`) and split
  (`split_tensor_dict`) into the micro-batches of `_buffered_inputs`; the previous round's stay referenced while the
  next round is generated.
- _generate_single_turn: `unwrap_model_for_generation` (gradient checkpointing off) and, under no_grad,
  `generate(input_ids, attention_mask, generation_config=GenerationConfig(max_new_tokens=response_len,
  do_sample=True, temperature=1.0, top_p=1.0, top_k=0, cache_implementation=None, disable_compile=True))`, which
  prefills with a DynamicCache and decodes token by token with logits_to_keep=1. A PeftModel's `generate` calls the
  inner model, whose forward is not accelerate's autocast wrapper: LoRA/QLoRA generate without autocast (fp32
  adapters, QLoRA's upcast weights in fp32); a full model's forward is the wrapper (autocast, fp32 outputs).
- then, under no_grad with gradient checkpointing off, over the round in chunks of micro_batch sequences
  (`_get_per_token_logps_and_entropies`: labels = the ids with the prompt set to -100, `model(input_ids,
  attention_mask, labels=labels, fused_lm_head=True)` under accelerator.autocast(), log_probs[:, -response_len:]
  concatenated): the old policy log-probs when gradient_accumulation_steps % steps_per_generation != 0 (else
  `per_token_logps.detach()` stands in for them), and the reference log-probs when beta > 0.
- _compute_loss: the same call with compute_entropy=True on the micro-batch; loss_type "dapo" (the default):
  token-level ratio, two-sided clip (epsilon 0.2), with beta > 0 the k3 KL times the ratio
  (use_bias_correction_kl=True), normalised by the round's completion tokens; then its metrics (`.item()` left out).
Every prompt is prompt_len tokens (estimators.kind_rollout.prompt_len) and every completion response_len: no padding.

Emulated, because fake tensors cannot evaluate data-dependent values:
- `generate` decodes to max_new_tokens (no early end of sequence: the length the estimator prices): its StopCheck
  answers from the length. Its other data-dependent checks get the answers of unpadded prompts with valid ids: every
  `.any()` (right padding, negative ids, eos == pad) False, every `.all()` (an all-ones attention mask, which
  `generate` then drops) True.
- the fused head's `hidden_states[mask]` selects micro_batch x response_len positions (fused.selected).
- token ids, rewards and advantages are random: the reward is a Python function (nothing on the GPU).
- only the last traced round runs `generate`; earlier rounds start from random completions. An earlier round's
  generation makes the same allocations with less alive (no optimizer states yet), so it cannot hold the peak.
- QLoRA decode steps (one row per sequence) go through qlora.py's dequantise + F.linear pattern; on a GPU
  bitsandbytes may pick its fused kernel for so few rows, without the dequantised weight: decoding is an upper
  bound by one linear's dequantised weight (the prefill, with more than 1536 rows, takes the fallback for sure).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch

from estimators.kind_models import advisor_grpo_beta
from estimators.kind_rollout import grpo_generation_batch, prompt_len

from .autocast import autocast_region
from .step import _to_fp32
from .tracker import MemoryTracker

GRPO_OUTPUTS = ("log_probs", "entropy")  # GRPOTrainer.__init__: add_fused_lm_head(..., outputs=...)
EPSILON = 0.2  # GRPOConfig.epsilon; epsilon_high defaults to it
PAD, BOS, EOS = 0, 1, 2  # token ids for the generation config (memory-neutral)
NOTE = (
    "GRPOTrainer round: generate (prefill + decode with a DynamicCache to max_new_tokens, no_grad, "
    "checkpointing off), the old-policy / reference log-prob forwards (no_grad, micro-batch chunks), then "
    "training steps scoring the completion tokens through the fused head, loss 'dapo'; last round generates"
)


def beta(setup) -> float:
    """The beta the generated script passes (rules/hyperparams.toml), 0.0 under --ref-model none (no reference)."""
    return 0.0 if setup.ref_model == "none" else advisor_grpo_beta(setup.adaptation)


def shape(setup) -> tuple[int, int, int, int]:
    """(prompt tokens, completion tokens, sequences per round, steps_per_generation)."""
    gen = grpo_generation_batch(setup)
    return prompt_len(setup), setup.response_len, gen, gen // setup.micro_batch


def selected_positions(setup) -> dict[tuple, int]:
    """The fused head's label mask [micro_batch, seq - 1] selects micro_batch x response_len completion tokens."""
    p, c, _, _ = shape(setup)
    return {(setup.micro_batch, p + c - 1): setup.micro_batch * c}


def per_token_logps(
    model, input_ids, attention_mask, keep: int, cdtype, device_type: str = "cpu", batch_size: int | None = None, entropy: bool = False
):
    """GRPOTrainer._get_per_token_logps_and_entropies (text only, no MoE aux loss)."""
    batch_size = batch_size or input_ids.size(0)
    logps, entropies = [], []
    for start in range(0, input_ids.size(0), batch_size):
        ids, mask = input_ids[start : start + batch_size], attention_mask[start : start + batch_size]
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :-keep] = -100
        with autocast_region(cdtype, device_type):
            outputs = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        outputs = _to_fp32(outputs)  # accelerate's wrapper around the prepared model's forward
        logps.append(outputs["log_probs"][:, -keep:])
        if entropy:
            entropies.append(outputs["entropy"][:, -keep:])
    return torch.cat(logps, dim=0), torch.cat(entropies, dim=0) if entropy else None


def grpo_loss(model, inputs: dict, cdtype, device_type: str = "cpu", *, beta: float, grad_accum: int, steps_per_generation: int) -> torch.Tensor:
    """GRPOTrainer._compute_loss with its defaults: loss_type "dapo", importance_sampling_level "token",
    use_bias_correction_kl=True, no entropy bonus or masks; the metrics' reductions without `.item()`."""
    input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
    attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
    keep = inputs["completion_ids"].size(1)
    mask = inputs["completion_mask"]
    logps, entropies = per_token_logps(model, input_ids, attention_mask, keep, cdtype, device_type, entropy=True)
    advantages = inputs["advantages"].unsqueeze(1)
    old = inputs.get("old_per_token_logps")
    old = logps.detach() if old is None else old
    coef_1 = torch.exp(logps - old)
    if beta:
        ref = inputs["ref_per_token_logps"]
        per_token_kl = (torch.exp(ref - logps) - (ref - logps) - 1) * coef_1
    coef_2 = torch.clamp(coef_1, 1 - EPSILON, 1 + EPSILON)
    per_token_loss = -torch.min(coef_1 * advantages, coef_2 * advantages)
    if beta:
        per_token_loss = per_token_loss + beta * per_token_kl
    normalizer = inputs["num_items_in_batch"].clamp(min=1.0) * grad_accum / steps_per_generation
    loss = (per_token_loss * mask).sum() / normalizer

    def global_masked_mean(x):
        totals = torch.stack([(x * mask).sum(), mask.sum().float()])
        return totals[0] / totals[1].clamp(min=1.0)

    if beta:
        global_masked_mean(per_token_kl)
    global_masked_mean(entropies)
    low = (coef_1 < 1 - EPSILON) & (advantages < 0)
    high = (coef_1 > 1 + EPSILON) & (advantages > 0)
    for clipped in (low, high, low | high):
        global_masked_mean(clipped.float())
    ((low.float() * mask).sum(-1) / mask.sum(-1)).min()  # masked_seq_mean, then nanmin / nanmax
    ((high.float() * mask).sum(-1) / mask.sum(-1)).max()
    return loss


def rollout(model, ref, spec, setup, cdtype, tracker, *, generate: bool = True, device_type: str = "cpu") -> dict:
    """One generation round (_prepare_inputs -> _generate_and_score_completions) in the phase "generation", with
    "old log-probs" and "reference forward" inside it; returns the first micro-batch of the buffered inputs (views
    of the round's tensors, which stay alive with it)."""
    from trl.models.utils import disable_gradient_checkpointing
    from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict, use_adapter

    p, c, gen, spg = shape(setup)
    b = beta(setup)
    gc_kwargs = getattr(model, "advisor_gc_kwargs", None)
    with tracker.in_phase("generation"):
        if generate:
            prompt_ids = torch.randint(3, spec.vocab_size, (gen, p))
            _generate(model, prompt_ids, torch.ones_like(prompt_ids), c, cdtype, device_type, tracker, gc_kwargs)
            del prompt_ids  # completions go to Python lists, then back to the device, padded
        prompt_ids, completion_ids = torch.randint(3, spec.vocab_size, (gen, p)), torch.randint(3, spec.vocab_size, (gen, c))
        prompt_mask, completion_mask = torch.ones_like(prompt_ids), torch.ones_like(completion_ids)
        num_items_in_batch = completion_mask.sum()
        ids = torch.cat([prompt_ids, completion_ids], dim=1)
        mask = torch.cat([prompt_mask, completion_mask], dim=1)
        old = ref_logps = None
        with torch.no_grad(), disable_gradient_checkpointing(model, gc_kwargs):
            if setup.grad_accum % spg:
                with tracker.in_phase("old log-probs"):
                    old, _ = per_token_logps(model, ids, mask, c, cdtype, device_type, batch_size=setup.micro_batch)
            if b:
                with tracker.in_phase("reference forward"):
                    if ref is not None:
                        ref_logps, _ = per_token_logps(ref, ids, mask, c, cdtype, device_type, batch_size=setup.micro_batch)
                    else:
                        with use_adapter(model, adapter_name=None):
                            ref_logps, _ = per_token_logps(model, ids, mask, c, cdtype, device_type, batch_size=setup.micro_batch)
        del ids, mask
        output = {
            "prompt_ids": prompt_ids,
            "prompt_mask": prompt_mask,
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "advantages": torch.randn(gen),
            "num_items_in_batch": num_items_in_batch,
        }
        if old is not None:
            output["old_per_token_logps"] = old
        if ref_logps is not None:
            output["ref_per_token_logps"] = ref_logps
        del prompt_ids, prompt_mask, completion_ids, completion_mask, old, ref_logps
        return split_tensor_dict(shuffle_sequence_dict(output), spg)[0]


def loss_fn(setup):
    _, _, _, spg = shape(setup)
    return functools.partial(grpo_loss, beta=beta(setup), grad_accum=setup.grad_accum, steps_per_generation=spg)


def _generate(model, ids, mask, new_tokens: int, cdtype, device_type, tracker, gc_kwargs) -> None:
    from transformers import GenerationConfig
    from trl.models.utils import disable_gradient_checkpointing

    # GRPOTrainer's GenerationConfig; use_cache=True is what it inherits from a hub model's generation_config (the
    # traced model, built with config.use_cache=False, would pass False on: no KV cache)
    config = GenerationConfig(
        max_new_tokens=new_tokens,
        do_sample=True,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=[EOS],
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        min_p=None,
        repetition_penalty=1.0,
        cache_implementation=None,
        disable_compile=True,
        use_cache=True,
    )
    with (
        disable_gradient_checkpointing(model, gc_kwargs),
        torch.no_grad(),
        _accelerate_forward(model, cdtype, device_type),
        _decode_to(ids.shape[1] + new_tokens),
        _answers(tracker),
    ):
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    del out


@contextlib.contextmanager
def _accelerate_forward(model, cdtype, device_type):
    """accelerate's prepare_model wraps the prepared model's forward in autocast and converts its outputs to fp32;
    `generate` reaches that wrapper only on a full model (a PeftModel generates through the inner model)."""
    if cdtype is None or hasattr(model, "get_base_model"):
        yield
        return
    inner = model.forward

    @functools.wraps(inner)
    def forward(*args, **kwargs):
        with autocast_region(cdtype, device_type):
            out = inner(*args, **kwargs)
        return _to_fp32(out)

    model.forward = forward
    try:
        yield
    finally:
        model.forward = inner


@contextlib.contextmanager
def _decode_to(max_length: int):
    """generate stops when `stop_check(unfinished, tokens, length)` says so: here at max_length, for every row."""
    import transformers.generation.utils as gu

    class ToMaxLength(gu.StopCheck):
        def __call__(self, unfinished_sequences, tokens, length):
            return length >= max_length

    saved, gu.StopCheck = gu.StopCheck, ToMaxLength
    try:
        yield
    finally:
        gu.StopCheck = saved


@contextlib.contextmanager
def _answers(tracker: MemoryTracker) -> Iterator[None]:
    """generate's data-dependent checks on fake tensors: a 0-dim result of aten.any is read as False, of aten.all
    as True (unpadded prompts, valid ids); any other fake `.item()` still raises."""
    import weakref

    from torch._subclasses.fake_tensor import FakeTensor

    known: dict[int, tuple] = {}

    def recording(op, value):
        def run(_tracker, *args, **kwargs):
            out = op(*args, **kwargs)
            if isinstance(out, FakeTensor) and out.dim() == 0:
                known[id(out)] = (weakref.ref(out), value)
            return out

        return run

    def scalar(_tracker, t):
        ref, value = known.get(id(t), (None, None))
        if ref is not None and ref() is t:
            return value
        return torch.ops.aten._local_scalar_dense.default(t)

    ops = {
        getattr(packet, name): recording(getattr(packet, name), value)
        for packet, value in ((torch.ops.aten.any, False), (torch.ops.aten.all, True))
        for name in packet.overloads()
    }
    ops[torch.ops.aten._local_scalar_dense.default] = scalar
    saved = {op: tracker.emulated[op] for op in ops if op in tracker.emulated}
    tracker.emulated.update(ops)
    try:
        yield
    finally:
        for op in ops:
            tracker.emulated.pop(op, None)
        tracker.emulated.update(saved)
