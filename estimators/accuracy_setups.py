"""Which published rows (calibration/published_calibration.csv) the estimator can express, and with which set-up:
the hub ids the catalog knows by another name, the stack and versions each source ran, the PEFT experiments that are
plain LoRA or DoRA, and the row -> Setup mapping (estimators/accuracy_published.py prices and compares them)."""

from __future__ import annotations

from .catalog import resolve_model
from .errors import EstimateError
from .setup import Setup

# Hub ids of the published rows that the catalog knows under another name.
MODEL_IDS = {
    "NousResearch/Llama-2-70b-hf": "llama-2-70b",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b",
    "meta-llama/Llama-3.2-3B": "llama-3.2-3b",
}
# The fms-acceleration rows were measured with transformers 4.x (2024-2025), whose Mixtral experts were separate
# nn.Linear modules (w1/w2/w3) that bitsandbytes quantised; transformers 5 fuses them into 3-D parameters.
SPEC_CHANGES = {"mixtral-8x7b": ({"experts_fused": False}, "transformers 4.x Mixtral: experts as nn.Linear (quantised by QLoRA)")}
# The stack and versions each published source ran, where the evidence names them (Setup.stack / Setup.versions).
# fms-acceleration a100_80gb.csv (2025-02-07): the benchmark trains with fms-hf-tuning's sft_trainer (TRL's
# SFTTrainer on the HF Trainer). The `pip freeze` the benchmark saved beside the file at the same commit
# (scripts/benchmarks/refs/requirements.txt @24bdadb, quoted in the notes of every a100_80gb.csv row of
# published_throughput.csv) names fms-hf-tuning 2.5.0, transformers 4.48.1, trl 0.13.0, peft 0.13.2, torch 2.4.1.
# An earlier reading took transformers 4.45 / trl 0.11 from fms-hf-tuning's release pins; the freeze is the record
# of what ran. trl 0.13 has no fused head; transformers 4.48.1 scores Mistral/Llama with ForCausalLMLoss and its
# shifted fp32 copy (rules/stacks.toml hf-loss-shift-copy), which the single-GPU LoRA/QLoRA rows confirm.
SOURCE_STACKS = {
    "fms-acceleration benchmark refs (a100_80gb.csv, 2025-02-07)": ("trl", "transformers=4.48.1,trl=0.13.0,peft=0.13.2,torch=2.4.1"),
    # The transformers docs' single-GPU guide at 0016acf7 (2022) ran the HF Trainer of its day; the guide names no
    # versions. transformers 4.18 (April 2022) is priced: eager-only BERT attention and the `adamw_hf` default
    # optimizer hold for every 4.x before 4.32. torch 1.10.2, the release current in early 2022 (1.11: 2022-03-10), is
    # an assumption: it decides terms.softmax_keeps_input, and the guide's rows were not used to choose it (docs/status.md).
    "transformers docs: efficient training on a single GPU (2022)": ("hf-trainer", "transformers=4.18.0,torch=1.10.2"),
}
# The published optimizer column -> Setup.optimizer (rows naming another are not expressible).
OPTIMIZERS = {"adamw (Trainer default at the time)": "adamw", "Adafactor": "adafactor", "bitsandbytes Adam8bit": "adamw8bit"}
# Plain LoRA variants whose memory is LoRA's (rsLoRA only changes the scaling).
PLAIN_LORA_TAGS = ("rank32", "rank64", "rank10-target-mlp", "rank64-rslora")
# PEFT's DoRA experiment: rank-32 q/v LoRA with use_dora (9,289,728 trained: the LoRA's 9,175,040 and 28 x (3072 + 1024)
# magnitudes), priced with --dora.
DORA_TAGS = ("rank32-dora",)


def peft_experiment(row: dict) -> str:
    """A PEFT method-comparison row's experiment, from its notes ("lora/llama-3.2-3B-rank32"; the throughput file's
    " (variant ...)" suffix dropped)."""
    return row["notes"].split("Experiment ", 1)[-1].split(";")[0].split(" (")[0]


def peft_tag_in(tag: str, tags: tuple[str, ...]) -> bool:
    """Whether the experiment is one of `tags` (PLAIN_LORA_TAGS, DORA_TAGS) on the comparison's Llama 3.2 3B."""
    return any(tag.endswith(f"llama-3.2-3B-{k}") for k in tags)


# Stack of each published source (estimators/setup.py STACKS): fms-hf-tuning runs TRL's SFTTrainer on the HF
# Trainer (calibration README "How each source measured"); the PEFT comparison is its own plain PyTorch loop.
SOURCE_STACK = (("fms-acceleration", "trl"), ("PEFT method comparison", "pytorch"), ("transformers docs", "hf-trainer"))


def source_stack(source_name: str) -> str:
    return next((stack for prefix, stack in SOURCE_STACK if source_name.startswith(prefix)), "other")


