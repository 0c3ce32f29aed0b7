"""LLaMA-Adapter (peft AdaptionPromptConfig, `--llama-adapter`; estimators/adapter_prompt_terms.py): each term by hand on
Llama 2 7B (h 4096, 32 heads, i 11008, 32 layers; T = 2048, adapter_len 10, the top 30 layers adapted), the estimate and
its refusals, then against the saved bytes measured on CPU (bench/llama_adapter_saved.py: recorded in
bench/results/llama_adapter_saved.txt, and re-measured live in the slow test)."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from estimators import estimate
from estimators import terms as t
from estimators.adapter_prompt_terms import (
    adapted_layers,
    adapter_params,
    adapter_saved,
    adapter_states,
    adapter_transient,
    bottom_layer,
    first_layer_unsaved,
    frozen_layer_saved,
    stack_saved,
    top_layer,
)
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.model import ModelSpec
from estimators.setup import Setup

ROOT = Path(__file__).resolve().parent.parent
L7 = resolve_model("7b").spec
T = 2048
ON = Setup(llama_adapter=True, stack="hf-trainer")  # TRL >= 1.15 cannot train it (check_stack): the HF Trainer does
OFF = ON.with_(grad_ckpt=False)
FROZEN = (2 * 4 * 4096 + 2 * 4 * 4096 + 4 * 32 + 3 * 2 * 11008) * T  # two norms' fp32 inputs, flash q k v out + lse, MLP


def term(est, phase, name):
    hits = [v for v in est.phases[phase] if v.name == name]
    assert len(hits) == 1, (phase, name, [v.name for v in est.phases[phase]])
    return hits[0].bytes


# ------------------------------------------------------------------------------------------------ by hand
def test_prompts_and_gates_train_in_the_base_dtype():
    assert adapted_layers(L7, ON) == 30 and adapted_layers(L7, ON.with_(adapter_layers=40)) == 32  # capped (peft refuses more)
    assert adapter_params(L7, ON) == 30 * (10 * 4096 + 1) == 1_228_830  # adaption_prompt 1 x 10 x 4096 and adaption_gate
    assert adapter_states(L7, ON) == 2 * 2 * 1_228_830  # AdamW: two bf16 states (zeros_like of bf16 parameters)
    assert adapter_states(L7, ON.with_(precision="fp32")) == 2 * 4 * 1_228_830
    assert adapter_states(L7, ON.with_(optimizer="adafactor")) == 30 * 4 * (10 + 4096 + 1)  # factored prompt, full gate
    assert adapter_states(L7, ON.with_(optimizer="sgd")) == 0


def test_saved_per_adapted_layer():
    query = 2 * T * 4096  # the recomputed rotated query, bf16
    scores = 32 * T * 10 * (4 + 2 + 2)  # fp32 softmax, its bf16 cast, the gated scores
    keys_values = 2 * 2 * 10 * 4096  # prompt keys and values repeated to every head
    assert adapter_saved(L7, ON) == query + scores + keys_values == 22_183_936
    assert adapter_saved(L7, ON.with_(precision="fp32")) == 4 * T * 4096 + 32 * T * 10 * 8 + 2 * 4 * 10 * 4096
    assert frozen_layer_saved(L7, ON) == FROZEN == 269_746_176  # terms.layer_saved without LoRA's branches


def test_no_checkpointing_keeps_only_the_adapted_layers():
    unsaved = (2 * (2 * 4096 + 2 * 4096) + 4 * 32 + 4 * 4096) * T + 2 * 10 * 4096  # base attention, input norm, prompt keys
    assert first_layer_unsaved(L7, OFF) == unsaved == 101_007_360
    final_norm = 4 * 4096 * T
    assert stack_saved(L7, OFF) == 30 * (FROZEN + 22_183_936) - unsaved + final_norm == 8_690_450_432
    assert stack_saved(L7, OFF.with_(adapter_layers=8)) == 8 * (FROZEN + 22_183_936) - unsaved + final_norm
    assert top_layer(L7, OFF) == 8_690_450_432 - final_norm
    assert bottom_layer(L7, OFF) == FROZEN + 22_183_936 - unsaved + 2 * 4096 * T


def test_checkpointing_recomputes_the_top_layer_with_its_adapter():
    transient = 2 * T * (11008 + 4096)  # the frozen MLP's product and down_proj output (larger than the o_proj moment)
    assert adapter_transient(L7, ON) == transient == 61_865_984
    checkpoints = 32 * 2 * 4096 * T
    assert stack_saved(L7, ON) == t.stack_activations(L7, ON)  # each layer's input, adapted or not
    assert top_layer(L7, ON) == checkpoints + FROZEN + 22_183_936 + transient == 890_667_008
    assert bottom_layer(L7, ON) == FROZEN + 2 * 4096 * T  # layer 0 is not adapted (top 30 of 32)
    assert bottom_layer(L7, ON.with_(adapter_layers=32)) == FROZEN + 2 * 4096 * T + 22_183_936 + transient


def test_the_estimate_prices_the_adapter_and_no_lora():
    est = estimate(L7, ON)
    assert est.trainable == 1_228_830
    step, top = "optimizer step", "backward (top layer)"
    assert term(est, step, "adaption prompts") == 2 * 1_228_830 and term(est, step, "gradients") == 2 * 1_228_830
    assert term(est, step, "optimizer states") == 4 * 1_228_830
    assert not any(v.name == "LoRA adapters" for phase in est.phases.values() for v in phase)
    assert term(est, top, "saved activations") == 890_667_008
    assert est.peak_phase == "backward (loss)"  # the HF loss's fp32 B x S x V tensors
    off = estimate(L7, OFF)
    assert term(off, "forward", "saved activations") == 8_690_450_432
    lora = estimate(L7, Setup(grad_ckpt=False, stack="hf-trainer"))
    assert off.peak_allocated < lora.peak_allocated  # no LoRA branches; the layers below the adapters keep nothing
    accum = estimate(L7, ON.with_(grad_accum=4))
    assert term(accum, top + ", micro-steps 2+", "accumulated gradients") == 2 * 1_228_830
    old = estimate(L7, ON.with_(versions="transformers=4.44"))  # adamw_torch (foreach) before transformers 5
    assert term(old, step, "foreach AdamW scratch") == 2 * 1_228_830
    paged = estimate(L7, ON.with_(optimizer="paged_adamw8bit"))
    assert paged.paged_bytes == adapter_states(L7, ON.with_(optimizer="paged_adamw8bit"))


def test_capped_layers_warn():
    est = estimate(resolve_model("tiny").spec, ON)
    assert est.trainable == 2 * (10 * 64 + 1)
    assert any("adapter_layers 30 is more than" in w for w in est.warnings)


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"adaptation": "qlora"}, "use --method lora (the default; its LoRA settings are then unused), not qlora"),
        ({"adaptation": "full"}, "not full"),
        ({"precision": "bf16-mixed"}, "--precision bf16, fp16 or fp32, not bf16-mixed"),
        ({"train": "dpo"}, "priced for single-GPU SFT"),
        ({"gpus": 2, "parallel": "ddp"}, "priced for single-GPU SFT"),
        ({"dora": True}, "not priced with --dora"),
        ({"stack": "unsloth"}, "stacks that have it: trl, hf-trainer, axolotl, llama-factory"),
        ({"adapter_len": 0}, "--adapter-len must be a positive whole number"),
    ],
)
def test_wrong_combinations_name_the_valid_choices(kwargs, needle):
    with pytest.raises(EstimateError, match=re.escape(needle)):
        Setup(llama_adapter=True, **kwargs)


def test_trl_with_its_fused_head_cannot_train_it(advisor_main):
    from estimators.adapter_prompt_terms import TRL_FUSED_HEAD
    from estimators.stacks import TRL_FUSED_HEAD as STACKS_TRL_FUSED_HEAD

    assert TRL_FUSED_HEAD == STACKS_TRL_FUSED_HEAD  # a copy (an import would close a circle through stack_terms)
    out = advisor_main("estimate", "--model", "7b", "--llama-adapter")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.splitlines()[-1]
    assert line.startswith("advisor: error: --llama-adapter cannot run on TRL 1.16.0's SFTTrainer") and "--stack hf-trainer" in line
    assert estimate(L7, Setup(llama_adapter=True, versions="trl=1.14")).trainable == 1_228_830  # before the fused head
    for stack in ("axolotl", "llama-factory"):
        assert estimate(L7, ON.with_(stack=stack)).trainable == 1_228_830


def test_a_model_peft_refuses_is_one_line(advisor_main):
    out = advisor_main("estimate", "--model", "qwen2.5-7b", "--llama-adapter")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1] == (
        "advisor: error: --llama-adapter: peft's AdaptionPrompt supports model types llama, "
        "mistral, gpt2; Qwen2.5 7B is qwen2; priced: llama, mistral"
    )


def test_a_shape_peft_cannot_view_is_refused():
    with pytest.raises(EstimateError, match=r"= 6 heads of 128 .*not Mistral NeMo 12B's kv width 1024"):
        estimate(resolve_model("mistral-nemo-12b").spec, ON)  # hidden 5120 / kv 1024 = 5 does not divide 32 heads into 8


def test_estimate_json_shows_it(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--llama-adapter", "--adapter-len", "16", "--stack", "hf-trainer", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["setup"]["llama_adapter"] is True and data["setup"]["adapter_len"] == 16
    assert "llama-adapter" in [b["id"] for b in data["stack"]["behaviours"]]
    assert data["model"]["trainable_params"] == 30 * (16 * 4096 + 1)
    assert "adaption prompts" in [x["name"] for x in data["terms"]]


def test_generate_refuses_it(advisor_main, tmp_path):
    out = advisor_main("generate", "--model", "tiny", "--llama-adapter")
    assert out.returncode == 2 and "unrecognized arguments: --llama-adapter" in out.stderr.splitlines()[-1]
    from advisor.plan import save_plan
    from advisor.planning import build_plan

    plan = save_plan(build_plan("tiny", ON.with_(seq_len=64), pipeline="sft", output_dir="outputs"), tmp_path / "plan.toml")
    out = advisor_main("generate", "--plan", str(plan), "--out", str(tmp_path / "run"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[-1].startswith("advisor: error: --llama-adapter is priced only")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------ against the measurement
BENCH = ROOT / "bench" / "llama_adapter_saved.py"
RESULTS = ROOT / "bench" / "results" / "llama_adapter_saved.txt"
# bench/llama_adapter_saved.py MODELS, as ModelSpecs (LlamaConfig / MistralConfig: untied head, head_dim = hidden / heads)
SPECS = {
    "llama": dict(model_type="llama", hidden_size=512, intermediate_size=1376, num_layers=6, num_heads=8, num_kv_heads=8),
    "llama-gqa": dict(model_type="llama", hidden_size=512, intermediate_size=1376, num_layers=6, num_heads=8, num_kv_heads=2),
    "mistral": dict(model_type="mistral", hidden_size=512, intermediate_size=1792, num_layers=6, num_heads=16, num_kv_heads=4),
    "mistral-narrow-q": dict(model_type="mistral", hidden_size=640, intermediate_size=1792, num_layers=6, num_heads=8, num_kv_heads=4, head_dim=64),
}


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name=name, vocab_size=2000, **SPECS[name])


def _check(name, batch, seq, alen, nlay, frozen, adapter, nograd):
    """The measured per-layer bytes against the terms. The estimator leaves out each norm's 4-byte-per-token 1/rms
    (terms.norm_saved's NB) and the shared rotary cos/sin, which the first layer that keeps them is charged with."""
    m, setup = _spec(name), Setup(llama_adapter=True, micro_batch=batch, seq_len=seq, adapter_len=alen, adapter_layers=nlay, grad_ckpt=False)
    tokens, n = batch * seq, len(frozen)
    first = n - nlay
    assert all(f == frozen_layer_saved(m, setup) + 8 * tokens for f in frozen[1:])  # two norms' 1/rms
    assert [a - f for a, f in zip(adapter, frozen, strict=True)] == [adapter_saved(m, setup) if i >= first else 0 for i in range(n)]
    rotary = frozen[0] - frozen[1] if first == 0 else 0
    assert nograd[:first] == [0] * first
    assert nograd[first] == adapter[first] - rotary - first_layer_unsaved(m, setup) - 4 * tokens  # the input norm's 1/rms


def _recorded():
    text = RESULTS.read_text(encoding="utf-8")
    head = re.compile(r"^(\S+) B=(\d+) S=(\d+) adapter_len=(\d+) adapter_layers=(\d+)/\d+:$", re.M)
    rows = []
    for match in head.finditer(text):
        block = text[match.end() :].split("\n", 5)[1:5]
        lists = [json.loads(re.search(r"\[[^\]]*\]", line).group(0)) for line in (block[0], block[1], block[3])]
        rows.append((match.group(1), *map(int, match.groups()[1:]), *lists))
    return rows


def test_recorded_measurements_match_the_terms():
    rows = _recorded()
    assert len(rows) == 16 and {r[0] for r in rows} == set(SPECS)
    for row in rows:
        _check(*row)


@pytest.mark.slow  # ~30 s on two cores: builds the small models with torch and peft, one forward each
def test_live_measurement_matches_the_terms():
    spec = importlib.util.spec_from_file_location("llama_adapter_saved", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for name, batch, seq, alen, nlay in (("llama-gqa", 2, 64, 10, 4), ("mistral-narrow-q", 1, 128, 6, 6)):
        runs = [
            bench.saved_per_layer(bench.build(name, alen, nlay, peft), batch, seq, grads)
            for peft, grads in ((False, True), (True, True), (True, False))
        ]
        _check(name, batch, seq, alen, nlay, *(r[:-1] for r in runs))


@pytest.mark.slow  # ~25 s each: the project's tracer (FakeTensorMode, CUDA semantics) on Llama 2 7B at full size
@pytest.mark.parametrize("ckpt", [True, False])
def test_full_size_trace_matches_the_estimate(ckpt):
    from advisor.measure.adapter_trace import trace_adapter

    setup = ON.with_(grad_ckpt=ckpt)
    result = trace_adapter(L7, setup)
    est = estimate(L7, setup)
    assert result.trainable == est.trainable == 1_228_830
    assert est.peak_allocated == pytest.approx(result.peak, rel=0.005)  # measured: -0.01 % both ways
    forward = sum(v.bytes for v in est.phases["forward"])
    assert forward == pytest.approx(result.phase_peaks["forward"], rel=0.005)


@pytest.mark.slow  # ~20 s: two real 3-step runs on a tiny random Llama (CPU)
def test_hf_trainer_trains_it_and_trl_sft_trainer_cannot(tmp_path):
    """What check_stack says: the HF Trainer trains peft's AdaptionPrompt (the gates leave zero), TRL 1.16's SFTTrainer
    fails in compute_loss because its fused head never runs."""
    import torch
    from datasets import Dataset
    from peft import AdaptionPromptConfig, get_peft_model
    from tokenizers import Tokenizer, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Trainer, TrainingArguments, default_data_collator
    from trl import SFTConfig, SFTTrainer

    def tiny():
        torch.manual_seed(0)
        return LlamaForCausalLM(
            LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, vocab_size=300)
        )

    config = dict(task_type="CAUSAL_LM", adapter_len=4, adapter_layers=2)
    ids = [[1 + (i * 7 + j) % 290 for j in range(32)] for i in range(8)]
    common = dict(
        max_steps=3,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        activation_checkpointing=True,
        disable_tqdm=True,
    )
    model = get_peft_model(tiny(), AdaptionPromptConfig(**config))
    Trainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path / "hf"), learning_rate=1e-2, **common),
        train_dataset=Dataset.from_dict({"input_ids": ids, "labels": ids}),
        data_collator=default_data_collator,
    ).train()
    assert all(p.abs().sum() > 0 for n, p in model.named_parameters() if n.endswith("adaption_gate"))
    words = Tokenizer(models.WordLevel({"a": 0, "<pad>": 1, "<eos>": 2}, unk_token="a"))  # no hub: a local tokenizer
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="<eos>")
    trainer = SFTTrainer(
        model=tiny(),
        args=SFTConfig(output_dir=str(tmp_path / "trl"), **common),
        processing_class=tokenizer,
        train_dataset=Dataset.from_dict({"input_ids": ids}),
        peft_config=AdaptionPromptConfig(**config),
    )
    with pytest.raises(AttributeError, match="log_probs"):
        trainer.train()
