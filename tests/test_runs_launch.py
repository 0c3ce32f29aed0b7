"""Issue 13, the launcher: resume keeps the step budget (item 9), printed commands are shell-quoted. Driven with the contract-following fake script of tests/test_launch.py."""

from __future__ import annotations

import json
import shlex
import signal
import time

from test_launch import fake_run, launcher, starts_of, steps_of

from advisor import launch


def test_resume_after_ctrl_c_keeps_the_max_steps_of_the_launch(tmp_path, launch_here):
    run_dir = fake_run(tmp_path, pipeline="sft")
    env = {"FAKE_STEPS": "5", "FAKE_SLEEP": "0.05", "FAKE_SAVE_STEPS": "4"}  # the scripts' own default: 5 steps
    proc = launcher(run_dir, "--max-steps", "30", env=env, probe=False)  # a process of its own: it gets the signal
    for line in proc.stdout:
        if line.startswith("[sft] checkpoint at step"):
            time.sleep(0.12)
            proc.send_signal(signal.SIGINT)
            break
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = steps_of(run_dir, "sft")[-1]
    assert 4 <= last < 30
    assert f"resume with: advisor launch {run_dir} --resume --max-steps 30" in err
    assert json.loads((run_dir / "launch.json").read_text())["script_args"] == ["--max-steps", "30"]

    dry = launch_here(str(run_dir), "--dry-run", "--resume")
    assert "--resume --max-steps 30" in dry.stdout

    resumed = launch_here(str(run_dir), "--no-progress", "--resume", env=env)  # no --max-steps typed
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming with the arguments of the launch: --max-steps 30" in resumed.stdout
    assert starts_of(run_dir, "sft")[-1]["total_steps"] == 30
    assert steps_of(run_dir, "sft") == list(range(1, 31))  # on to step 30, as launched, not "completed at step 5"
    assert "completed at step 30" in resumed.stdout


def test_given_arguments_win_over_the_remembered_ones_and_a_damaged_file_is_ignored(tmp_path):
    launch.remember_arguments(tmp_path, ["--max-steps", "400"])
    assert launch.resume_arguments(tmp_path, True, []) == ["--max-steps", "400"]
    assert launch.resume_arguments(tmp_path, True, ["--max-steps", "9"]) == ["--max-steps", "9"]
    assert launch.resume_arguments(tmp_path, False, []) == []  # a fresh launch starts from its own flags
    (tmp_path / launch.LAUNCH_FILE).write_text("{not json")
    assert launch.resume_arguments(tmp_path, True, []) == []


def test_printed_commands_are_shell_quoted(tmp_path, advisor_main):
    odd = tmp_path / "my run; $(id)"
    odd.mkdir()
    run_dir = fake_run(odd, pipeline="sft")
    dry = advisor_main("launch", str(run_dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    first = dry.stdout.splitlines()[0]
    assert first == f"cd {shlex.quote(str(run_dir))}" and shlex.split(first) == ["cd", str(run_dir)]
    assert launch.resume_command(run_dir, ["--max-steps", "3"]) == shlex.join(["advisor", "launch", str(run_dir), "--resume", "--max-steps", "3"])
