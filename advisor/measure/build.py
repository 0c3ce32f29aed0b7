"""Build the training set-up the generated script builds, for a `Setup` and a catalog `ModelSpec`.

Model: transformers' *ForCausalLM (an encoder's *ForSequenceClassification, dropout on) from the catalog row's config
(hfmodel.py, `hf_config_from_spec`), random weights, in the storage dtype of `Setup.precision` (fp32 master weights
for the "-mixed" precisions), use_cache off.
LoRA: peft `LoraConfig` (r, alpha, dropout, targets) and `get_peft_model` (adapters in fp32 over a bf16/fp16
base: peft's autocast_adapter_dtype). QLoRA: every nn.Linear of the decoder layers becomes a bitsandbytes
`Linear4bit` (nf4/fp4, double quantisation, uint8 storage, compute dtype = the autocast dtype; lm_head stays, as
transformers' bnb integration leaves the output embedding alone), quantised with bitsandbytes' own
`quantize_4bit`; then peft's `prepare_model_for_kbit_training` when `Setup.kbit_upcast` (fp32 non-quantised
weights), then LoRA. Gradient checkpointing: `gradient_checkpointing_enable()` with transformers' default
(non-reentrant, input embeddings made to require grad).

Fake mode (TRACING.md, item 1): parameters created inside FakeTensorMode carry a weakref that makes
`nn.Module._apply` fail, so the model and its LoRA wrapping are built on the meta device outside the mode and
materialised inside it with `to_empty`; shared embeddings are re-tied afterwards, rotary tables recomputed.
"""

from __future__ import annotations

import torch

from estimators.lora_targets import lora_target_names, modules_to_save_names
from estimators.setup import Setup

from .hfmodel import attn_implementation, compute_dtype, cuda_attn_implementation, hf_config, reset_rotary, retie, storage_dtype


def _lora_config(setup: Setup, spec):
    from peft import LoraConfig

    names = lora_target_names(spec, setup)
    targets = list(names) if names else "all-linear"
    # SEQ_CLS (a reward model, an encoder): peft's modules_to_save trains a copy of the head (`score`, `classifier`)
    task = "SEQ_CLS" if setup.train == "reward" or spec.encoder else "CAUSAL_LM"
    saved = list(modules_to_save_names(spec, setup)) or None  # --modules-to-save (issue 15 §2): fully trained copies
    return LoraConfig(
        r=setup.lora_r,
        lora_alpha=setup.lora_alpha,
        lora_dropout=setup.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type=task,
        use_dora=setup.dora,
        modules_to_save=saved,
    )


def _decoder_linears(model) -> list[tuple[torch.nn.Module, str, torch.nn.Linear]]:
    """(parent, attribute, module) of every nn.Linear except the output head: the LM head, or else the module of
    the last parameter, as transformers' bitsandbytes loading leaves them (quantizers/base.get_keys_to_not_convert):
    a reward model's `score`, BERT's `classifier`, RoBERTa's `classifier.out_proj`."""
    head = model.get_output_embeddings()
    if head is None:
        last = list(model.named_parameters())[-1][0].rsplit(".", 1)[0]
        head = model.get_submodule(last)
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Linear) and child is not head:
                found.append((parent, name, child))
    return found


def _swap_in_linear4bit(model, setup: Setup, cdtype, device: str) -> None:
    """Replace decoder nn.Linear modules with (not yet quantised) bitsandbytes Linear4bit modules."""
    import bitsandbytes as bnb

    for parent, name, lin in _decoder_linears(model):
        q = bnb.nn.Linear4bit(
            lin.in_features,
            lin.out_features,
            bias=lin.bias is not None,
            compute_dtype=cdtype,
            compress_statistics=setup.double_quant,
            quant_type=setup.quant_type,
            quant_storage=torch.uint8,
            device=device,
        )
        q.weight = bnb.nn.Params4bit(
            lin.weight.data,
            requires_grad=False,
            compress_statistics=setup.double_quant,
            quant_type=setup.quant_type,
            quant_storage=torch.uint8,
            module=q,
        )
        if lin.bias is not None:
            q.bias = torch.nn.Parameter(torch.empty_like(lin.bias), requires_grad=False)
        setattr(parent, name, q)
    model.is_loaded_in_4bit = True
    model.is_quantized = True


