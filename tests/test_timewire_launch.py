"""`advisor launch` against the time model (issue 16): measured tokens/s next to the prediction, an ETA, and one
JSON line per stage appended to the throughput file ($ADVISOR_THROUGHPUT_LOG here, so the test writes to tmp_path)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from test_launch import FAKE_TRAIN

from advisor import launch
from advisor.plan import save_plan
from advisor.planning import build_plan, model_spec
from advisor.throughput_log import ENV, Meter, Prediction, append_record, log_path, predict
from estimators.gpus import find_gpu
from estimators.setup import Setup
from estimators.timing import step_time

H100 = launch.GpuFacts(count=1, free_gib=[79.0], bf16=True, names=["NVIDIA H100 80GB HBM3"])


def real_model_run(tmp_path, pipeline="sft+dpo"):
    """A plan for a catalog model (priced by the time model) whose scripts are the fake training script."""
    run_dir = tmp_path / "run"
    plan = build_plan("7b", Setup(adaptation="lora"), pipeline=pipeline, gpu="h100", output_dir="out")
    save_plan(plan, run_dir / "plan.toml")
    for stage in plan.stages:
        (run_dir / f"train_{stage.name}.py").write_text(FAKE_TRAIN)
    return run_dir, plan


def test_launch_compares_with_the_prediction_and_appends_one_line_per_stage(tmp_path, monkeypatch):
    log = tmp_path / "tp" / "throughput.jsonl"
    monkeypatch.setenv(ENV, str(log))
    monkeypatch.setenv("FAKE_STEPS", "6")
    run_dir, plan = real_model_run(tmp_path)
    out = io.StringIO()
    rc = launch.run(
        plan,
        run_dir,
        force=True,
        progress=False,
        gpu_facts=H100,
        console=Console(file=out, width=200),
        err_console=Console(file=io.StringIO(), width=200),
    )
    assert rc == 0
    text = out.getvalue()
    spec = model_spec("7b")[0]
    want = step_time(spec, plan.stage("sft").setup, find_gpu("h100")).tokens_per_s
    assert f"predicts {want:,.0f} tokens/s per GPU on NVIDIA H100 80GB" in text
    pct = 100 * (1000.0 / want - 1)  # the fake script reports 1,000 tokens/s
    assert f"1,000 tok/s  vs {want:,.0f} predicted ({pct:+.0f} %), eta 0:00:00" in text
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["sft", "dpo"]
    sft = rows[0]
    assert sft["predicted_tokens_per_s_per_gpu"] == round(want, 1) and sft["measured_tokens_per_s_per_gpu"] == 1000.0
    assert sft["gpu_name"] == "NVIDIA H100 80GB HBM3" and sft["status"] == "completed"
    assert sft["model"] == plan.model.hf_id and "micro-batch" in sft["setup"] and sft["date"][:2] == "20"


def test_a_crashed_stage_is_still_recorded_and_earlier_lines_kept(tmp_path, monkeypatch):
    log = tmp_path / "throughput.jsonl"
    log.write_text('{"earlier": true}\n')
    monkeypatch.setenv(ENV, str(log))
    monkeypatch.setenv("FAKE_STEPS", "8")
    monkeypatch.setenv("FAKE_CRASH_AT", "5")
    monkeypatch.setenv("FAKE_CRASH_STAGE", "sft")
    run_dir, plan = real_model_run(tmp_path)
    rc = launch.run(
        plan, run_dir, force=True, progress=False, gpu_facts=H100, console=Console(file=io.StringIO()), err_console=Console(file=io.StringIO())
    )
    assert rc == 3
    lines = log.read_text().splitlines()
    assert json.loads(lines[0]) == {"earlier": True}
    assert [json.loads(x)["status"] for x in lines[1:]] == ["failed"]  # sft crashed at step 5; dpo never ran


def test_cpu_and_tiny_runs_are_not_recorded(tmp_path, monkeypatch):
    log = tmp_path / "throughput.jsonl"
    monkeypatch.setenv(ENV, str(log))
    monkeypatch.setenv("FAKE_STEPS", "3")
    run_dir, plan = real_model_run(tmp_path, pipeline="sft")
    assert (
        launch.run(
            plan,
            run_dir,
            force=True,
            progress=False,
            gpu_facts=launch.GpuFacts(count=0),
            console=Console(file=io.StringIO()),
            err_console=Console(file=io.StringIO()),
        )
        == 0
    )
    assert not log.exists()  # a CPU run says nothing about the GPU prediction
    tiny = build_plan("tiny", Setup(), pipeline="sft", gpu="h100")
    assert predict(tiny, tiny.stages[0], ["NVIDIA H100 80GB HBM3"]) is None


def test_meter_eta_and_median_leave_out_the_warm_up():
    now = [100.0]
    m = Meter(prediction=Prediction("h100", "NVIDIA H100 80GB", 500.0, 2), clock=lambda: now[0])
    for step, rate in ((1, 50.0), (2, 900.0), (3, 1000.0), (4, 1100.0)):
        m.add({"step": step, "total_steps": 10, "tokens_per_s": rate})
        now[0] += 2.0  # 2 s per step
    assert m.measured == 1000.0  # median of 900, 1000, 1100: the first interval (50) is start-up
    assert m.eta_seconds() == 12.0  # (4 - 1) steps in 6 s, 6 steps left
    assert m.text() == "vs 1,000 predicted (+10 %), eta 0:00:12"  # 2 GPUs x 500 per GPU
    assert (
        m.record(
            build_plan("7b", Setup(), pipeline="sft", gpu="h100"), build_plan("7b", Setup(), pipeline="sft", gpu="h100").stages[0], "completed", None
        )["measured_tokens_per_s_per_gpu"]
        == 1000.0
    )  # one GPU in this setup


def test_log_path_default_and_override(tmp_path):
    assert log_path({ENV: str(tmp_path / "x.jsonl")}) == tmp_path / "x.jsonl"
    assert log_path({"XDG_CACHE_HOME": "/c"}) == Path("/c/advisor/throughput.jsonl")
    assert log_path({}) == Path.home() / ".cache" / "advisor" / "throughput.jsonl"
    path = append_record({"a": 1}, tmp_path / "d" / "t.jsonl")
    append_record({"a": 2}, path)
    assert [json.loads(x)["a"] for x in path.read_text().splitlines()] == [1, 2]
