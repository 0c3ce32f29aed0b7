"""Malformed and absurd config.json files, hostile --model text and unreadable files (issue 13 item 14):
one line on stderr naming the field and its range, exit 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.cli import main
from estimators.catalog import catalog
from estimators.config_json import read_config_json
from estimators.hf_config import hf_config_from_spec


@pytest.fixture()
def llama(tmp_path: Path):
    base = hf_config_from_spec(catalog()["llama-2-7b"])

    def write(**changes) -> Path:
        path = tmp_path / "config.json"
        path.write_text(json.dumps({**base, **changes}), encoding="utf-8")
        return path

    return write


def _estimate(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(["estimate", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def test_a_real_config_still_reads(llama, capsys):
    code, err = _estimate(capsys, "--model", str(llama()))
    assert code == 0, err


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"head_dim": 10**9}, "head_dim"),
        ({"head_dim": 1e9}, "head_dim"),
        ({"num_hidden_layers": 10**9}, "num_hidden_layers"),
        ({"num_hidden_layers": 1e9}, "num_hidden_layers"),
        ({"vocab_size": 10**12}, "vocab_size"),
        ({"num_key_value_heads": 0}, "num_key_value_heads"),
        ({"num_key_value_heads": 64}, "num_key_value_heads"),  # more than the 32 attention heads
        ({"tie_word_embeddings": "yes"}, "tie_word_embeddings"),
        ({"tie_word_embeddings": "false"}, "tie_word_embeddings"),
        ({"hidden_size": 10**4000}, "hidden_size"),
        ({"intermediate_size": -1}, "intermediate_size"),
        ({"max_position_embeddings": "4096"}, "max_position_embeddings"),
    ],
)
def test_absurd_values_are_refused_naming_the_field(llama, capsys, changes, field):
    code, err = _estimate(capsys, "--model", str(llama(**changes)))
    assert code == 2
    assert err.count("\n") == 1 and field in err and "Traceback" not in err
    assert len(err) < 300  # a 4000-digit number is not printed in full


def test_range_error_says_the_range(llama, capsys):
    _, err = _estimate(capsys, "--model", str(llama(num_hidden_layers=10**9)))
    assert "1..1,024" in err


def test_a_5000_digit_integer(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text('{"model_type": "llama", "hidden_size": ' + "9" * 5000 + "}", encoding="utf-8")
    code, err = _estimate(capsys, "--model", str(path))
    assert code == 2 and "too long" in err and err.count("\n") == 1


def test_deeply_nested_json(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    code, err = _estimate(capsys, "--model", str(path))
    assert code == 2 and "nested too deeply" in err


def test_nan_in_a_config(llama, capsys):
    path = llama()
    path.write_text(path.read_text().replace('"rms_norm_eps"', '"final_logit_softcapping": NaN, "rms_norm_eps"'))
    assert read_config_json(path).num_layers == 32  # llama has no soft-capping: the key is not read
    path.write_text(path.read_text().replace('"num_hidden_layers": 32', '"num_hidden_layers": Infinity'))
    code, err = _estimate(capsys, "--model", str(path))
    assert code == 2 and "num_hidden_layers" in err


@pytest.mark.parametrize("model", ["x" * 400, "a/" + "b" * 300, "evil\nname", "\x1b[2J"])
def test_hostile_model_text(capsys, model):
    code, err = _estimate(capsys, "--model", model)
    assert code == 2 and err.count("\n") == 1 and "\x1b" not in err and "Traceback" not in err


def test_answers_file_that_cannot_be_read(capsys):
    try:
        code = main(["advise", "--answers", "/proc/self/mem"])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "/proc/self/mem" in err


def test_newline_in_a_value_stays_on_one_line(capsys):
    code, err = _estimate(capsys, "--model", "7b", "--method", "lo\nra")
    assert code == 2 and err.count("\n") == 1 and "lo\\nra" in err
