"""Token lengths with a locally trained tiny tokenizer (exactly what the trainer tokenizes), the chat template
rendered as transformers renders it, the summaries, and the plan they feed: sequence length, packing, memory."""

from __future__ import annotations

import json

import pytest
from data_corpus import CHATML, PREFERENCE, PROMPT_COMPLETION, SFT_MESSAGES, STRICT, tiny_model, tiny_tokenizer, turns, write_jsonl

from advisor.datasets.chat_template import render_chat
from advisor.datasets.counters import ApproxCounter, TokenizerCounter, char_classes, find_tokenizer
from advisor.datasets.detect import detect, to_trl
from advisor.datasets.lengths import measure
from advisor.datasets.recommend import memory_at, packing_for, round_len, seq_len_for
from advisor.datasets.stats import at_seq_len, histogram, percentile, summary


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return tiny_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def raw(tok_dir):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tok_dir / "tokenizer.json"))


def test_standard_prompt_completion_counts_as_the_trainer_tokenizes(tok_dir, raw):
    counter = TokenizerCounter(tok_dir)
    det = detect(PROMPT_COMPLETION)
    m = measure([to_trl(r, det) for r in PROMPT_COMPLETION], det, counter)
    for i, r in enumerate(PROMPT_COMPLETION):
        p = len(raw.encode(r["prompt"]).ids)  # with <s>, as tokenizer(prompt) gives
        whole = len(raw.encode(r["prompt"] + r["completion"] + "</s>").ids)  # the eos appended as text
        assert (m.fields["prompt"][i], m.fields["completion"][i], m.fields["total"][i]) == (p, whole - p, whole)
    assert raw.encode("x").ids[0] == raw.token_to_id("<s>")  # the fixture does add a bos
    assert raw.encode("x</s>").ids[-1] == raw.token_to_id("</s>")  # and the eos text is one token


def test_counts_match_what_trl_tokenizes(tok_dir):
    """The lengths equal the token ids trl 1.16's SFT and DPO preprocessing builds (its own _tokenize, the eos it
    appends to standard data), for standard and conversational rows."""
    pytest.importorskip("trl")
    transformers = pytest.importorskip("transformers")
    from trl.data_utils import _tokenize

    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"), bos_token="<s>", eos_token="</s>")
    hf.chat_template = CHATML
    counter = TokenizerCounter(tok_dir)
    conv_pc = [{"prompt": turns(("user", f"Q {i}?")), "completion": turns(("assistant", f"A {i}."))} for i in range(5)]
    conv_pref = [
        {"prompt": turns(("user", f"Q {i}?")), "chosen": turns(("assistant", "Yes.")), "rejected": turns(("assistant", "No, never."))}
        for i in range(5)
    ]
    for rows in (PROMPT_COMPLETION[:5], conv_pc):
        det = detect(rows)
        m = measure([to_trl(r, det) for r in rows], det, counter)
        for i, r in enumerate(rows):
            if det.form == "standard":  # SFTTrainer: add_eos, then _tokenize(prompt + completion)
                ids = _tokenize(hf, r["prompt"] + r["completion"] + "</s>")["input_ids"]
            else:
                ids = _tokenize(hf, r["prompt"] + r["completion"])["input_ids"]
            assert m.fields["total"][i] == len(ids)
    for rows in (PREFERENCE[:5], conv_pref):
        det = detect(rows)
        m = measure([to_trl(r, det) for r in rows], det, counter)
        for i, r in enumerate(rows):
            eos = "</s>" if det.form == "standard" else []
            chosen = _tokenize(hf, r["prompt"] + r["chosen"] + eos)["input_ids"]
            rejected = _tokenize(hf, r["prompt"] + r["rejected"] + eos)["input_ids"]
            assert m.fields["total"][i] == max(len(chosen), len(rejected))


def test_conversational_counts_use_the_chat_template(tok_dir, raw):
    counter = TokenizerCounter(tok_dir)
    det = detect(SFT_MESSAGES)
    m = measure([to_trl(r, det) for r in SFT_MESSAGES], det, counter)
    text = render_chat(CHATML, SFT_MESSAGES[0]["messages"], False, {})
    assert text.startswith("<|im_start|>user\n") and text.endswith("<|im_end|>\n")
    assert m.fields["total"][0] == len(raw.encode(text, add_special_tokens=False).ids)


