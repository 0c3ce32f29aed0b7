"""The training set-up the memory model prices: every knob the generated script also sets.

`Setup` is plain data (a frozen dataclass) so the CLI, the advisor's Plan, the script generator and the
measuring tool all read the same fields. Valid choices live in one table each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .errors import EstimateError

TRAIN_KINDS = ("sft", "reward", "dpo", "ppo", "grpo")
ADAPTATIONS = ("full", "lora", "qlora")  # what is trained: every weight, LoRA adapters, LoRA on a 4-bit base
# Fields users know by another name: the flag, the `--json` setup key and the traces.jsonl key (--method is the adaptation).
PUBLIC_NAMES = {"adaptation": "method"}
FIELD_NAMES = {public: field for field, public in PUBLIC_NAMES.items()}
PRECISIONS = ("bf16", "fp16", "bf16-mixed", "fp16-mixed", "fp32")
OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw8bit", "adafactor", "sgd", "sgd_momentum", "lion")
ATTENTIONS = ("sdpa", "flash", "eager")
QUANT_TYPES = ("nf4", "fp4")
# LoRA target presets: each names a role, resolved to the module names of the model's family by lora_target_names
# (a fused q/k/v projection is one module: "qv" adapts all of it).
LORA_PRESETS = {
    "qv": "the query and value projections",
    "attention": "the linear layers of the attention block",
    "all-linear": "every linear layer of the decoder blocks",  # peft's "all-linear": not lm_head
}
PARALLEL = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp", "fsdp_grad_op", "fsdp_hybrid")
REF_MODELS = ("auto", "copy", "precomputed", "none")  # estimators/kinds.py: what each means per training kind
# How the LM head turns hidden states into the loss (estimators/terms.py, "the LM head and the loss"):
#   fused  trl 1.16's SFT/DPO/GRPO trainers patch the model with `add_fused_lm_head` and score tokens with
#          `ChunkedLogProbFunction`: [4096 x 32768] logit tiles, never the B x S x V logits. What generated scripts run.
#   full   transformers' own causal-LM loss over B x S x V logits, their fp32 upcast and log-softmax (the HF Trainer
#          and plain loops: the published measurements; trl 1.12's PPO, which is priced so whatever this says).
#   chunked the stack's chunked cross-entropy (estimators/stack_heads.py): Liger's fused linear CE under the HF Trainer
#          stacks, torchtune's CEWithChunkedOutputLoss, LitGPT's chunked_cross_entropy, Unsloth's fused CE.
LOSSES = ("fused", "full", "chunked")
# The training stack priced (rules/stacks.toml, estimators/stacks.py). "trl" is what the generated scripts run; the
# others change only what is priced. axolotl and LLaMA-Factory run the HF Trainer underneath.
STACKS = ("trl", "hf-trainer", "axolotl", "llama-factory", "litgpt", "torchtune", "unsloth")
# Modules peft's modules_to_save can train in full next to LoRA, by role in Llama's spelling (the token embedding, the
# output head); params.embedding_modules names them per family (GPT-2's wte, GPT-NeoX's embed_in, Falcon's word_embeddings).
SAVE_MODULES = ("embed_tokens", "lm_head")
# The stacks each option exists on (their config key): peft's options on the stacks that use peft, activation
# offloading where a trainer offers it (TRL activation_offloading, axolotl activation_offloading, torchtune
# enable_activation_offloading), the optimizer step in backward in torchtune only (optimizer_in_bwd), torch.compile where the
# trainer compiles the model (the HF Trainer's torch_compile, torchtune's compile).
# LLaMA-Adapter (peft AdaptionPromptConfig, estimators/adapter_prompt_terms.py) on the HF Trainer stacks, which run peft's
# AdaptedAttention as it is (Unsloth patches the attention it wraps; LitGPT and torchtune have their own adapters).
_HF = ("trl", "hf-trainer", "axolotl", "llama-factory")
_PEFT = _HF + ("unsloth",)
OPTION_STACKS = {
    "dora": _PEFT,
    "modules_to_save": _PEFT,
    "act_offload": ("trl", "axolotl", "torchtune"),
    "optim_in_bwd": ("torchtune",),
    "galore": _HF,
    "galore_layerwise": _HF,
    "torch_compile": _HF + ("torchtune",),
    "llama_adapter": _HF,
}
# The training kinds whose TRL config has `activation_offloading` (trl 1.16 SFTConfig, RewardConfig, DPOConfig); GRPOConfig,
# RLOOConfig and trl 1.12's PPOConfig have none, so --act-offload on the trl stack is refused there (nothing would run it).
TRL_OFFLOAD_KINDS = ("sft", "reward", "dpo")
LLAMA_ADAPTER_OFF = ("dora", "modules_to_save", "act_offload", "optim_in_bwd", "galore", "torch_compile")  # not priced with it


@dataclass(frozen=True)
class Setup:
    """One training run. Defaults are what a user expects: batch 1, 2048 tokens, LoRA r16 all-linear."""

    train: str = "sft"
    adaptation: str = "lora"  # ADAPTATIONS; its flag is --method (PUBLIC_NAMES)
    precision: str = "bf16"  # pure bf16 weights; "-mixed" keeps fp32 master weights under autocast
    optimizer: str = "adamw"
    micro_batch: int = 1
    seq_len: int = 2048
    grad_accum: int = 1
    packed: bool = True  # packed sequences fill seq_len; padded batches are priced at seq_len too
    grad_ckpt: bool | None = None  # None: on for LoRA/QLoRA, off for full (the usual defaults)
    attention: str = "sdpa"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: str = "all-linear"  # a preset name or a comma-separated list of module names
    lora_dropout: float = 0.05
    quant_type: str = "nf4"
    double_quant: bool = True
    kbit_upcast: bool = True  # QLoRA: peft's prepare_model_for_kbit_training upcasts non-quantised weights to fp32
    # preference / RL kinds (issue 5 extends these)
    ref_model: str = "auto"  # dpo full: "copy" | "precomputed"; lora/qlora: adapter disabled
    num_generations: int = 8  # GRPO completions per prompt
    response_len: int = 512  # PPO/GRPO generated tokens
    loss: str = "fused"  # LOSSES: "fused" = what the generated TRL scripts run, "full" = the HF causal-LM loss
    # parallel layout
    gpus: int = 1
    nodes: int = 1
    parallel: str = "none"
    offload_optimizer: bool = False
    offload_params: bool = False
    # the user's own stack (issue 15 §2): what is priced, not what generated scripts run
    stack: str = "trl"  # STACKS
    versions: str = ""  # "transformers=4.44,bitsandbytes=0.43" (estimators/versions.py); "" = the pinned versions
    # options users run that the generated scripts do not set (priced by estimators/option_terms.py)
    dora: bool = False  # peft use_dora: a trained magnitude vector per adapted layer and DoRA's extra activations
    modules_to_save: str = ""  # peft modules_to_save, e.g. "embed_tokens,lm_head": fully trained copies of those modules
    act_offload: bool = False  # activation offloading (torchtune enable_activation_offloading, TRL activation_offloading)
    optim_in_bwd: bool = False  # optimizer step inside backward, each gradient freed at once (torchtune optimizer_in_bwd)
    galore: bool = False  # GaLore AdamW (HF optim="galore_adamw", all-linear, rank 128): full fine-tuning, low-rank states
    torch_compile: bool = False  # torch.compile (Inductor) of the model: each layer saves less (terms.compiled_layer_saved)
    galore_layerwise: bool = False  # with galore: HF optim="galore_adamw_layerwise", each parameter stepped in backward
    # LLaMA-Adapter (peft AdaptionPromptConfig): prompts and gates in the top attention layers of the frozen --method lora base
    llama_adapter: bool = False  # priced only (estimators/adapter_prompt_terms.py): generated scripts train LoRA
    adapter_len: int = 10  # prompt tokens per adapted layer (peft's examples: 10)
    adapter_layers: int = 30  # adapted layers from the top (peft's examples: 30), priced capped at the model's layers

    @property
    def checkpointing(self) -> bool:
        return self.adaptation != "full" if self.grad_ckpt is None else self.grad_ckpt

    @property
    def compute_bytes(self) -> int:
        return 4 if self.precision == "fp32" else 2

    @property
    def mixed(self) -> bool:
        return self.precision.endswith("-mixed")

    @property
    def tokens(self) -> int:
        return self.micro_batch * self.seq_len

    @property
    def world_size(self) -> int:
        return self.gpus * self.nodes

    def with_(self, **changes) -> "Setup":
        return replace(self, **changes)

    def without_adapter(self, **changes) -> "Setup":
        """This set-up with no adapter: `adaptation="full"` and the adapter-only options off, for a forward with the
        adapter disabled (DPO/GRPO's reference) and for the fully trained or frozen models beside a policy (PPO)."""
        return self.with_(adaptation="full", dora=False, modules_to_save="", llama_adapter=False, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def public_dict(self) -> dict:
        """`to_dict` in the spelling users read (`--json` setup, traces.jsonl rows)."""
        return public_names(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "Setup":
        data = field_names(data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EstimateError(f"unknown setup field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        return cls(**data)

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        """One-line errors for values no run can have; `Setup(...)` and `with_` call it."""
        _choice("train", self.train, TRAIN_KINDS)
        _choice("method", self.adaptation, ADAPTATIONS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("attention", self.attention, ATTENTIONS)
        _choice("quant-type", self.quant_type, QUANT_TYPES)
        _choice("parallel", self.parallel, PARALLEL)
        _choice("ref-model", self.ref_model, REF_MODELS)
        _choice("loss", self.loss, LOSSES)
        _choice("stack", self.stack, STACKS)
        if self.versions:
            from .versions import parse_versions  # one-line errors naming the valid packages

            parse_versions(self.versions)
        if (self.dora or self.modules_to_save) and self.adaptation == "full":
            raise EstimateError("--dora and --modules-to-save are LoRA/QLoRA options; full fine-tuning trains every module already")
        bad = sorted(set(save_module_names(self)) - set(SAVE_MODULES))
        if bad:
            raise EstimateError(
                f"unknown --modules-to-save '{','.join(bad)}'; valid: {', '.join(SAVE_MODULES)} (the token "
                "embedding and the output head, whatever the model calls them: GPT-2's wte is embed_tokens)"
            )
        for option, where in OPTION_STACKS.items():
            if getattr(self, option) and self.stack not in where:
                flag = "--" + option.replace("_", "-")
                raise EstimateError(f"{flag} is not an option of --stack {self.stack}; stacks that have it: {', '.join(where)}")
        if self.act_offload and self.stack == "trl" and self.train not in TRL_OFFLOAD_KINDS:
            raise EstimateError(
                f"--act-offload is not an option of TRL's {self.train} trainer (it has no activation_offloading); "
                f"kinds that have it: {', '.join(TRL_OFFLOAD_KINDS)}"
            )
        if self.torch_compile and self.stack == "trl" and self.train == "ppo":
            raise EstimateError(
                "--torch-compile is not an option of TRL's ppo trainer (it builds its own Accelerator without "
                "the dynamo plugin, so torch_compile does nothing); kinds that have it: sft, reward, dpo, grpo"
            )
        if self.galore and (self.adaptation != "full" or self.optimizer != "adamw"):
            raise EstimateError("--galore is GaLore AdamW for full fine-tuning: use --method full --optimizer adamw")
        if self.galore and self.parallel not in ("none", "ddp"):
            raise EstimateError("--galore is priced on one GPU or with --parallel ddp (its projectors work on whole, unsharded gradients)")
        if self.galore_layerwise and not self.galore:
            raise EstimateError("--galore-layerwise is the layer-wise variant of GaLore AdamW: use --galore --galore-layerwise")
        if self.galore_layerwise and (self.grad_accum > 1 or self.world_size > 1):
            raise EstimateError(
                "--galore-layerwise steps each parameter inside backward: transformers refuses it with gradient "
                "accumulation and with DDP; use --grad-accum 1 on one GPU"
            )
        if self.optim_in_bwd and self.grad_accum > 1:
            raise EstimateError("--optim-in-bwd steps the optimizer inside backward, so it cannot accumulate gradients; use --grad-accum 1")
        for name in ("micro_batch", "seq_len", "grad_accum", "lora_r", "lora_alpha", "gpus", "nodes", "num_generations", "response_len"):
            if getattr(self, name) < 1:
                raise EstimateError(f"--{name.replace('_', '-')} must be a positive whole number, got {getattr(self, name)}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise EstimateError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.adaptation == "qlora" and self.precision == "fp32":
            raise EstimateError("QLoRA computes in bf16 or fp16; use --precision bf16 (or fp16 on cards without bf16)")
        if self.llama_adapter:
            self._check_llama_adapter()

    def _check_llama_adapter(self) -> None:
        """LLaMA-Adapter is priced on a frozen 16-bit (or fp32) base, single-GPU SFT, no other option on top."""
        for name in ("adapter_len", "adapter_layers"):
            if getattr(self, name) < 1:
                raise EstimateError(f"--{name.replace('_', '-')} must be a positive whole number, got {getattr(self, name)}")
        if self.adaptation != "lora":
            raise EstimateError(
                f"--llama-adapter trains prompts on a frozen bf16/fp16 base: use --method lora (the default; its LoRA "
                f"settings are then unused), not {self.adaptation}"
            )
        if self.mixed:
            raise EstimateError(f"--llama-adapter is priced on a pure base: --precision bf16, fp16 or fp32, not {self.precision}")
        if self.train != "sft" or self.parallel != "none" or self.world_size != 1 or self.offload_optimizer or self.offload_params:
            raise EstimateError("--llama-adapter is priced for single-GPU SFT: --train sft on one GPU (--gpus 1, --parallel none, no offload)")
        both = [name for name in LLAMA_ADAPTER_OFF if getattr(self, name, False)]
        if both:
            raise EstimateError(f"--llama-adapter is not priced with --{both[0].replace('_', '-')}; drop one of them")


def public_names(data: dict) -> dict:
    """Set-up fields (or changes to them) keyed as users read them: each field under its PUBLIC_NAMES name."""
    return {PUBLIC_NAMES.get(k, k): v for k, v in data.items()}


def field_names(data: dict) -> dict:
    """A set-up read from data (a plan file, a trace row, `--json` output) with each public spelling (PUBLIC_NAMES,
    as files written before the rename have them) turned into its field name; the field name wins where both are given."""
    out = dict(data)
    for public, field in FIELD_NAMES.items():
        if public in out:
            out.setdefault(field, out.pop(public))
    return out


def _choice(flag: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise EstimateError(f"unknown {flag} '{value}'; valid: {', '.join(valid)}")


def save_module_names(setup: Setup) -> tuple[str, ...]:
    """The roles `modules_to_save` trains in full ("embed_tokens,lm_head" -> both), in Llama's spelling."""
    return tuple(t.strip() for t in setup.modules_to_save.split(",") if t.strip())
