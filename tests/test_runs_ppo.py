"""Issue 13 item 7: RLHF is SFT -> reward model -> PPO, and what the plan says, what the estimate priced, what the
run README says and what `advisor launch` runs agree: PPO, through train_ppo.py, in the environment its PEP 723
block asks for (trl 1.12.0, the last trl with PPO), built once by the launcher (advisor/scriptenv.py)."""

from __future__ import annotations

import ast
import base64
import hashlib
import zipfile
from pathlib import Path

import pytest
from conftest import run_advisor
from test_launch import FAKE_TRAIN

from advisor import launch, scriptenv
from advisor.plan import load_plan, save_plan
from advisor.planning import build_plan, model_spec
from advisor.scriptgen import write_run
from advisor.scriptgen.pins import FALLBACK_PINS, PPO_TRL
from estimators import estimate
from estimators.setup import Setup


def test_plan_estimate_readme_and_launch_all_say_ppo(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVISOR_ENV_DIR", str(tmp_path / "envs"))
    plan = build_plan("tiny", Setup(adaptation="lora"), pipeline="rlhf", gpu="rtx4090", output_dir="outputs")
    run_dir = tmp_path / "run"
    write_run(plan, run_dir, versions=FALLBACK_PINS)
    plan = load_plan(run_dir / "plan.toml")
    ppo = plan.stage("ppo")
    # the plan: reward model, then PPO on the SFT model (§3 of the source document)
    assert [s.setup.train for s in plan.stages] == ["sft", "reward", "ppo"] and ppo.reward_from == "reward"
    # what is priced: the PPO kind, with its value model
    priced = estimate(model_spec("tiny")[0], ppo.setup)
    assert any(term.name == "value model" for terms in priced.phases.values() for term in terms)
    # the README
    readme = (run_dir / "README.md").read_text()
    assert "`advisor launch` runs `train_ppo.py` in that environment" in readme
    assert "python train_ppo.py" in readme and "runs `train_ppo_rloo.py`" not in readme
    # the script launch runs: the PPO one, PPOTrainer, its CONFIG trains ppo
    cmd = launch.build_commands(plan, run_dir)[-1]
    assert cmd.script.name == "train_ppo.py"
    text = cmd.script.read_text()
    assert "from trl.experimental.ppo import PPOConfig, PPOTrainer" in text
    config = next(
        ast.literal_eval(n.value) for n in ast.parse(text).body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIG"
    )
    assert config["train"] == "ppo"
    # ... in an interpreter whose trl is the one the block pins (here trl is newer, so the launcher's overlay)
    assert scriptenv.exact_pins(cmd.script) == {"trl": PPO_TRL}
    if scriptenv.installed_version("trl") != PPO_TRL:
        assert cmd.pyenv is not None and cmd.argv[0] == cmd.pyenv.python and str(tmp_path / "envs") in cmd.argv[0]
        assert "trl==1.12.0" in cmd.note
    dry = run_advisor("launch", str(run_dir), "--dry-run", env={"ADVISOR_ENV_DIR": str(tmp_path / "envs")})
    assert "train_ppo.py --output-dir outputs/ppo" in dry.stdout and "train_ppo_rloo" not in dry.stdout


def _wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal pure-Python wheel, so the environment build runs pip for real without an index."""
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for rel, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{rel},sha256={digest},{len(text.encode())}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for rel, text in files.items():
            whl.writestr(rel, text)
        whl.writestr(f"{name}-{version}.dist-info/RECORD", "\n".join(record) + "\n")
    return path


BLOCK = """# /// script
# dependencies = [
#     "advisorfakepin==1.0",
# ]
# [tool.advisor]
# exact = ["advisorfakepin"]
# ///
import importlib.metadata, pathlib, sys
_out = pathlib.Path(sys.argv[sys.argv.index("--output-dir") + 1]); _out.mkdir(parents=True, exist_ok=True)
(_out / "seen.txt").write_text(importlib.metadata.version("advisorfakepin") + " " + __import__("torch").__name__)
"""


@pytest.mark.slow  # two launches and a venv build: ~45 s on a 2-core machine
def test_launch_builds_the_environment_a_block_asks_for_once_then_reuses_it(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "advisorfakepin", "1.0")
    run_dir = tmp_path / "run"
    plan = build_plan("tiny", Setup(), pipeline="sft", gpu="rtx4090", output_dir="out")
    save_plan(plan, run_dir / "plan.toml")
    (run_dir / "train_sft.py").write_text(BLOCK + FAKE_TRAIN)
    env = {
        "ADVISOR_ENV_DIR": str(tmp_path / "envs"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "UV_NO_INDEX": "1",
        "UV_FIND_LINKS": str(wheels),
        "FAKE_STEPS": "2",
    }
    first = run_advisor("launch", str(run_dir), "--no-progress", env=env, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "building the environment train_sft.py asks for (advisorfakepin==1.0), once" in first.stdout
    assert "Successfully installed advisorfakepin-1.0" in first.stdout or "advisorfakepin" in (run_dir / "logs" / "sft-env.log").read_text()
    # the script saw the pinned package and, through the shared site-packages, this environment's torch
    assert (run_dir / "out" / "sft" / "seen.txt").read_text() == "1.0 torch"
    again = run_advisor("launch", str(run_dir), "--no-progress", env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "building the environment" not in again.stdout  # built once
    ready = list((tmp_path / "envs").glob("*/" + scriptenv.READY))
    stage_line = next(line for line in again.stdout.splitlines() if line.startswith("stage sft (from the start)"))
    assert len(ready) == 1 and f"{ready[0].parent}/bin/python train_sft.py" in stage_line


@pytest.mark.slow  # a launch in a fresh interpreter and a failed venv build: ~8 s
def test_an_environment_that_cannot_be_built_is_one_clear_line(tmp_path):
    run_dir = tmp_path / "run"
    plan = build_plan("tiny", Setup(), pipeline="sft", gpu="rtx4090", output_dir="out")
    save_plan(plan, run_dir / "plan.toml")
    (run_dir / "train_sft.py").write_text(BLOCK.replace("advisorfakepin", "advisornosuchpin") + FAKE_TRAIN)
    env = {"ADVISOR_ENV_DIR": str(tmp_path / "envs"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path), "UV_NO_INDEX": "1"}
    done = run_advisor("launch", str(run_dir), "--no-progress", env=env, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("advisor: error: could not install advisornosuchpin==1.0")
    assert not list((tmp_path / "envs").glob("*/" + scriptenv.READY))  # nothing half-built is taken for ready
