"""Real training runs of generated scripts on the CPU: every training kind x adaptation (full, LoRA, QLoRA) on the
tiny model for 2 steps, then `--resume` to step 3; SIGTERM mid-run; `accelerate launch --cpu`; hostile paths;
and PPO with trl 1.12.0 in its own environment under /tmp.

Each script is a fresh `python train_x.py` process (~6 s of imports), so independent stages run two at a time.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from advisor.planning import build_plan
from advisor.scriptgen import write_run
from estimators.setup import Setup

pytestmark = pytest.mark.slow

ADAPTATIONS = ("full", "lora", "qlora")
FINAL = {"full": "config.json", "lora": "adapter_config.json", "qlora": "adapter_config.json"}
_ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_OFFLINE": "1", "TRL_EXPERIMENTAL_SILENCE": "1"}


def tiny_plan(adaptation: str):
    """sft -> reward -> ppo (RLHF), plus DPO and GRPO (Python reward), all small enough for a CPU."""
    setup = Setup(adaptation=adaptation, seq_len=64, num_generations=2, response_len=8)
    plan = build_plan("tiny", setup, pipeline="rlhf", output_dir="outputs")
    plan.stages += build_plan("tiny", setup, pipeline="dpo", output_dir="outputs").stages
    plan.stages += build_plan("tiny", setup, pipeline="grpo", output_dir="outputs").stages
    for stage in plan.stages:
        stage.hyper.save_steps = 2
        stage.hyper.logging_steps = 1
    return plan


def run_script(run_dir: Path, script: str, *args: str, python: str = sys.executable, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, **_ENV)
    return subprocess.run([python, script, *args], cwd=run_dir, capture_output=True, text=True, env=env, timeout=timeout)


def events(output_dir: Path) -> list[dict]:
    path = output_dir / "progress.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []


def check_run(result: subprocess.CompletedProcess, output_dir: Path, before: int, *, first: int, last: int, final: str | None) -> None:
    """The events of one run (those after `before`): start, finite losses up to `last`, a checkpoint, end."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr[-3000:]}"
    new = events(output_dir)[before:]
    stdout = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"event"')]
    assert stdout == new, "stdout and progress.jsonl carry the same events"
    assert new[0] == {"event": "start", "stage": new[0]["stage"], "total_steps": last, "resume_step": first}
    logs = [e for e in new if e["event"] == "log"]
    assert [e["step"] for e in logs] == list(range(first + 1, last + 1))
    assert all(isinstance(e["loss"], float) and math.isfinite(e["loss"]) for e in logs), logs
    assert all(e["total_steps"] == last and e["peak_mem_gib"] is None and e["learning_rate"] is not None for e in logs)
    checkpoints = [e for e in new if e["event"] == "checkpoint"]
    assert checkpoints and checkpoints[-1]["step"] == last
    assert (Path(checkpoints[-1]["path"]) / "trainer_state.json").is_file()
    assert new[-1] == {"event": "end", "stage": new[0]["stage"], "status": "completed", "step": last, "output_dir": str(output_dir)}
    if final:
        assert (output_dir / final).is_file()


def train_and_resume(run_dir: Path, script: str, stage: str, adaptation: str, python: str = sys.executable, resume: bool = True) -> list[float]:
    """`python <script> --max-steps 2`, then (with `resume`) `--max-steps 3 --resume` from its checkpoint-2.
    Returns the first run's two logged losses."""
    out = run_dir / "outputs" / stage
    shutil.rmtree(out, ignore_errors=True)
    first = run_script(run_dir, script, "--max-steps", "2", python=python)
    check_run(first, out, 0, first=0, last=2, final=FINAL[adaptation])
    losses = [e["loss"] for e in events(out) if e["event"] == "log"]
    if resume:
        before = len(events(out))
        again = run_script(run_dir, script, "--max-steps", "3", "--resume", python=python)
        check_run(again, out, before, first=2, last=3, final=FINAL[adaptation])
        assert (out / "checkpoint-3").is_dir()
    return losses


_dirs: dict[str, Path] = {}
_lock = threading.Lock()


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    def get(adaptation: str) -> Path:
        with _lock:
            if adaptation not in _dirs:
                _dirs[adaptation] = tmp_path_factory.mktemp(f"run-{adaptation}")
                write_run(tiny_plan(adaptation), _dirs[adaptation], force=True)
            return _dirs[adaptation]

    yield get
    _dirs.clear()


