"""`advisor launch`: real child processes, real signals.

Most tests drive a small fake training script that follows the progress contract exactly (steps with sleeps, a
SIGINT/SIGTERM handler that saves `checkpoint-<step>` and exits 130, `--resume` reading the checkpoint), so they
run in seconds; the launcher runs in this process (conftest's launch_here) unless it is the one a signal is sent to.
The `slow` ones launch the scripts `advisor generate` writes for the tiny model, on the CPU, with the real GPU probe.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_advisor

from advisor import launch
from advisor.cli import main
from advisor.errors import AdvisorError
from advisor.plan import save_plan
from advisor.plan_priced import EstimateSummary
from advisor.planning import build_plan
from estimators.setup import Setup

FAKE_TRAIN = r"""
import argparse, json, os, signal, sys, time
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("--output-dir", required=True)
p.add_argument("--max-steps", type=int)
p.add_argument("--resume", action="store_true")
p.add_argument("--model", default="tiny")
args, _unknown = p.parse_known_args()
STAGE = Path(__file__).stem[len("train_"):]
TOTAL = args.max_steps or int(os.environ.get("FAKE_STEPS", "12"))
SAVE = int(os.environ.get("FAKE_SAVE_STEPS", "3"))
SLEEP = float(os.environ.get("FAKE_SLEEP", "0.02"))
CRASH = int(os.environ.get("FAKE_CRASH_AT", "0")) if STAGE == os.environ.get("FAKE_CRASH_STAGE", STAGE) else 0
out = Path(args.output_dir)
out.mkdir(parents=True, exist_ok=True)
(out / "model_arg.txt").write_text(args.model)

def emit(**event):
    line = json.dumps({"event": event.pop("event"), "stage": STAGE, **event})
    print(line, flush=True)
    with open(out / "progress.jsonl", "a") as f:
        f.write(line + "\n")

stop = []
signal.signal(signal.SIGINT, lambda s, f: stop.append(s))
signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))

def save(step):
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "state.json").write_text(json.dumps({"step": step}))
    emit(event="checkpoint", step=step, path=str(ckpt))

start = 0
if args.resume:
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
    if ckpts:
        start = json.loads((ckpts[-1] / "state.json").read_text())["step"]
emit(event="start", total_steps=TOTAL, resume_step=start)
print(f"loading the fake model from {args.model}", flush=True)
step = start
while step < TOTAL:
    if stop:
        save(step)
        emit(event="end", status="interrupted", step=step, output_dir=str(out))
        sys.exit(130)
    time.sleep(SLEEP)
    step += 1
    if step == CRASH:
        print("Traceback (most recent call last):", flush=True)
        print("RuntimeError: fake crash in the training step", file=sys.stderr, flush=True)
        sys.exit(3)
    with open(out / "steps.txt", "a") as f:
        f.write(f"{step}\n")
    emit(event="log", step=step, total_steps=TOTAL, loss=2.0 / step, learning_rate=1e-4, tokens_per_s=1000.0,
         peak_mem_gib=None, epoch=step / TOTAL)
    if step % SAVE == 0:
        save(step)
