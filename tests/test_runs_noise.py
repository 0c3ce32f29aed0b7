"""Issue 13 item 16, the launch side: known library noise goes only to the stage's log file; real warnings and
everything unknown still reach the console; a gated model without a Hugging Face token is said before training
(run README and `advisor launch`'s environment check), checked without the network."""

from __future__ import annotations

import textwrap

from test_launch import FAKE_TRAIN

from advisor import hubaccess
from advisor.lognoise import NoiseFilter
from advisor.plan import save_plan
from advisor.planning import build_plan
from advisor.scriptgen import render
from advisor.scriptgen.pins import FALLBACK_PINS
from estimators.setup import Setup

NOISY = textwrap.dedent("""
    import sys
    print("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure you already `pip install kernels`", flush=True)
    print("/x/site-packages/transformers/modeling_utils.py:3312: FutureWarning: `is_gradient_checkpointing` is deprecated and will be removed in v6.", file=sys.stderr, flush=True)
    print("  warnings.warn(", file=sys.stderr, flush=True)
    print("[transformers] \\x1b[1mLlamaForSequenceClassification LOAD REPORT\\x1b[0m from: /tmp/m", flush=True)
    for row in ("Key            | Status     |", "---------------+------------+-", "lm_head.weight | UNEXPECTED |", "score.weight   | MISSING    |", "", "Notes:", "- MISSING:\tthose params were newly initialized"):
        print(row, flush=True)
    print("/x/train.py:9: UserWarning: a REAL warning the user must see", file=sys.stderr, flush=True)
    print("  warnings.warn(", file=sys.stderr, flush=True)
""")


def test_known_noise_goes_to_the_log_only_and_real_warnings_stay(tmp_path, launch_here):
    run_dir = tmp_path / "run"
    plan = build_plan("tiny", Setup(), pipeline="sft", gpu="rtx4090", output_dir="out")
    save_plan(plan, run_dir / "plan.toml")
    (run_dir / "train_sft.py").write_text(NOISY + FAKE_TRAIN)
    done = launch_here(str(run_dir), "--no-progress", env={"FAKE_STEPS": "2"})
    assert done.returncode == 0, done.stderr
    shown = done.stdout
    for noise in ("gemm_4bit_forward", "is_gradient_checkpointing", "LOAD REPORT", "lm_head.weight", "score.weight", "Notes:", "newly initialized"):
        assert noise not in shown, noise
    assert "UserWarning: a REAL warning the user must see" in shown and "  warnings.warn(" in shown  # kept, with its line
    assert "3 known library warning(s) of stage sft not shown; they are in its log" in shown
    log = (run_dir / "logs" / "sft.log").read_text()
    for noise in ("gemm_4bit_forward", "is_gradient_checkpointing", "LOAD REPORT", "score.weight   | MISSING"):
        assert noise in log


def test_a_head_report_with_unexpected_rows_is_not_swallowed():
    noise = NoiseFilter()
    assert noise.hide("LlamaForSequenceClassification LOAD REPORT from: x")
    assert noise.hide("score.weight   | MISSING    |")
    assert not noise.hide("model.layers.0.mlp.up_proj.weight | MISSING |")  # a real problem is shown
    assert not noise.hide("  warnings.warn(")  # a follow-up line only belongs to the message right above it


def test_gated_models_and_the_token_check(tmp_path):
    assert hubaccess.gated("meta-llama/Llama-3.1-8B-Instruct") and hubaccess.gated("google/gemma-2-9b")
    assert hubaccess.gated("Qwen/Qwen2.5-7B") is None and hubaccess.gated("tiny") is None
    assert hubaccess.gated(str(tmp_path)) is None  # a local folder is never gated
    home = tmp_path / "hf"
    env = {"HF_HOME": str(home)}
    assert hubaccess.token_source(env) is None
    warning = hubaccess.missing_token_warning("meta-llama/Llama-3.1-8B", env)
    assert "no token is configured" in warning and str(home / "token") in warning and "hf auth login" in warning
    assert hubaccess.token_source({**env, "HF_TOKEN": "hf_x"}) == "HF_TOKEN"
    home.mkdir()
    (home / "token").write_text("hf_abc\n")
    assert hubaccess.token_source(env) == str(home / "token") and hubaccess.missing_token_warning("meta-llama/Llama-3.1-8B", env) == ""


def test_readme_and_launch_check_say_a_gated_model_needs_a_token(tmp_path, monkeypatch):
    plan = build_plan("8b", Setup(adaptation="qlora"), pipeline="sft", gpu="rtx4090", output_dir="out")
    assert plan.model.hf_id.startswith("meta-llama/")
    readme = render(plan, versions=FALLBACK_PINS)["README.md"]
    assert "## Access to the model" in readme and "is gated on the Hugging Face Hub" in readme and "HF_TOKEN" in readme
    assert "## Access to the model" not in render(build_plan("tiny", Setup(), pipeline="sft", gpu="rtx4090"), versions=FALLBACK_PINS)["README.md"]

    from advisor import launch

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_TOKEN_PATH", raising=False)
    report = launch.check_environment(plan, force=True, gpu_facts=launch.GpuFacts(count=0))
    assert any("is gated on the Hugging Face Hub and no token is configured" in w for w in report.warnings)
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    report = launch.check_environment(plan, force=True, gpu_facts=launch.GpuFacts(count=0))
    assert not any("gated" in w for w in report.warnings)
