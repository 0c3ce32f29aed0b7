"""`advisor estimate` as a user meets it: output, JSON schema, and one-line errors with exit code 2."""

import json

import pytest


def test_human_output_names_the_representative_model_and_the_peak(advisor_main):
    out = advisor_main("estimate", "--model", "7b", "--method", "qlora")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Llama 2 7B" in text or "llama-2-7b" in text.lower()
    assert "shorthand 7b" in text
    for needle in ("base weights", "LoRA adapters", "allocated peak", "reserved peak", "CUDA context", "RTX 4090", "micro-batch=1", "seq-len=2048"):
        assert needle in text, needle


def test_json_schema_is_stable_and_self_consistent(advisor_main):
    out = advisor_main("estimate", "--model", "8b", "--method", "lora", "--gpu", "rtx4090", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["schema"] == "advisor.estimate/1"
    assert data["statistic"] == "allocated"
    assert set(data["categories"]) == {"parameters", "gradients", "optimizer", "activations", "temporaries", "other"}
    peak = data["peak"]
    assert sum(t["bytes"] for t in data["terms"]) == peak["allocated"]["bytes"]
    assert sum(c["bytes"] for c in data["categories"].values()) == peak["allocated"]["bytes"]
    assert peak["allocated"]["bytes"] <= peak["reserved"]["bytes"] < peak["device"]["bytes"]
    assert data["phases"][peak["phase"]]["bytes"] == max(p["bytes"] for p in data["phases"].values())
    assert data["gpu"]["id"] == "rtx4090"
    assert data["gpu"]["fits"] == (data["gpu"]["headroom_gib"] >= 0)
    assert data["model"]["params_total"] == 8_030_261_248  # Llama 3.1 8B
    assert data["setup"]["grad_ckpt"] is True  # LoRA default
    assert data["covers"] and data["excludes"]


def test_gpu_verdict_says_by_how_much(advisor_main):
    fits = advisor_main("estimate", "--model", "7b", "--method", "qlora", "--gpu", "rtx4090")
    assert "fits" in fits.stdout and "to spare" in fits.stdout
    over = advisor_main("estimate", "--model", "70b", "--method", "full", "--gpu", "rtx4090")
    assert "does not fit" in over.stdout and "GiB over" in over.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--model", "llama-9000"], "unknown model 'llama-9000'"),
        (["--model", "lama-2-7b"], "did you mean"),
        (["--method", "prefix"], "valid: full, lora, qlora"),
        (["--optimizer", "adam"], "valid: adamw"),
        (["--gpu", "rtx9999"], "unknown GPU 'rtx9999'"),
        (["--micro-batch", "0"], "--micro-batch must be a positive"),
        (["--seq-len", "-5"], "--seq-len must be a positive"),
        (["--lora-r", "abc"], "argument --lora-r: expects a whole number"),
        (["--model", "7b", "--method", "qlora", "--precision", "fp32"], "QLoRA computes in bf16"),
    ],
)
def test_bad_input_is_one_line_exit_2(advisor_main, args, needle):
    out = advisor_main("estimate", *args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_sequence_beyond_max_positions_warns(advisor_main, tmp_path):
    out = advisor_main("estimate", "--model", "llama-2-7b", "--seq-len", "8192")
    assert out.returncode == 0
    assert "warning: sequence length 8192 exceeds" in out.stderr


def test_malformed_and_partial_config_json(advisor_main, tmp_path):
    bad = tmp_path / "bad" / "config.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    partial = tmp_path / "partial" / "config.json"
    partial.parent.mkdir()
    partial.write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    for path in (bad, partial.parent):
        out = advisor_main("estimate", "--model", str(path))
        assert out.returncode == 2, out.stdout
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_local_config_json_is_estimated(advisor_main, tmp_path):
    config = {
        "model_type": "llama",
        "hidden_size": 256,
        "intermediate_size": 688,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
        "max_position_embeddings": 2048,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    out = advisor_main("estimate", "--model", str(tmp_path), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    # embed 256k + head 256k + 4 x (attn 256*(256+128+128+256) + mlp 3*256*688 + 2 norms) + final norm
    per_layer = 256 * 768 + 3 * 256 * 688 + 2 * 256
    assert data["model"]["params_total"] == 2 * 1000 * 256 + 4 * per_layer + 256