(out / "config.json").write_text("{}")
emit(event="end", status="completed", step=step, output_dir=str(out))
"""


def fake_run(tmp_path: Path, pipeline: str = "sft+dpo", setup: Setup | None = None, device_gib: float | None = None) -> Path:
    run_dir = tmp_path / "run"
    plan = build_plan("tiny", setup or Setup(), pipeline=pipeline, gpu="rtx4090", output_dir="out")
    if device_gib is not None:
        plan.estimate = EstimateSummary(
            peak_allocated_gib=device_gib - 1,
            peak_reserved_gib=device_gib - 0.5,
            device_gib=device_gib,
            peak_phase="backward",
            fits=True,
            headroom_gib=1.0,
        )
    save_plan(plan, run_dir / "plan.toml")
    for stage in plan.stages:
        (run_dir / f"train_{stage.name}.py").write_text(FAKE_TRAIN)
    (run_dir / "accelerate_config.yaml").write_text("distributed_type: MULTI_GPU\nnum_processes: 2\n")
    return run_dir


def steps_of(run_dir: Path, stage: str) -> list[int]:
    path = run_dir / "out" / stage / "steps.txt"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def starts_of(run_dir: Path, stage: str) -> list[dict]:
    return [e for e in launch.read_events(run_dir / "out" / stage) if e["event"] == "start"]


# `advisor launch` in a process of its own whose GPU probe answers "no CUDA", as the launch_here fixture does in
# process: the real probe imports torch in a child interpreter (3-6 s a launch), and the fake script needs no device.
NO_CUDA_ADVISOR = (
    "import sys; import advisor.launch.environment as env; env.probe_gpus = lambda *a, **k: env.GpuFacts(count=0); "
    "from advisor.cli import main; sys.exit(main(sys.argv[1:]))"
)


def launcher(run_dir: Path, *flags: str, env: dict | None = None, probe: bool = True) -> subprocess.Popen:
    """`advisor launch RUN_DIR --no-progress FLAGS` as a child to send signals to; `probe=False` skips the GPU probe."""
    entry = ["-m", "advisor"] if probe else ["-c", NO_CUDA_ADVISOR]
    return subprocess.Popen(
        [sys.executable, *entry, "launch", str(run_dir), "--no-progress", *flags],
        cwd=ROOT,
        env=dict(os.environ, **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# ------------------------------------------------------------------------------------------- commands


def test_dry_run_prints_single_process_commands_with_wiring(tmp_path, advisor_main):
    run_dir = fake_run(tmp_path)
    done = advisor_main("launch", str(run_dir), "--dry-run", "--max-steps", "5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"cd {run_dir}"
    assert "python train_sft.py --output-dir out/sft --max-steps 5" in lines
    assert "python train_dpo.py --output-dir out/dpo --max-steps 5" in lines  # its CONFIG wires it to out/sft
    assert not (run_dir / "logs").exists() and not (run_dir / "out").exists()  # nothing ran


def test_dry_run_uses_accelerate_for_multi_gpu(tmp_path, advisor_main):
    run_dir = fake_run(tmp_path, pipeline="sft", setup=Setup(gpus=2, parallel="ddp"))
    done = advisor_main("launch", str(run_dir), "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "accelerate launch --config_file accelerate_config.yaml train_sft.py --output-dir out/sft" in done.stdout
    # on a machine without CUDA the same plan runs as one CPU process
    cmds = launch.build_commands(launch_plan(run_dir), run_dir, cpu=True)
    assert cmds[0].argv[:2] == [sys.executable, "train_sft.py"] and not cmds[0].distributed


def test_ppo_stage_runs_the_ppo_script_even_beside_an_rloo_one(tmp_path):
    """Issue 13 item 7 changed this: PPO is never swapped for RLOO (tests/test_runs_ppo.py covers its environment)."""
    run_dir = fake_run(tmp_path, pipeline="rlhf")
    (run_dir / "train_ppo_rloo.py").write_text(FAKE_TRAIN)
    ppo = launch.build_commands(launch_plan(run_dir), run_dir)[-1]
    assert ppo.script.name == "train_ppo.py" and ppo.pyenv is None  # the fake script has no dependency block


def launch_plan(run_dir: Path):
    from advisor.plan import load_plan

    return load_plan(run_dir / "plan.toml")


def test_missing_script_and_run_dir_are_clear_errors(tmp_path, advisor_main):
    run_dir = fake_run(tmp_path, pipeline="sft")
    (run_dir / "train_sft.py").unlink()
    done = advisor_main("launch", str(run_dir), "--dry-run")
    assert done.returncode == 2 and "has no train_sft.py" in done.stderr and "advisor generate" in done.stderr
    done = advisor_main("launch", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "not found" in done.stderr


def test_help_has_examples(advisor_main):
    done = advisor_main("launch", "--help")
    assert done.returncode == 0
    for text in ("--resume", "--dry-run", "--force", "--max-steps", "--no-progress", "examples:"):
        assert text in done.stdout


def test_launch_module_imports_no_training_stack():
    code = "import sys, advisor.launch, advisor.commands.launch; print(sorted(m for m in ('torch','transformers','trl','peft','accelerate') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------------- environment


def test_refuses_when_estimate_exceeds_the_simulated_card(tmp_path):
    plan = launch_plan(fake_run(tmp_path, pipeline="sft", device_gib=30.0))
    card = launch.GpuFacts(count=1, free_gib=[23.5], bf16=True, names=["RTX 4090"])
    with pytest.raises(AdvisorError, match=r"needs about 30\.0 GiB per GPU.*RTX 4090 \(GPU 0\) has 23\.5 GiB free.*--force"):
        launch.check_environment(plan, gpu_facts=card)
    report = launch.check_environment(plan, force=True, gpu_facts=card)
    assert report.device == "cuda" and report.gpus_used == 1 and report.forced
    assert any("--force" in w for w in report.warnings)
    roomy = launch.check_environment(plan, gpu_facts=launch.GpuFacts(1, [79.0], True))
    assert roomy.device == "cuda" and not roomy.forced


def test_too_few_gpus_and_no_bf16_refuse(tmp_path):
    plan = launch_plan(fake_run(tmp_path, pipeline="sft", setup=Setup(gpus=4, parallel="ddp"), device_gib=10.0))
    with pytest.raises(AdvisorError, match="4 GPUs per node but this machine has 2"):
        launch.check_environment(plan, gpu_facts=launch.GpuFacts(2, [40.0, 40.0], True))
    with pytest.raises(AdvisorError, match="bf16"):
        launch.check_environment(plan, gpu_facts=launch.GpuFacts(4, [40.0] * 4, bf16=False))


def test_cpu_only_machine_runs_on_cpu_with_a_warning(tmp_path):
    plan = launch_plan(fake_run(tmp_path, pipeline="sft", device_gib=30.0))
    report = launch.check_environment(plan, gpu_facts=launch.GpuFacts(count=0))
    assert report.device == "cpu" and report.gpus_used == 0
    assert any("runs on the CPU" in w for w in report.warnings)


def test_missing_training_package_always_refuses(tmp_path, monkeypatch):
    from advisor.launch import environment

    plan = launch_plan(fake_run(tmp_path, pipeline="sft"))
    wanted = environment.wanted_packages(plan)
    monkeypatch.setattr(environment, "wanted_packages", lambda plan: [*wanted, "no_such_training_pkg"])
    with pytest.raises(AdvisorError, match=r"not installed: no_such_training_pkg.*advisor\[train\]"):
        launch.check_environment(plan, force=True, gpu_facts=launch.GpuFacts(0))


def test_the_launch_checks_what_the_scripts_list():
    """One list for a script's pins and the launch's check (scriptgen.pins.required): bitsandbytes for QLoRA and
    for 8-bit AdamW states, GaLore's two packages, by the names they are imported as."""
    from advisor.launch.environment import wanted_packages

    stack = ["torch", "transformers", "datasets", "accelerate", "peft", "trl"]
    plan = lambda **kw: build_plan("tiny", Setup(**kw), pipeline="sft")  # noqa: E731
    assert wanted_packages(plan()) == stack
    assert wanted_packages(plan(adaptation="qlora")) == [*stack, "bitsandbytes"]
    assert wanted_packages(plan(optimizer="adamw8bit")) == [*stack, "bitsandbytes"]  # left out before
    assert wanted_packages(plan(adaptation="full", galore=True)) == [*stack, "bitsandbytes", "galore_torch"]


