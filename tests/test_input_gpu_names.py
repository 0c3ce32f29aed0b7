"""GPU names as people type them (issue 13 item 13): model numbers, nvidia-smi names, sizes on the box."""

from __future__ import annotations

import json

import pytest

from advisor.cli import main
from estimators.dtypes import GIB
from estimators.errors import EstimateError
from estimators.gpu_names import usable_share
from estimators.gpus import find_gpu, gpus


@pytest.mark.parametrize(
    ("typed", "card"),
    [
        ("4090", "rtx4090"),
        ("3060ti", "rtx3060ti"),
        ("3060 Ti", "rtx3060ti"),
        ("rtx 3060 ti", "rtx3060ti"),
        ("3060", "rtx3060"),  # not the Ti
        ("NVIDIA GeForce RTX 4090", "rtx4090"),  # nvidia-smi --query-gpu=name
        ("NVIDIA GeForce RTX 3060 Ti", "rtx3060ti"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-80gb"),
        ("a100 40", "a100-40gb"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("Tesla T4", "t4"),
        ("Tesla V100-SXM2-16GB", "v100"),
        ("v100 32gb", "v100-32gb"),
        ("NVIDIA RTX A6000", "rtxa6000"),
        ("AMD Instinct MI300X", "mi300x"),
        ("rtx4090", "rtx4090"),  # ids and full table names still work
        ("NVIDIA GeForce RTX 4090 24GB", "rtx4090"),
    ],
)
def test_names_people_and_nvidia_smi_use(typed, card):
    assert find_gpu(typed).id == card


def test_a100_without_a_size_names_both_variants():
    with pytest.raises(EstimateError) as err:
        find_gpu("a100")
    message = str(err.value)
    assert "a100-40gb (39.39 GiB)" in message and "a100-80gb (79.15 GiB)" in message


@pytest.mark.parametrize("typed", ["h100 nvl", "rtx 4090 laptop gpu", "4090 48gb"])
def test_other_cards_of_the_same_chip_are_not_matched(typed):
    with pytest.raises(EstimateError):  # an H100 NVL has 94 GB, a laptop 4090 16 GB: not the table's rows
        find_gpu(typed)


def test_a_size_in_gb_is_the_size_on_the_box():
    # a "24 GB" card has 24 GiB of chips; the 4090 (sold as 24 GB) has 23.65 GiB usable, so must "24GB"
    card, rtx4090 = find_gpu("24GB"), gpus()["rtx4090"]
    assert abs(card.memory_gib - rtx4090.memory_gib) < 0.1
    assert card.memory_bytes > 24e9  # not 24e9 bytes, not 24 GiB
    assert card.memory_gib < 24
    for same in ("24", "24 GB", "24gb", "24G"):
        assert find_gpu(same).memory_gib == card.memory_gib
    share = usable_share(gpus())
    assert 0.9 < share < 1.0 and card.memory_gib == round(24 * share, 2)
    assert "sold as 24 GB" in card.source


def test_a_size_in_gib_is_taken_as_usable():
    assert find_gpu("23.5GiB").memory_bytes == 23.5 * GIB


@pytest.mark.parametrize("typed", ["nan GB", "infGB", "inf", "0GB", "-3GB", "1e400GB", "5000GB"])
def test_non_finite_and_absurd_sizes_are_refused(typed):
    with pytest.raises(EstimateError, match="must be above 0"):
        find_gpu(typed)


@pytest.mark.parametrize("typed", ["a100", "banana", "rtx3080", "nan GB", "x" * 400, "4090 48gb", "evil\nname", "\x1b[31mred"])
def test_errors_are_one_short_line(typed):
    """The wizard shows the error in its footer: one line, short enough for an 80-column terminal."""
    with pytest.raises(EstimateError) as err:
        find_gpu(typed)
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message
    assert len(message) <= 72, message


def test_estimate_json_with_a_nan_size_is_refused(capsys):
    assert main(["estimate", "--model", "7b", "--gpu", "nan GB", "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "must be above 0" in err


def test_estimate_json_with_a_typed_name_is_valid_json(capsys):
    assert main(["estimate", "--model", "7b", "--method", "qlora", "--gpu", "NVIDIA GeForce RTX 4090", "--json"]) == 0
    data = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert "rtx4090" in json.dumps(data)


def test_wizard_answer_error_fits_the_footer():
    from advisor.tui.state import WizardState

    state = WizardState(lang="en")
    assert state.set_answer("gpu", "4090") is None
    error = state.set_answer("gpu", "a100")
    assert error and "a100-80gb" in error and len(error) <= 72


@pytest.mark.parametrize(("typed", "tokens"), [("8k", 8192), ("32K", 32768), ("8192", 8192), ("8_192", 8192)])
def test_seq_len_in_k(typed, tokens, capsys):
    assert main(["estimate", "--model", "7b", "--seq-len", typed, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["setup"]["seq_len"] == tokens


@pytest.mark.parametrize("typed", ["--", "8kk", "k", "1.5k", "9" * 410, "99999999999"])
def test_bad_seq_len_is_one_line(typed, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["estimate", "--model", "7b", f"--seq-len={typed}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 200


def test_advise_seq_len_in_k(capsys):
    assert main(["advise", "--goal", "domain", "--data", "raw_text", "--gpu", "24GB", "--seq-len", "4k", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["answers"]["seq_len"] == 4096


@pytest.mark.parametrize(
    ("flag", "value"), [("--budget-usd", "nan"), ("--time-budget-hours", "inf"), ("--gpu-count", "9" * 30), ("--data-count", "9" * 5000)]
)
def test_advise_refuses_non_finite_and_huge_numbers(flag, value, capsys):
    code = main(["advise", "--goal", "domain", "--data", "raw_text", "--gpu", "24GB", flag, value, "--json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and flag in err and len(err) < 200