def test_template_rendering_matches_transformers(tok_dir):
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tok_dir / "tokenizer.json"), bos_token="<s>", eos_token="</s>")
    hf.chat_template = CHATML
    counter = TokenizerCounter(tok_dir)
    for row in SFT_MESSAGES[:5]:
        for gen in (False, True):
            msgs = row["messages"][:1] if gen else row["messages"]
            ids = hf.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            assert counter.count_chat([msgs], gen)[0] == [len(ids)]


def test_conversational_prompt_completion_split(tok_dir, raw):
    counter = TokenizerCounter(tok_dir)
    rows = [{"prompt": turns(("user", "What is 2+2?")), "completion": turns(("assistant", "It is 4."))}]
    det = detect(rows)
    m = measure([to_trl(r, det) for r in rows], det, counter)
    prompt = len(raw.encode(render_chat(CHATML, rows[0]["prompt"], True, {}), add_special_tokens=False).ids)
    whole = len(raw.encode(render_chat(CHATML, rows[0]["prompt"] + rows[0]["completion"], False, {}), add_special_tokens=False).ids)
    assert m.fields["prompt"] == [prompt] and m.fields["completion"] == [whole - prompt] and m.fields["total"] == [whole]


def test_preference_total_is_prompt_plus_the_longer_answer(tok_dir):
    counter = TokenizerCounter(tok_dir)
    det = detect(PREFERENCE)
    m = measure([to_trl(r, det) for r in PREFERENCE], det, counter)
    for i in range(len(PREFERENCE)):
        assert m.fields["total"][i] == m.fields["prompt"][i] + max(m.fields["chosen"][i], m.fields["rejected"][i])


def test_a_template_that_refuses_the_turns_is_a_row_error(advisor_main, tmp_path):
    folder = tiny_tokenizer(tmp_path / "strict", STRICT)
    rows = [dict(r) for r in SFT_MESSAGES]
    rows[3] = {"messages": turns(("assistant", "I start."), ("user", "Odd."))}
    r = advisor_main("data", "check", str(write_jsonl(tmp_path / "d.jsonl", rows)), "--tokenizer", str(folder), "--json")
    assert r.returncode == 2, r.stderr
    problems = {p["kind"]: p for p in json.loads(r.stdout)["problems"]}
    assert problems["template_error"]["first_rows"] == [4]
    assert "roles must alternate" in problems["template_error"]["example"]


def test_approximation_counts_characters_by_class():
    assert char_classes("ab1, 한국!") == (2, 1, 2, 1, 2)
    a = ApproxCounter({"letter": 0.25, "digit": 1.0, "punct": 0.5, "space": 0.0, "non_ascii": 1.0})
    assert a.tokens("abcdefgh") == 2
    assert a.tokens("12 한국") == 4  # two digits, a space, two Hangul syllables
    assert a.count(["abcd"], special=True) == [2]  # + a bos
    assert a.tokens("") == 0


def test_summaries_by_hand():
    values = list(range(1, 101))
    assert percentile(sorted(values), 50) == 50 and percentile(sorted(values), 99) == 99 and percentile(sorted(values), 100) == 100
    s = summary([5, 1, 9])
    assert (s["p50"], s["max"], s["mean"]) == (5, 9, 5.0)
    from collections import Counter

    many = [3] * 50 + [7] * 45 + [100] * 5
    assert summary(Counter(many)) == summary(many) and (summary(many)["p90"], summary(many)["p99"]) == (7, 100)
    assert [summary(values)[f"p{q}"] for q in (50, 90, 99)] == [percentile(sorted(values), q) for q in (50, 90, 99)]
    assert histogram([10, 40, 40, 300]) == [
        {"from": 0, "to": 32, "rows": 1},
        {"from": 32, "to": 64, "rows": 2},
        {"from": 64, "to": 128, "rows": 0},
        {"from": 128, "to": 256, "rows": 0},
        {"from": 256, "to": 512, "rows": 1},
    ]


def test_truncation_padding_and_packing_by_hand():
    at = at_seq_len([100, 300, 50, 50], 50, seq_len=200, micro_batch=2)
    assert at["truncated_rows"] == 1 and at["truncated_share"] == 0.25
    assert at["tokens_per_epoch"] == 100 + 200 + 50 + 50
    assert at["unpacked"]["padding_tokens"] == (200 - 100) + 0  # batch (100, 200) pads 100, batch (50, 50) none
    assert at["packed"]["sequences"] == 2  # 400 tokens in 200-token sequences
    assert at["supervised_tokens_per_epoch"] == 40  # 50 supervised of 500 tokens, 400 kept: the same share