def test_cli_refuses_then_force_launches(tmp_path, monkeypatch, capsys):
    run_dir = fake_run(tmp_path, pipeline="sft", device_gib=30.0)
    monkeypatch.setattr("advisor.launch.environment.probe_gpus", lambda *a, **k: launch.GpuFacts(1, [23.5], True, ["RTX 4090"]))
    assert main(["launch", str(run_dir), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "advisor: error:" in err and "--force" in err
    assert not (run_dir / "out").exists()
    assert main(["launch", str(run_dir), "--no-progress", "--force", "--max-steps", "4"]) == 0
    captured = capsys.readouterr()
    assert "launching anyway: --force" in captured.err
    assert steps_of(run_dir, "sft") == [1, 2, 3, 4]
    assert "stage sft completed" in captured.out


# ------------------------------------------------------------------------------------------- running


def test_full_launch_runs_stages_in_order_and_logs(tmp_path, launch_here):
    """In this process on a machine without CUDA; the real GPU probe runs in the slow launches of the generated scripts."""
    run_dir = fake_run(tmp_path)
    t0 = time.monotonic()
    done = launch_here(str(run_dir), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert steps_of(run_dir, "sft") == list(range(1, 13)) and steps_of(run_dir, "dpo") == list(range(1, 13))
    assert (run_dir / "out/sft/config.json").is_file() and (run_dir / "out/dpo/config.json").is_file()
    out = done.stdout
    assert out.index("stage sft completed") < out.index("stage dpo completed")
    assert "[sft] step 12/12  loss 0.1667  lr 1.00e-04  1,000 tok/s" in out
    assert "loading the fake model from tiny" in out  # ordinary text passes through
    assert "runs on the CPU" in done.stderr and "device: CPU (no CUDA GPU)" in out
    log = (run_dir / "logs/sft.log").read_text()
    assert '"event": "end", "stage": "sft", "status": "completed"' in log and "=== exit code 0" in log
    assert time.monotonic() - t0 < 60


def test_crashing_child_exit_code_and_log_tail(tmp_path, launch_here):
    run_dir = fake_run(tmp_path)
    done = launch_here(str(run_dir), "--no-progress", env={"FAKE_CRASH_AT": "5", "FAKE_CRASH_STAGE": "sft"})
    assert done.returncode == 3
    err = done.stderr
    assert "RuntimeError: fake crash in the training step" in err  # the tail of the log is shown
    assert re.search(rf"--- last \d+ lines of {re.escape(str(run_dir / 'logs/sft.log'))} ---", err)
    assert err.strip().splitlines()[-1] == f"advisor: error: stage 'sft' failed with exit code 3; full log: {run_dir / 'logs/sft.log'}"
    assert not (run_dir / "out/dpo").exists()  # later stages do not start


@pytest.mark.parametrize(("sig", "stage"), [(signal.SIGINT, "sft"), (signal.SIGTERM, "dpo")])
def test_interrupt_checkpoints_then_resume_continues(tmp_path, sig, stage, launch_here):
    """The launcher that gets the signal is a process of its own; the resumes run in this one."""
    run_dir = fake_run(tmp_path)
    env = {"FAKE_STEPS": "30", "FAKE_SLEEP": "0.05", "FAKE_SAVE_STEPS": "4"}
    proc = launcher(run_dir, env=env, probe=False)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(f"[{stage}] checkpoint at step"):
            time.sleep(0.12)  # a step or two past the checkpoint
            proc.send_signal(sig)
            break
    else:
        pytest.fail("no checkpoint seen:\n" + "".join(seen) + proc.stderr.read())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done_steps = steps_of(run_dir, stage)
    last = done_steps[-1]
    assert 4 <= last < 30
    assert f"stage '{stage}' interrupted at step {last} (exit code 130)" in err
    assert f"checkpoint: {run_dir / 'out' / stage / f'checkpoint-{last}'}" in err  # saved on the signal, at the last step
    assert f"resume with: advisor launch {run_dir} --resume" in err
    if stage == "sft":
        assert not (run_dir / "out/dpo").exists()

    resumed = launch_here(str(run_dir), "--no-progress", "--resume", env=env)
    assert resumed.returncode == 0, resumed.stderr
    if stage == "dpo":
        assert "sft: completed earlier, skipped" in resumed.stdout
        assert len(starts_of(run_dir, "sft")) == 1
    assert starts_of(run_dir, stage)[-1]["resume_step"] == last
    assert steps_of(run_dir, stage) == list(range(1, 31))  # every step once: none repeated, none lost
    assert (run_dir / "out" / stage / "config.json").is_file() and (run_dir / "out/dpo/config.json").is_file()

    again = launch_here(str(run_dir), "--no-progress", "--resume")
    assert again.returncode == 0 and "every stage completed earlier" in again.stdout


# ------------------------------------------------------------------------------------------- the generated scripts


def real_run(tmp_path: Path, pipeline: str, save_steps: int = 50) -> Path:
    """A run folder for the tiny model written by the script generator (`advisor generate` writes the same)."""
    from advisor.scriptgen import write_run

    plan = build_plan("tiny", Setup(seq_len=128), pipeline=pipeline, gpu="rtx4090", output_dir="out")
    for stage in plan.stages:
        stage.hyper.save_steps = save_steps
    run_dir = tmp_path / "real"
    write_run(plan, run_dir)
    return run_dir


def runs_of(output_dir: Path) -> list[list[dict]]:
    """progress.jsonl split into launches (each begins with a start event)."""
    runs: list[list[dict]] = []
    for event in launch.read_events(output_dir):
        if event["event"] == "start":
            runs.append([])
        if runs:
            runs[-1].append(event)
    return runs


@pytest.mark.slow
def test_real_launch_sft_then_dpo_on_the_tiny_model(tmp_path):
    run_dir = real_run(tmp_path, "sft+dpo")
    done = run_advisor("launch", str(run_dir), "--no-progress", "--max-steps", "3", timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for stage in ("sft", "dpo"):
        out = run_dir / "out" / stage
        assert (out / "adapter_model.safetensors").is_file() and launch.stage_completed(out)
        [events] = runs_of(out)
        assert [e["step"] for e in events if e["event"] == "log"] == [1, 2, 3]
        assert f"stage {stage} completed at step 3" in done.stdout
        assert (run_dir / "logs" / f"{stage}.log").read_text().count('"event": "log"') == 3
    # DPO started from the SFT result: its adapter sits on the SFT model with the SFT adapter merged in
    base = json.loads((run_dir / "out/dpo/adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base) == run_dir / "out/sft/merged"
    assert "runs on the CPU" in done.stderr


@pytest.mark.slow
def test_real_interrupt_then_resume_continues_from_the_checkpoint(tmp_path):
    run_dir = real_run(tmp_path, "sft", save_steps=4)
    out = run_dir / "out/sft"
    proc = launcher(run_dir, "--max-steps", "16")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("[sft] checkpoint at step 4"):
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends the launcher
            break
    else:
        pytest.fail("no checkpoint seen:\n" + "".join(seen[-30:]) + proc.stderr.read()[-3000:])
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err[-3000:]
    [first] = runs_of(out)
    end = first[-1]
    assert end["event"] == "end" and end["status"] == "interrupted"
    k = end["step"]
    logged = [e["step"] for e in first if e["event"] == "log"]
    assert 4 <= k < 16 and logged == list(range(1, k + 1))
    assert (out / f"checkpoint-{k}").is_dir()  # saved on the signal, after the step in flight
    assert f"checkpoint: {out / f'checkpoint-{k}'}" in err and f"resume with: advisor launch {run_dir} --resume" in err
    assert not (out / "adapter_model.safetensors").exists()

    resumed = run_advisor("launch", str(run_dir), "--no-progress", "--resume", "--max-steps", "16", timeout=150)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    _, second = runs_of(out)
    assert second[0]["resume_step"] == k
    assert [e["step"] for e in second if e["event"] == "log"] == list(range(k + 1, 17))  # nothing repeated, nothing lost
    assert second[-1]["status"] == "completed" and second[-1]["step"] == 16
    assert (out / "adapter_model.safetensors").is_file() and launch.stage_completed(out)