def published_setup(row: dict) -> tuple[str, Setup, str] | str:
    """(catalog key, Setup, note) for a published row the estimator can express, else the reason it cannot. The
    published runs computed the HF causal-LM loss over the full logits (HF Trainer, TRL of 2024-2025, plain
    loops): priced with `loss="full"`."""
    method = row["method"]
    fw = row["framework"]
    if method == "adaption_prompt":
        return _adaption_prompt_setup(row)
    if method not in ("full", "lora", "qlora"):
        return f"PEFT method '{method}' is not modelled (full, LoRA, QLoRA and LLaMA-Adapter only)"
    if "foak" in fw:
        return "fused Triton kernels (fms foak): not the Hugging Face modelling code the estimator prices"
    if "accelerated-peft" in fw:
        return "fms accelerated-peft plugin: its own 4-bit model loading (no peft k-bit preparation)"
    if row["quantization"].startswith("GPTQ"):
        return "GPTQ base weights: not modelled"
    model_id = row["model_id"]
    key = MODEL_IDS.get(model_id, model_id)
    try:
        key = resolve_model(key).key
    except EstimateError:
        return f"model {row['model']} is not in the catalog (architecture not modelled)"
    notes = []
    source = row["source_name"]
    dora = False
    if source.startswith("PEFT method comparison"):
        tag = peft_experiment(row)
        dora = method == "lora" and peft_tag_in(tag, DORA_TAGS)
        if method == "lora" and not dora and not peft_tag_in(tag, PLAIN_LORA_TAGS):
            return f"LoRA variant ({tag.split('/')[0]}/{tag.split('-')[-1]}): not plain LoRA"
        notes.append("variable lengths up to 768 tokens priced at 768; eval/generation not modelled; no AMP")
    changes: dict = {
        "loss": "full",
        "adaptation": method,  # the CSV's method column: full, lora or qlora by now
        "micro_batch": int(row["micro_batch_size"]),
        "seq_len": int(row["seq_len"]),
        "grad_accum": int(row["grad_accum"] or 1),
        "grad_ckpt": row["grad_ckpt"] == "on",
        "precision": _precision(row["precision"]),
        "attention": "flash" if row["attn_impl"] == "flash_attention_2" else "sdpa",
    }
    if source.startswith("transformers docs"):  # transformers 4.18's BertSelfAttention: eager only
        changes["attention"] = "eager"
    if row["optimizer"] in OPTIMIZERS:
        changes["optimizer"] = OPTIMIZERS[row["optimizer"]]
    if method != "full":
        changes.update(
            lora_r=int(row["lora_r"]), lora_alpha=int(row["lora_alpha"] or 2 * int(row["lora_r"])), lora_targets=row["lora_targets"] or "all-linear"
        )
        if dora:
            changes["dora"] = True
            notes.append("DoRA (use_dora)")
    if row["n_gpus"] != "1":
        if "FSDP" not in row["sharding"]:
            return f"sharding '{row['sharding']}' not modelled"
        changes.update(gpus=int(row["n_gpus"]), parallel="fsdp")
    stack, versions = SOURCE_STACKS.get(source, ("trl", ""))
    if versions or stack != "trl":
        changes.update(stack=stack, versions=versions)
        notes.append(f"{stack} stack, {versions.replace('=', ' ').replace(',', ', ')}")
    setup = Setup(**changes)
    if ("adamw_torch" in row["optimizer"] or row["optimizer"] == "torch.optim.AdamW") and not _stack_prices_foreach(setup):
        notes.append("foreach AdamW (not fused): its step scratch added")
    return key, setup, "; ".join(notes)


def _adaption_prompt_setup(row: dict) -> tuple[str, Setup, str] | str:
    """A PEFT method-comparison ADAPTION_PROMPT row as `--llama-adapter` on the HF loss (the plain loop calls the
    model's own loss; TRL's fused head cannot run AdaptionPrompt, estimators/adapter_prompt_terms.py check_stack).
    The row gives the trained count, not the config: n x (adapter_len x hidden + 1) has one whole split with n at
    most the model's layers, the config it ran."""
    resolved = resolve_model(MODEL_IDS.get(row["model_id"], row["model_id"]))
    key, spec = resolved.key, resolved.spec
    trained = int(row["trainable_params"])
    splits = [
        (n, (trained // n - 1) // spec.hidden_size)
        for n in range(1, spec.num_layers + 1)
        if trained % n == 0 and (trained // n - 1) % spec.hidden_size == 0
    ]
    if len(splits) != 1:
        return f"LLaMA-Adapter: {trained:,} trained parameters split into {len(splits)} (layers, prompt length) configs"
    layers, length = splits[0]
    setup = Setup(
        llama_adapter=True,
        adapter_len=length,
        adapter_layers=layers,
        stack="hf-trainer",
        loss="full",
        micro_batch=int(row["micro_batch_size"]),
        seq_len=int(row["seq_len"]),
        grad_ckpt=row["grad_ckpt"] == "on",
    )
    return (
        key,
        setup,
        (
            f"adapter_len {length} x {layers} layers (the one split of {trained:,} trained); variable lengths up "
            "to 768 tokens priced at 768; eval/generation not modelled; no AMP"
        ),
    )


def _precision(text: str) -> str:
    """The published precision column -> Setup.precision: fp32, fp16 mixed (fp32 master weights under autocast),
    otherwise the 16-bit weights the row names (bf16 unless it says float16)."""
    if text == "fp32":
        return "fp32"
    if text.startswith("fp16 mixed"):
        return "fp16-mixed"
    return "fp16" if "float16" in text and "bfloat16" not in text else "bf16"


def _stack_prices_foreach(setup: Setup) -> bool:
    """Whether the row's stack and versions price the foreach AdamW scratch themselves (stack_terms
    `hf-default-foreach-adamw`, transformers < 5): then foreach_adamw_peak must not add it a second time."""
    if setup.stack == "trl" and not setup.versions:
        return False
    from .stack_terms import applies, behaviours

    return any(b.id in ("hf-default-foreach-adamw", "torch-before-fused-default") and applies(b, setup) for b in behaviours())
