"""`advisor measure` on an encoder (BERT, RoBERTa): the model built as AutoModelForSequenceClassification with the
spec's labels, a batch of class labels per sequence, the model's own CrossEntropyLoss, dropout left on, the flash
emulation bidirectional, and the fake-tensor trace of a tiny BERT equal to a real CPU run of the same step."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from estimators.catalog import resolve_model  # noqa: E402
from estimators.setup import Setup  # noqa: E402

# Three labels, so that a head built with transformers' default (2) or the reward model's (1) would show.
TINY = dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=4, vocab_size=256, num_labels=3)
TINY_BERT = resolve_model("bert-base-uncased").spec.with_(name="tiny bert", max_positions=128, **TINY)
TINY_ROBERTA = resolve_model("roberta-base").spec.with_(name="tiny roberta", max_positions=130, **TINY)  # two offset by padding
FULL = Setup(adaptation="full", precision="fp32", attention="eager", micro_batch=2, seq_len=32, loss="full")


def _built(spec, setup: Setup):
    from advisor.measure.attention import traced_attention
    from advisor.measure.build import build_model, sft_batch
    from advisor.measure.trace import _quiet

    with traced_attention(cpu_kernel=True), _quiet():  # registers the flash emulation the sdpa set-ups build with
        model, _ = build_model(spec, setup)
    return model, sft_batch(spec, setup)


@pytest.mark.parametrize("spec, cls", [(TINY_BERT, "BertForSequenceClassification"), (TINY_ROBERTA, "RobertaForSequenceClassification")])
def test_an_encoder_is_built_for_sequence_classification_with_dropout_on(spec, cls):
    model, batch = _built(spec, FULL)
    assert type(model).__name__ == cls
    assert model.config.num_labels == 3 and model.get_output_embeddings() is None  # no LM head
    assert model.training
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(m.p > 0 for m in drops)  # the HF Trainer keeps BERT's dropout (hidden and attention)
    assert batch["input_ids"].shape == (2, 32)
    labels = batch["labels"]
    assert labels.shape == (2,) and labels.dtype == torch.long  # one class per sequence, not per token
    assert int(labels.min()) >= 0 and int(labels.max()) < 3


def test_the_step_loss_is_cross_entropy_over_the_class_labels():
    """forward_loss (the SFT step's loss) on the encoder is the model's CrossEntropyLoss of its B x num_labels
    logits against the class labels: the same value recomputed by hand under the same dropout draws."""
    import torch.nn.functional as F

    from advisor.measure.step import forward_loss

    model, batch = _built(TINY_BERT, FULL)
    torch.manual_seed(0)
    loss = forward_loss(model, batch, None)
    torch.manual_seed(0)
    logits = model(input_ids=batch["input_ids"]).logits
    assert logits.shape == (2, 3)
    assert torch.allclose(loss, F.cross_entropy(logits, batch["labels"]))
    other = {**batch, "labels": (batch["labels"] + 1) % 3}
    torch.manual_seed(0)
    assert not torch.allclose(loss, forward_loss(model, other, None))  # the labels are read


def test_bidirectional_flash_emulation_matches_sdpa():
    """An encoder's attention modules say is_causal=False: the flash emulation must see every key."""
    from advisor.measure.attention import FlashAttention

    b, h, s, d = 1, 2, 16, 8
    q, k, v = (torch.randn(b, s, h, d).transpose(1, 2) for _ in range(3))
    out = FlashAttention.apply(q, k, v, 0.0, d**-0.5, True, False)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=False)
    assert torch.allclose(out, ref, atol=1e-5)
    assert not torch.allclose(FlashAttention.apply(q, k, v, 0.0, d**-0.5, True, True), ref, atol=1e-3)


def test_qlora_leaves_the_classifier_unquantised():
    """transformers' bitsandbytes loading keeps the module of the last parameter (BERT's classifier) in full
        precision and quantises the pooler's dense; peft's SEQ_CLS task trains a copy of the classifier (the head
    rule _decoder_linears follows: without it every nn.Linear but an LM head would be quantised)."""
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    model, _ = _built(TINY_BERT.with_(hidden_size=128, intermediate_size=256), Setup(adaptation="qlora", micro_batch=2, seq_len=32))
    base = model.get_base_model()
    assert isinstance(base.bert.pooler.dense.base_layer, bnb.nn.Linear4bit)  # LoRA-wrapped (all-linear) 4-bit
    assert not isinstance(base.classifier.original_module, bnb.nn.Linear4bit)
    assert any(p.requires_grad for p in base.classifier.modules_to_save.parameters())


def test_qlora_on_roberta_is_refused_not_traced():
    """RoBERTa's head holds a dense layer transformers quantises; peft cannot train the SEQ_CLS copy of it, so a
    real run fails: the trace refuses instead of recording a step that never ran."""
    pytest.importorskip("bitsandbytes")
    from advisor.measure.trace import trace
    from estimators.errors import EstimateError

    with pytest.raises((NotImplementedError, EstimateError), match="classification head"):  # the estimator refuses it too
        trace(TINY_ROBERTA.with_(hidden_size=128, intermediate_size=256), Setup(adaptation="qlora", micro_batch=2, seq_len=32))


@pytest.mark.parametrize(
    "setup",
    [
        FULL,
        FULL.with_(precision="bf16", attention="sdpa", grad_ckpt=True),
        Setup(adaptation="lora", lora_targets="qv", micro_batch=2, seq_len=32, loss="full"),
        Setup(adaptation="lora", micro_batch=2, seq_len=32, grad_ckpt=False, precision="fp16-mixed", attention="eager", loss="full"),
    ],
    ids=["full-fp32-eager", "full-bf16-sdpa-gc", "lora-qv-gc", "lora-fp16-mixed-eager"],
)
def test_encoder_fake_trace_equals_a_real_cpu_run(setup):
    """The encoder branch traced with fake tensors counts what a real CPU run of the same step counts, and the
    peak is recorded in a phase with the activations of a classification step (no vocabulary-sized logits)."""
    from advisor.measure.trace import trace

    fake = trace(TINY_BERT, setup, cpu_kernel=True)
    real = trace(TINY_BERT, setup, real=True)
    assert fake.peak == real.peak > 0
    assert fake.categories == real.categories
    assert fake.phase_peaks == real.phase_peaks
    assert fake.trainable == real.trainable
    assert fake.peak_phase in ("forward", "backward", "optimizer step")
    assert fake.categories["activations"] > 0
    if setup.adaptation == "full":
        assert fake.trainable == fake.params  # every weight trains, the classifier included


def test_measure_command_traces_an_encoder(capsys):
    from advisor.cli import main

    assert main(["measure", "--model", "bert-base-uncased", "--method", "lora", "--micro-batch", "1", "--seq-len", "32", "--json"]) == 0
    import json

    row = json.loads(capsys.readouterr().out)
    assert row["model"] == "bert-base-uncased" and row["peak"]["allocated"] > row["categories"]["parameters"] > 0
    assert row["setup"]["loss"] == "full"  # an encoder has no LM head to fuse