def test_recommended_length_rounds_as_kernels_like():
    assert [round_len(n) for n in (1, 64, 65, 1000, 1024, 1025, 5000)] == [64, 64, 128, 1024, 1024, 1152, 5120]
    totals = [100] * 98 + [700, 5000]
    assert seq_len_for(totals, 0.98)["seq_len"] == 128
    assert seq_len_for(totals, 0.99)["seq_len"] == 704
    rec = seq_len_for(totals, 1.0, max_positions=4096)
    assert rec["seq_len"] == 4096 and rec["capped_at_model"]


def test_packing_decision():
    short = at_seq_len([100] * 8, 400, 1024, 4)
    assert packing_for("sft", short)[0] is True
    full = at_seq_len([1000] * 8, 4000, 1024, 4)
    on, why = packing_for("sft", full)
    assert on is False and "gains little" in why
    assert packing_for("dpo", short) == (False, "trl packs SFT only; dpo batches are padded to their longest row")


def test_memory_priced_at_the_longest_batch():
    from estimators import estimate
    from estimators.catalog import resolve_model
    from estimators.setup import Setup

    spec = resolve_model("8b").spec
    setup = Setup(seq_len=4096, micro_batch=4)
    mem = memory_at(spec, setup, longest=3000, capacity_bytes=24 * 2**30)
    want = estimate(spec, setup.with_(seq_len=3000, packed=False)).device_bytes
    assert mem["longest_unpacked"]["device_bytes"] == want and mem["longest_unpacked"]["seq_len"] == 3000
    assert mem["packed"]["device_bytes"] == estimate(spec, setup.with_(packed=True)).device_bytes
    assert mem["packed"]["device_bytes"] > want  # a full 4096 sequence costs more than the 3000 one
    assert memory_at(spec, setup, longest=9000, capacity_bytes=None)["longest_unpacked"]["seq_len"] == 4096  # cut at seq_len


def test_cli_with_a_local_model_uses_its_tokenizer_and_prices_memory(advisor_main, tmp_path):
    model = tiny_model(tmp_path / "tiny")
    assert find_tokenizer(str(model)) == model
    f = write_jsonl(tmp_path / "d.jsonl", SFT_MESSAGES)
    r = advisor_main("data", "check", str(f), "--model", str(model), "--gpu", "24GB", "--micro-batch", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["tokens"]["counter"]["exact"] is True and data["tokens"]["counter"]["template"] is True
    assert data["memory"]["longest_unpacked"]["seq_len"] == data["tokens"]["sequence"]["max"]
    assert data["memory"]["longest_unpacked"]["fits"] is True
    assert data["recommendation"]["seq_len"] % 64 == 0
    text = advisor_main("data", "check", str(f), "--model", str(model), "--gpu", "24GB", "--no-progress").stdout
    assert "sequence tokens per row:" in text and "recommended: --seq-len" in text and "fits" in text


def test_no_tokenizer_states_the_approximation(advisor_main, tmp_path):
    r = advisor_main("data", "check", str(write_jsonl(tmp_path / "d.jsonl", PROMPT_COMPLETION)), "--model", "8b", "--json")
    data = json.loads(r.stdout)
    c = data["tokens"]["counter"]
    assert c["exact"] is False and "approximation" in c["note"] and "no tokenizer.json for 8b" in c["why"]
    assert c["approximation"]["source"].startswith("bench/data_speed.py")


def test_gpu_without_model_is_an_input_error(advisor_main, tmp_path):
    r = advisor_main("data", "check", str(write_jsonl(tmp_path / "d.jsonl", PROMPT_COMPLETION)), "--gpu", "24GB")
    assert r.returncode == 2 and "--gpu needs --model" in r.stderr and "Traceback" not in r.stderr


def test_time_and_cost_from_the_real_token_count(advisor_main, tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", PROMPT_COMPLETION * 5)
    r = advisor_main("data", "check", str(f), "--model", "8b", "--gpu", "rtx4090", "--epochs", "3", "--packed", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    time = data["time"]
    assert time["dataset"]["training_tokens"] == data["tokens"]["tokens_per_epoch"] * 3  # packed: the tokens themselves
    assert time["hours"]["total"] > 0 and time["from_data"].startswith("packed")
    unpacked = json.loads(
        advisor_main("data", "check", str(f), "--model", "8b", "--gpu", "rtx4090", "--no-packed", "--micro-batch", "4", "--json").stdout
    )
    tok = unpacked["tokens"]
    assert unpacked["time"]["dataset"]["training_tokens"] == pytest.approx(tok["tokens_per_epoch"] + tok["unpacked"]["padding_tokens"], abs=1)
