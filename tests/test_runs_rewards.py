"""Issue 13 item 11: GRPO's reward. A reward model, the built-in exact-match checker on a dataset field, or the
user's Python function (`--reward-fn file.py:func`); the placeholder length reward is said loudly (generate's
warning, the README, the script's log line) when nothing was given."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from test_scriptgen_runs import check_run, run_script

from advisor.cli import main

PROMPTS = '{"prompt": "Say ok", "answer": "ok"}\n{"prompt": "Say yes", "answer": "yes"}\n'


def config_of(script: Path) -> dict:
    body = ast.parse(script.read_text()).body
    return next(ast.literal_eval(n.value) for n in body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CONFIG")


def generate(capsys, *args: str) -> tuple[int, str]:
    code = main(["generate", "--model", "tiny", *args])
    return code, capsys.readouterr().err


def test_no_reward_is_said_loudly_at_generation_and_in_the_readme(tmp_path, capsys):
    code, err = generate(capsys, "--method-kind", "grpo", "--out", str(tmp_path / "r"))
    assert code == 0 and "PLACEHOLDER length reward" in err
    readme = (tmp_path / "r" / "README.md").read_text()
    assert "**Reward of stage grpo: PLACEHOLDER.**" in readme and "200 characters" in readme


def test_each_reward_kind_reaches_the_script_config_and_the_readme(tmp_path, capsys):
    data = tmp_path / "math.jsonl"
    data.write_text(PROMPTS)
    fn = tmp_path / "my_reward.py"
    fn.write_text("def score(completions, **kw):\n    return [1.0 for _ in completions]\n")
    code, err = generate(capsys, "--method-kind", "grpo", "--prompt-dataset", str(data), "--reward-check", "answer", "--out", str(tmp_path / "a"))
    assert code == 0 and "PLACEHOLDER" not in err
    assert config_of(tmp_path / "a" / "train_grpo.py")["reward_check"] == "answer"
    assert "exact match: 1 when the completion equals the dataset field `answer`" in (tmp_path / "a" / "README.md").read_text()
    code, err = generate(capsys, "--method-kind", "grpo", "--reward-fn", f"{fn}:score", "--out", str(tmp_path / "c"))
    assert code == 0 and config_of(tmp_path / "c" / "train_grpo.py")["reward_fn"] == f"{fn}:score"
    code, err = generate(capsys, "--method-kind", "grpo", "--reward-model", str(tmp_path), "--out", str(tmp_path / "d"))
    assert code == 0 and config_of(tmp_path / "d" / "train_grpo.py")["reward_model"] == str(tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method-kind", "rlhf", "--reward-check", "answer"], "--reward-check: the rlhf run has no GRPO stage"),
        (["--method-kind", "grpo", "--reward-fn", "score"], "write it as FILE.py:FUNCTION"),
    ],
)
def test_reward_flags_that_cannot_apply_are_refused(tmp_path, capsys, args, message):
    code, err = generate(capsys, *args, "--out", str(tmp_path / "r"))
    assert code == 2 and message in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def grpo_module(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo")
    assert main(["generate", "--model", "tiny", "--method-kind", "grpo", "--out", str(out), "--json"]) == 0
    spec = importlib.util.spec_from_file_location("generated_train_grpo", out / "train_grpo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_reward_functions(grpo_module, tmp_path, capsys):
    from datasets import Dataset

    m = grpo_module
    check = m.exact_match_reward("answer")
    completions = [[{"role": "assistant", "content": " OK "}], [{"role": "assistant", "content": "no"}]]
    assert check(completions, answer=["ok", "yes"]) == [1.0, 0.0]
    rows = Dataset.from_list([{"prompt": "p", "answer": "ok"}])
    fn = tmp_path / "r.py"
    fn.write_text("def score(completions, **kw):\n    return [7.0] * len(completions)\n")
    assert m.reward_functions({"reward_fn": f"{fn}:score", "reward_check": ""}, rows)[0](["x"]) == [7.0]
    assert m.reward_functions({"reward_fn": "", "reward_check": "answer"}, rows)[0](["ok"], answer=["ok"]) == [1.0]
    capsys.readouterr()
    assert m.reward_functions({"reward_fn": "", "reward_check": ""}, rows) == [m.length_reward]
    assert "PLACEHOLDER reward" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such column"):
        m.reward_functions({"reward_fn": "", "reward_check": "solution"}, rows)
    with pytest.raises(SystemExit, match="has no function 'nope'"):
        m.reward_functions({"reward_fn": f"{fn}:nope", "reward_check": ""}, rows)


@pytest.mark.slow  # one GRPO step of the tiny model on the CPU (~50 s)
def test_grpo_trains_with_the_users_reward_function(tmp_path, capsys):
    data = tmp_path / "math.jsonl"
    data.write_text(PROMPTS)
    fn = tmp_path / "my_reward.py"
    fn.write_text(
        "from pathlib import Path\n"
        "def score(completions, **kw):\n"
        "    Path(__file__).with_suffix('.called').write_text(','.join(sorted(kw)))\n"
        "    return [float(len(str(c)) % 2) for c in completions]\n"
    )
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "generate",
                "--model",
                "tiny",
                "--method-kind",
                "grpo",
                "--prompt-dataset",
                str(data),
                "--reward-fn",
                f"{fn}:score",
                "--seq-len",
                "256",
                "--response-len",
                "32",
                "--out",
                str(run_dir),
            ]
        )
        == 0
    )
    result = run_script(run_dir, "train_grpo.py", "--max-steps", "1")
    check_run(result, run_dir / "outputs" / "grpo", 0, first=0, last=1, final="adapter_config.json")
    assert "answer" in fn.with_suffix(".called").read_text().split(",")  # TRL passed the dataset column
    assert "PLACEHOLDER" not in result.stderr
