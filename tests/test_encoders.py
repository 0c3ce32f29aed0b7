"""Encoders fine-tuned for sequence classification (BERT, RoBERTa: estimators/families_encoder.py): the counts, the
terms an encoder changes (no LM head, dropout on the attention probabilities, softmax's saved input before torch
1.11, transformers' own AdamW before 4.32), the refusals, and the transformers docs' BERT-large rows they price.
Counts against a meta-device build are in tests/test_params.py (every catalog row, encoders included)."""

from __future__ import annotations

import csv

import pytest

from advisor.cli import main
from estimators import flops as fl
from estimators import terms as t
from estimators.accuracy_published import compare_published_row
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.gpus import find_gpu
from estimators.hf_config import hf_config_from_spec, spec_from_hf_config
from estimators.params import count_params, encoder_head_params
from estimators.pricing import estimate
from estimators.setup import Setup
from estimators.timing import step_time

BERT = resolve_model("bert-large-uncased").spec
FULL = Setup(adaptation="full", precision="fp32", attention="eager", micro_batch=4, seq_len=512, stack="hf-trainer")


def test_the_head_is_the_classifier_and_no_lm_head():
    h = 1024
    assert encoder_head_params(BERT) == h * h + h + h * 2 + 2  # pooler dense, classifier (2 labels), with biases
    assert count_params(BERT).lm_head == 1_051_650
    assert t.logit_count(BERT, FULL) == 4 * 2  # first token of each sequence into two labels, not 4 x 512 x 30522
    assert t.head_weights(BERT) == 1_051_650  # biases included: they train and are cast with the weights


def test_labels_come_from_the_config():
    config = hf_config_from_spec(BERT)
    config.pop("num_labels")
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    three = spec_from_hf_config(config, "three labels")
    assert three.num_labels == 3
    assert count_params(three).total == count_params(BERT).total + 1024 + 1


def test_eager_scores_keep_dropout_mask_and_the_dropped_copy():
    per = 16 * 512 * 512  # heads x S x S of one sequence
    # fp32: softmax output 4, dropout mask 1, dropped probabilities 4 (what P.V keeps)
    assert t.eager_scores_saved(BERT, FULL) == 9 * per
    # fp16 under autocast: fp32 softmax output, mask, fp16 copy for the matmul
    assert t.eager_scores_saved(BERT, FULL.with_(precision="fp16-mixed")) == 7 * per
    # without attention dropout the matmul shares the fp32 softmax output
    assert t.eager_scores_saved(BERT.with_(attn_dropout=False), FULL) == 4 * per
    # the flash kernel drops inside: nothing S x S
    assert t.eager_scores_saved(BERT, FULL.with_(attention="sdpa", precision="bf16")) == 0


def test_gpt2_attention_dropout_is_read_from_attn_pdrop():
    gpt2 = resolve_model("gpt2").spec
    assert gpt2.attn_dropout  # attn_pdrop 0.1 in GPT2Config
    bf16 = Setup(adaptation="full", attention="eager", seq_len=1024)
    per = 12 * 1024 * 1024
    assert t.eager_scores_saved(gpt2, bf16) == (4 + 2 + 1) * per
    assert t.eager_scores_saved(gpt2.with_(attn_dropout=False), bf16) == (4 + 2) * per
    config = hf_config_from_spec(gpt2) | {"attn_pdrop": 0.0}
    assert not spec_from_hf_config(config, "gpt2 no attention dropout").attn_dropout


def test_torch_before_1_11_keeps_the_softmax_input():
    per = 16 * 512 * 512
    assert t.eager_scores_saved(BERT, FULL.with_(versions="torch=1.10.2")) == 13 * per
    assert t.eager_scores_saved(BERT, FULL.with_(versions="torch=1.11.0")) == 9 * per


def test_estimate_has_no_vocabulary_logits_and_the_embedding_gradient_is_its_own():
    est = estimate(BERT, FULL)
    logits = [v for vals in est.phases.values() for v in vals if "logit" in v.name]
    assert all(v.bytes <= 12 * 8 for v in logits)  # three fp32 B x labels tensors at most
    v, h = BERT.vocab_size, BERT.hidden_size
    assert t.embedding_gradient(BERT, FULL) == (v + 512 + 2) * h * 4  # word, position and token-type tables
    assert t.tied_embedding_transient(BERT, FULL) == 0


def test_trainer_adamw_before_4_32_is_transformers_own_loop():
    old = estimate(BERT, FULL.with_(versions="transformers=4.18.0"))
    step = {v.name: v.bytes for v in old.phases["optimizer step"]}
    assert step["transformers AdamW scratch"] == BERT.vocab_size * BERT.hidden_size * 4  # `denom` of the embedding
    assert "foreach AdamW scratch" not in step
    newer = estimate(BERT, FULL.with_(versions="transformers=4.40.0"))
    step = {v.name: v.bytes for v in newer.phases["optimizer step"]}
    assert step["foreach AdamW scratch"] == count_params(BERT).total * 4
    assert "transformers AdamW scratch" not in step