def _refuse_quantised_head(model, spec) -> None:
    """An encoder's head that transformers' bitsandbytes loading quantises in part (RoBERTa's classifier.dense: only
    the module of the last parameter, classifier.out_proj, stays in full precision) cannot be the trained copy
    peft's SEQ_CLS task makes of `classifier`: requires_grad on its 4-bit weight raises ("only Tensors of floating
    point dtype can require gradients" when this build of a tiny RoBERTa runs for real on the CPU). Never record
    what did not run."""
    import bitsandbytes as bnb

    head = getattr(model, "classifier", None) if spec.encoder else None
    if head is not None and any(isinstance(m, bnb.nn.Linear4bit) for m in head.modules()):
        raise NotImplementedError(
            f"QLoRA on {spec.model_type}: transformers quantises the classification head's dense layer and peft's SEQ_CLS "
            "task cannot train a copy of it (requires_grad on 4-bit weights fails); not traced"
        )


def _quantize_all(model, setup: Setup) -> None:
    """bitsandbytes quantize_4bit on every Linear4bit weight (bf16 -> packed uint8 + absmax [+ nested state])."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as BF

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = module.weight
            if getattr(w, "bnb_quantized", False):
                continue
            packed, state = BF.quantize_4bit(
                w.data.to(compute_dtype(setup) or torch.bfloat16),
                blocksize=64,
                compress_statistics=setup.double_quant,
                quant_type=setup.quant_type,
                quant_storage=torch.uint8,
            )
            module.weight = bnb.nn.Params4bit(
                packed,
                requires_grad=False,
                quant_state=state,
                blocksize=64,
                compress_statistics=setup.double_quant,
                quant_type=setup.quant_type,
                quant_storage=torch.uint8,
                module=module,
                bnb_quantized=True,
            )


_PARAMS4BIT_ATTRS = ("quant_state", "blocksize", "compress_statistics", "quant_type", "quant_storage", "bnb_quantized", "module")


def _quant_states(model) -> list:
    """(module, Params4bit attributes) of every Linear4bit, taken before to_empty drops the Params4bit class."""
    import bitsandbytes as bnb

    return [(m, {a: getattr(m.weight, a, None) for a in _PARAMS4BIT_ATTRS}) for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


def _materialise_quant_states(states) -> None:
    """Inside the fake mode: a FakeTensor cannot become a Params4bit, so the materialised uint8 weight keeps plain
    Parameter class and carries Params4bit's attributes (all bitsandbytes' forward reads); the quantisation
    constants (not parameters, so to_empty missed them) are materialised as fake tensors of the same shapes."""

    def empty(x):
        return torch.empty_like(x, device="cpu") if isinstance(x, torch.Tensor) and x.device.type == "meta" else x

    done = {}
    for module, attrs in states:
        qs = attrs["quant_state"]
        if id(qs) not in done:
            qs.absmax, qs.code, qs.offset = empty(qs.absmax), empty(qs.code), empty(qs.offset)
            if qs.state2 is not None:
                qs.state2.absmax, qs.state2.code = empty(qs.state2.absmax), empty(qs.state2.code)
            done[id(qs)] = qs
        for name, value in attrs.items():
            setattr(module.weight, name, value)


def _prime_bnb_tables() -> None:
    """bitsandbytes builds its 8-bit dynamic map lazily with .tolist(), which fake tensors cannot answer."""
    import bitsandbytes.functional as BF

    if "dynamic" not in BF.name2qmap:
        BF.name2qmap["dynamic"] = BF.create_dynamic_map()


def _recompute_context():
    import contextlib

    from .autocast import CudaAutocastOps

    return contextlib.nullcontext(), CudaAutocastOps()


def build_model(spec, setup: Setup, fake_mode=None, device: str = "cpu") -> tuple[torch.nn.Module, str]:
    """The model of `setup` on `device` (cpu or cuda, real tensors); with `fake_mode`, built on meta and
    materialised as fake CPU tensors inside that mode."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    if (
        setup.stack not in ("trl", "hf-trainer", "axolotl", "llama-factory")
        or setup.loss == "chunked"
        or setup.act_offload
        or setup.optim_in_bwd
        or setup.galore
        or setup.torch_compile
    ):
        raise NotImplementedError(
            "the tracer runs the HF Trainer stacks' own model code only, eager (no --stack litgpt/torchtune/unsloth, "
            "--loss chunked, --act-offload, --optim-in-bwd, --galore or --torch-compile)"
        )  # issue 15 §2: never record what did not run
    if setup.llama_adapter:  # it would build LoRA: never record what did not run
        raise NotImplementedError(
            "advisor measure builds LoRA adapters, not LLaMA-Adapter: trace --llama-adapter with python -m advisor.measure.adapter_trace"
        )
    config = hf_config(spec, setup)
    auto = AutoModelForCausalLM
    if spec.encoder:  # fine-tuned for classification: the config's num_labels (hf_config_from_spec), dropout kept on
        auto = AutoModelForSequenceClassification
    elif setup.train == "reward":  # the generated reward script: a scalar `score` head, pad token for the pooling
        auto, config.num_labels, config.pad_token_id = AutoModelForSequenceClassification, 1, 0
    sdtype, cdtype = storage_dtype(setup), compute_dtype(setup)
    base_dtype = (cdtype or torch.float32) if setup.adaptation == "qlora" else sdtype
    on_gpu = device == "cuda"
    attn = cuda_attn_implementation(spec, setup) if on_gpu else attn_implementation(spec, setup)
    device = "meta" if fake_mode is not None else device
    with torch.device(device):
        model = auto.from_config(config, dtype=base_dtype, attn_implementation=attn)
    quant = ""
    if setup.adaptation == "qlora":
        _swap_in_linear4bit(model, setup, cdtype, device)
        _refuse_quantised_head(model, spec)
        quant = (
            f"bitsandbytes Linear4bit ({setup.quant_type}{', double quant' if setup.double_quant else ''}) "
            "run through bitsandbytes' own code; gemm_4bit as its CUDA dequant+F.linear path"
        )
        if fake_mode is None:
            _quantize_all(model, setup)
        if setup.kbit_upcast:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if setup.adaptation in ("lora", "qlora"):
        from peft import get_peft_model

        model = get_peft_model(model, _lora_config(setup, spec))
    if fake_mode is not None:
        if setup.adaptation == "qlora":
            _prime_bnb_tables()
            _quantize_all(model, setup)  # on meta: bitsandbytes' fake kernels give the packed shapes
        states = _quant_states(model)
        with fake_mode:
            model.to_empty(device="cpu")
            retie(model, spec)
            reset_rotary(model)
            _materialise_quant_states(states)
    else:
        retie(model, spec)
    if setup.train == "dpo":
        from .fused import add_head
        from .prefs import DPO_OUTPUTS

        add_head(model, DPO_OUTPUTS)  # DPOTrainer.__init__ patches the head whatever Setup.loss says
    elif setup.train == "grpo":
        from .fused import add_head
        from .grpo import GRPO_OUTPUTS

        add_head(model, GRPO_OUTPUTS)  # GRPOTrainer.__init__ likewise (temperature 1.0, its default)
    elif setup.loss == "fused" and setup.train == "sft":
        from .fused import add_head

        add_head(model)  # SFTTrainer.__init__, after the PEFT wrapping and before gradient checkpointing
    if setup.train in ("reward", "dpo"):
        from trl.trainer.utils import disable_dropout_in_model

        disable_dropout_in_model(model)  # RewardConfig / DPOConfig disable_dropout=True (LoRA dropout included)
    if setup.checkpointing:
        # transformers' default (use_reentrant=False). The context_fn only re-enters the CUDA-autocast emulation
        # for the recomputation: the autograd engine does not carry Python function modes into backward, while
        # real autocast state (C++ thread-local) is restored by torch.utils.checkpoint itself.
        kwargs = {"use_reentrant": False} if on_gpu else {"use_reentrant": False, "context_fn": _recompute_context}
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        model.advisor_gc_kwargs = kwargs  # trl's disable_gradient_checkpointing re-enables with them (prefs.py)
    model.train()
    return model, quant


def sft_batch(spec, setup: Setup, device: str = "cpu") -> dict:
    """The micro-batch of an SFT step: random token ids [B, S]; a causal LM's labels are the ids (the model shifts
    them), an encoder's one class per sequence [B] (BertForSequenceClassification's CrossEntropyLoss over
    num_labels; one label is regression, MSELoss over float targets). No attention_mask: unpadded rows."""
    ids = torch.randint(0, spec.vocab_size, (setup.micro_batch, setup.seq_len), device=device)
    if not spec.encoder:
        return {"input_ids": ids, "labels": ids.clone()}
    if spec.num_labels == 1:
        return {"input_ids": ids, "labels": torch.rand(setup.micro_batch, device=device)}
    return {"input_ids": ids, "labels": torch.randint(0, spec.num_labels, (setup.micro_batch,), device=device)}
