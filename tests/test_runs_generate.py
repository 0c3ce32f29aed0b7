"""Issue 13 items 8 and 10, issue 14 §4: what `advisor generate` writes does what the plan says.
- item 8: every stage of a multi-stage run gets the user's data of its kind, or the command refuses;
- item 10: a model named by its config.json is loaded from that file's folder;
- issue 14 §4 / 13 item 15: the run README names the card's memory as the card's and the estimate as the need.
In process (cli.main with capsys) where possible."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

import pytest

from advisor.cli import main
from advisor.plan_priced import EstimateSummary
from advisor.planning import build_plan
from advisor.scriptgen import render
from advisor.scriptgen.config_block import model_location
from advisor.scriptgen.pins import FALLBACK_PINS
from estimators.setup import Setup


def config_of(script: str) -> dict:
    for node in ast.parse(script).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["CONFIG"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no CONFIG assignment")


def _generate(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["generate", *args])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _rows(tmp_path: Path) -> dict[str, Path]:
    files = {
        "instruction": '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n',
        "preference": '{"prompt": "hi", "chosen": "hello", "rejected": "go away"}\n',
        "prompt": '{"prompt": "say hello"}\n',
    }
    paths = {}
    for kind, text in files.items():
        paths[kind] = tmp_path / f"{kind}.jsonl"
        paths[kind].write_text(text)
    return paths


# ---- item 8 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rlhf", "sft+dpo"])
def test_one_dataset_for_a_multi_stage_run_is_refused_in_one_line(tmp_path, capsys, kind):
    data = _rows(tmp_path)["instruction"]
    code, _out, err = _generate(capsys, "--model", "tiny", "--method-kind", kind, "--dataset", str(data), "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--instruction-dataset (sft)" in err and "--preference-dataset" in err
    assert not (tmp_path / "r").exists()


def test_every_rlhf_stage_gets_the_data_of_its_kind(tmp_path, capsys):
    data = _rows(tmp_path)
    out = tmp_path / "r"
    code, _out, err = _generate(
        capsys,
        "--model",
        "tiny",
        "--method-kind",
        "rlhf",
        "--out",
        str(out),
        "--instruction-dataset",
        str(data["instruction"]),
        "--preference-dataset",
        str(data["preference"]),
        "--prompt-dataset",
        str(data["prompt"]),
    )
    assert code == 0, err
    assert config_of((out / "train_sft.py").read_text())["dataset"] == str(data["instruction"])
    assert config_of((out / "train_reward.py").read_text())["dataset"] == str(data["preference"])
    assert config_of((out / "train_ppo.py").read_text())["dataset"] == str(data["prompt"])
    readme = (out / "README.md").read_text()
    assert "bundled sample" not in readme and str(data["prompt"]) in readme


def test_a_stage_left_on_the_sample_is_said_and_a_flag_no_stage_uses_is_refused(tmp_path, capsys):
    data = _rows(tmp_path)
    out = tmp_path / "r"
    code, _out, err = _generate(
        capsys, "--model", "tiny", "--method-kind", "sft+dpo", "--out", str(out), "--preference-dataset", str(data["preference"])
    )
    assert code == 0, err
    assert "stage 'sft' trains on the bundled sample instruction data; give --instruction-dataset" in err
    assert config_of((out / "train_dpo.py").read_text())["dataset"] == str(data["preference"])
    code, _out, err = _generate(
        capsys, "--model", "tiny", "--method-kind", "sft", "--out", str(tmp_path / "s"), "--prompt-dataset", str(data["prompt"])
    )
    assert code == 2 and "--prompt-dataset: no stage of the sft run takes that data" in err


def test_a_plan_file_gets_the_per_kind_flags_too(tmp_path, capsys):
    data = _rows(tmp_path)
    plan = build_plan("tiny", Setup(), pipeline="sft+dpo", gpu="rtx4090")
    (tmp_path / "plan.toml").write_text(plan.to_toml())
    code, _out, err = _generate(capsys, "--plan", str(tmp_path / "plan.toml"), "--out", str(tmp_path / "a"), "--dataset", str(data["preference"]))
    assert code == 2 and "take different data" in err  # the old code put the preference file under the SFT stage too
    code, _out, err = _generate(
        capsys,
        "--plan",
        str(tmp_path / "plan.toml"),
        "--out",
        str(tmp_path / "b"),
        "--instruction-dataset",
        str(data["instruction"]),
        "--preference-dataset",
        str(data["preference"]),
    )
    assert code == 0, err
    assert config_of((tmp_path / "b" / "train_sft.py").read_text())["dataset"] == str(data["instruction"])


def test_help_example_uses_flags_that_work():
    from advisor.commands import generate

    assert "--method-kind rlhf --method lora --dataset" not in generate.EXAMPLES
    assert "--instruction-dataset" in generate.EXAMPLES and "--prompt-dataset" in generate.EXAMPLES


def test_next_hint_is_shell_quoted(tmp_path, capsys):
    out = tmp_path / "my run $(id)"
    code, printed, err = _generate(capsys, "--model", "tiny", "--out", str(out))
    assert code == 0, err
    hint = next(line for line in printed.splitlines() if line.startswith("next:"))
    assert f"cd {shlex.quote(str(out))} && python train_sft.py" in hint


# ---- item 10 --------------------------------------------------------------------------------------------


def _config_json(tmp_path: Path) -> Path:
    folder = tmp_path / "my-model"
    folder.mkdir()
    cfg = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 256,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder / "config.json"


def test_a_config_json_path_makes_the_script_load_its_folder(tmp_path, capsys):
    path = _config_json(tmp_path)
    out = tmp_path / "r"
    code, _out, err = _generate(capsys, "--model", str(path), "--out", str(out))
    assert code == 0, err
    assert config_of((out / "train_sft.py").read_text())["model"] == str(path.parent)
    assert f"{path.parent} holds no weights" in err  # only a config.json there: the script could not load it
    (path.parent / "model.safetensors").write_bytes(b"")
    code, _out, err = _generate(capsys, "--model", str(path), "--out", str(tmp_path / "r2"))
    assert code == 0 and "holds no weights" not in err
    assert model_location("elsewhere/config.json") == "elsewhere"  # a plan moved to another machine
    assert model_location("meta-llama/Llama-3.1-8B") == "meta-llama/Llama-3.1-8B"  # hub ids stay


# ---- issue 14 §4: the README's memory figures ------------------------------------------------------------


def test_readme_names_the_card_and_the_need_apart():
    plan = build_plan("tiny", Setup(adaptation="lora"), pipeline="sft", gpu="rtx4090")
    plan.estimate = EstimateSummary(
        peak_allocated_gib=15.5, peak_reserved_gib=16.71, device_gib=17.21, peak_phase="sft: backward", fits=True, headroom_gib=6.44
    )
    readme = render(plan, versions=FALLBACK_PINS)["README.md"]
    assert "GiB device" not in readme
    assert "about 17.21 GiB, what nvidia-smi shows" in readme
    assert f"has {plan.hardware.memory_gib:.2f} GiB: fits (+6.44 GiB headroom)" in readme
    assert "0.5-1 GiB more" not in readme  # the CUDA context is already inside the 17.21