# Which scripts also get the --resume run, per adaptation: every kind resumes under at least one adaptation and
# every adaptation resumes at least two kinds (LoRA SFT resumes after SIGTERM below). All of them, every
# adaptation: set ADVISOR_RESUME_ALL=1 (about 40% longer).
RESUMED = {"full": {"sft", "grpo"}, "lora": {"reward", "dpo"}, "qlora": {"sft", "ppo_rloo"}}
# The LoRA runs' first two logged losses per kind (the tiny model, data and trainers are seeded, and the CPU runs
# single-threaded): a change to the data, the masking, the model or a trainer's loss shows here, where a finite-loss
# check would pass. SFT starts near ln(vocabulary); DPO at ln 2 while the policy equals its reference; RLOO and GRPO
# are signed advantages. Recorded with torch 2.13.0, transformers 5.24.0, peft 0.21.2, trl 1.16.0 on this CPU.
PINNED_LOSSES = {
    "sft": [6.964392185211182, 6.92649507522583],
    "reward": [0.6894990801811218, 0.7007194757461548],
    "ppo_rloo": [0.028768539428710938, -0.028768539428710938],
    "dpo": [0.6931471824645996, 0.6931471824645996],
    "grpo": [0.7004995942115784, -0.7005051970481873],
}


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
def test_every_kind_trains_checkpoints_and_resumes(run_dirs, adaptation):
    """sft -> reward -> RLOO on that reward model, next to DPO and GRPO: 2 steps, then --resume to step 3."""
    run_dir = run_dirs(adaptation)
    every = bool(os.environ.get("ADVISOR_RESUME_ALL"))

    losses: dict[str, list[float]] = {}

    def chain(*kinds: str):
        for kind in kinds:
            stage = "ppo" if kind == "ppo_rloo" else kind
            losses[kind] = train_and_resume(run_dir, f"train_{kind}.py", stage, adaptation, resume=every or kind in RESUMED[adaptation])
            if kind == "sft":  # later stages load the SFT model: the adapter folded into a full copy
                assert (run_dir / "outputs" / "sft" / ("merged" if adaptation != "full" else "") / "config.json").is_file()

    def rlhf_chain():
        chain("sft", "reward", "ppo_rloo")

    def preference_chain():
        chain("dpo", "grpo")

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(rlhf_chain), pool.submit(preference_chain)]:
            future.result()
    # the reward stage started from the SFT model: same vocabulary, one tiny model built per run folder
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("tiny-model")) == ["tiny-model"]
    if adaptation == "lora":
        for kind, pinned in PINNED_LOSSES.items():
            assert losses[kind] == pytest.approx(pinned, rel=1e-3, abs=1e-5), kind


def test_sigterm_saves_a_checkpoint_and_exits_130(tmp_path):
    write_run(tiny_plan("lora"), tmp_path)
    out = tmp_path / "outputs" / "sft"
    env = dict(os.environ, **_ENV)
    child = subprocess.Popen(
        [sys.executable, "train_sft.py", "--max-steps", "400", "--save-steps", "1000"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in child.stdout:
            if '"event": "log"' in line:
                child.send_signal(signal.SIGTERM)
                break
        rest, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err[-3000:]
    seen = events(out)
    end = seen[-1]
    assert end["event"] == "end" and end["status"] == "interrupted" and 1 <= end["step"] < 400
    checkpoint = [e for e in seen if e["event"] == "checkpoint"]
    assert checkpoint[-1]["step"] == end["step"] and Path(checkpoint[-1]["path"]).is_dir()
    assert Path(checkpoint[-1]["path"]).name == f"checkpoint-{end['step']}"
    # --resume continues from the checkpoint the signal wrote
    step = end["step"]
    again = run_script(tmp_path, "train_sft.py", "--max-steps", str(step + 1), "--resume")
    check_run(again, out, len(seen), first=step, last=step + 1, final="adapter_config.json")


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
def test_every_kind_runs_through_accelerate_launch_on_cpu(adaptation, tmp_path):
    """The same scripts under `accelerate launch --cpu`: every kind, chained as a run would chain them."""
    write_run(tiny_plan(adaptation), tmp_path)
    env = dict(os.environ, **_ENV)
    argv = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    for kind in ("sft", "reward", "ppo_rloo", "dpo", "grpo"):
        out = tmp_path / "outputs" / ("ppo" if kind == "ppo_rloo" else kind)
        result = subprocess.run([*argv, f"train_{kind}.py", "--max-steps", "2"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
        check_run(result, out, 0, first=0, last=2, final=FINAL[adaptation])


def test_hostile_paths_are_used_as_data(tmp_path):
    """Quotes, $(...), backticks and a Python payload in the dataset path and output folder: the script trains on
    that very file, writes into that very folder, and runs nothing."""
    hostile = "it's \"q\" $(touch PWNED) `id` ; __import__('os').system('touch PWNED')"
    plan = build_plan("tiny", Setup(adaptation="lora", seq_len=64), pipeline="sft", output_dir="outputs")
    data = tmp_path / f"data {hostile}.jsonl"
    shutil.copy(Path(__file__).parents[1] / "advisor" / "data" / "instructions.jsonl", data)
    plan.stages[0].dataset = str(data)
    plan.stages[0].output_dir = f"outputs/{hostile}"
    plan.stages[0].hyper.save_steps = 2
    run_dir = tmp_path / "run"
    write_run(plan, run_dir)
    result = run_script(run_dir, "train_sft.py", "--max-steps", "2")
    check_run(result, run_dir / "outputs" / hostile, 0, first=0, last=2, final="adapter_config.json")
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()


# --------------------------------------------------------------------------------------------- PPO, trl 1.12.0

# ppo_python: a venv with trl 1.12.0 of its own (tests/conftest.py builds it once per session)


@pytest.mark.parametrize("adaptation", ADAPTATIONS)
def test_ppo_with_trl_1_12_trains_and_resumes(run_dirs, ppo_python, adaptation):
    run_dir = run_dirs(adaptation)
    for stage in ("sft", "reward"):  # normally trained by the test above
        if not (run_dir / "outputs" / stage / FINAL[adaptation]).is_file():
            assert run_script(run_dir, f"train_{stage}.py", "--max-steps", "1").returncode == 0
    resume = adaptation != "qlora" or bool(os.environ.get("ADVISOR_RESUME_ALL"))  # the QLoRA resume path is LoRA's
    train_and_resume(run_dir, "train_ppo.py", "ppo", adaptation, python=ppo_python, resume=resume)
    last = "checkpoint-3" if resume else "checkpoint-2"
    assert (run_dir / "outputs" / "ppo" / last / "value_model" / "config.json").is_file()