def test_encoder_attention_sees_every_key():
    sdpa = FULL.with_(attention="sdpa", precision="bf16")
    assert not t.causal_attention(BERT, sdpa)
    time = step_time(BERT, sdpa, find_gpu("a100-80gb"))
    assert time.flops == pytest.approx(fl.step_flops(BERT, sdpa, scored=4, causal=False, flash=True).total)
    full = fl.attention_flops(BERT, 4, 512, causal=False)
    assert full == pytest.approx(2 * fl.attention_flops(BERT, 4, 512, causal=True))


@pytest.mark.parametrize(
    "changes, words", [({"train": "dpo"}, "needs a causal language model"), ({"adaptation": "lora", "llama_adapter": True}, "encoder")]
)
def test_kinds_an_encoder_cannot_run_are_refused(changes, words):
    with pytest.raises(EstimateError, match=words):
        estimate(BERT, FULL.with_(**changes))


def test_cli_refuses_with_one_line(capsys):
    assert main(["estimate", "--model", "bert-large-uncased", "--train", "grpo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "encoder" in err[0]
    assert main(["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", "rtx4090", "--model", "bert-base-uncased"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "advisor estimate --model bert-base-uncased" in err[0]


def test_lora_presets_name_bert_modules():
    from estimators.lora_targets import lora_target_names

    assert lora_target_names(BERT, FULL.with_(adaptation="lora", lora_targets="qv")) == ("query", "value")
    assert "attention.output.dense" in lora_target_names(BERT, FULL.with_(adaptation="lora", lora_targets="attention"))


def test_the_transformers_docs_bert_rows_are_priced():
    with open("estimators/calibration/published_calibration.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["model_id"] == "bert-large-uncased"]
    assert len(rows) == 9
    for row in rows:
        c = compare_published_row(row)
        assert not c.skipped, c.skipped
        assert abs(c.error) < 0.10, (row["row_id"], c.error)


def test_encoders_are_a_band_class_of_their_own():
    """An encoder is judged by the encoder rows; decoders' pooled fallback never sees them (a decoder's band must not
    narrow because BERT fits well)."""
    from estimators import band_fit

    assert estimate(BERT, FULL).band.klass == "encoder x hf-trainer x device"
    llama = resolve_model("llama-3.2-1b").spec
    assert estimate(llama, Setup(stack="hf-trainer")).band.klass.startswith("lora x ")
    table = band_fit.band_table([("encoder", "hf-trainer", "device", 0.5, "s"), ("lora", "trl", "device", 1.0, "s")])
    assert table["any x any x device"]["n"] == 1 and table["encoder x any x device"]["n"] == 1


def test_lora_on_an_encoder_trains_the_classifier_as_peft_seq_cls_does():
    """peft's SEQ_CLS task adds the classifier to modules_to_save: the estimate's trainable count is peft's."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForSequenceClassification

    spec = resolve_model("bert-base-uncased").spec
    setup = Setup(adaptation="lora", lora_targets="qv", lora_r=8, stack="hf-trainer", seq_len=512)
    cfg = dict(hf_config_from_spec(spec))
    cfg.pop("architectures")
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=["query", "value"]))
    trained = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    est = estimate(spec, setup)
    assert est.trainable == trained == 12 * 2 * 8 * (768 + 768) + 768 * 2 + 2
    assert est.setup.modules_to_save == "lm_head"


def test_an_encoder_on_a_decoder_only_stack_is_refused():
    with pytest.raises(EstimateError, match="--stack litgpt trains causal language models"):
        estimate(BERT, FULL.with_(stack="litgpt"))


def test_qlora_on_roberta_is_refused_as_the_trace_refuses_it():
    roberta = resolve_model("roberta-base").spec
    with pytest.raises(EstimateError, match="classification head's dense layer"):
        estimate(roberta, Setup(adaptation="qlora", stack="hf-trainer", seq_len=512))


def test_encoder_terms_the_traces_showed():
    """BERT base LoRA with checkpointing (traced -0.0 % after these): fp32 checkpoints (the previous LayerNorm's
    output), the embedding LayerNorm's input kept to the end, the rebuilt post-LN layer's working set, and only the
    fp32 first-token gradient reaching the top layer."""
    spec = resolve_model("bert-base-uncased").spec
    s = Setup(adaptation="lora", lora_targets="qv", stack="hf-trainer", micro_batch=16, seq_len=512)
    n, h, i = 16 * 512, 768, 3072
    assert t.checkpoint_saved(spec, s) == 4 * h * n
    assert t.embedding_norm_saved(spec, s) == (4 + 2 + 1) * h * n  # fp32 LN input, bf16 word embedding, dropout mask
    assert t.post_norm_transient(spec, s) == ((2 * 4 + 2) * h + 2 * i) * n
    assert t.backward_grad_buffers(spec, s) == 4 * h * n
    # QLoRA: the word-embedding output is fp32 after peft's k-bit upcast, bf16 without it
    assert t.embedding_norm_saved(spec, s.with_(adaptation="qlora")) == (4 + 4 + 1) * h * n
    assert t.embedding_norm_saved(spec, s.with_(adaptation="qlora", kbit_upcast=False)) == (4 + 2 + 1) * h * n
    llama = resolve_model("llama-3.2-1b").spec
    assert t.embedding_norm_saved(llama, s) == 0 and t.post_norm_transient(llama, s) == 0
