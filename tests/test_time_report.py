"""The time block of `advisor estimate` (estimators/time_report.py, advisor/timeflags.py) and the throughput
accuracy table (estimators/time_accuracy.py, estimators/time_accuracy_report.py, `advisor accuracy --throughput`)."""

from __future__ import annotations

import json

import pytest

from advisor.cli import main
from estimators import time_accuracy as ta
from estimators import time_accuracy_report as tar
from estimators import time_report as tr
from estimators.catalog import resolve_model
from estimators.errors import EstimateError
from estimators.gpus import gpus
from estimators.setup import Setup
from estimators.timing import step_time

M8 = resolve_model("llama-3.1-8b").spec
H100 = gpus()["h100"]


def test_hours_are_steps_times_step_time():
    s = Setup(adaptation="lora", micro_batch=4, seq_len=2048, grad_accum=2)
    st = step_time(M8, s, H100)
    block = tr.time_dict(M8, s, H100, tr.Dataset(tokens=10**8, epochs=2))
    steps = 2 * 10**8 / (4 * 2048 * 2)
    assert block["dataset"]["optimizer_steps"] == pytest.approx(steps, abs=0.05)
    assert block["hours"]["total"] == pytest.approx(steps * st.seconds / 3600, rel=1e-3)
    assert block["hours"]["per_epoch"] == pytest.approx(block["hours"]["total"] / 2, rel=1e-3)
    assert block["cost"]["usd"] == pytest.approx(block["hours"]["total"] * H100.price_usd_per_hour, rel=1e-2)
    assert block["hours"]["low"] < block["hours"]["total"] < block["hours"]["high"]


def test_examples_with_mean_length_and_pairs():
    s = Setup(train="dpo", adaptation="lora", micro_batch=2, seq_len=1024)
    d = tr.Dataset(examples=1000, mean_tokens=1024)
    assert d.total_tokens(s) == 2 * 1000 * 1024  # chosen and rejected
    assert tr.Dataset(examples=1000).total_tokens(Setup(seq_len=512)) == 512 * 1000  # default: full packed sequences


def test_price_override_and_missing_price():
    s = Setup(adaptation="qlora")
    given = tr.time_dict(M8, s, H100, tr.Dataset(tokens=10**7), price=1.0)
    assert given["cost"]["price_usd_per_gpu_hour"] == 1.0 and given["cost"]["price_source"] == "given with --price"
    assert given["cost"]["usd"] == pytest.approx(given["hours"]["total"] * 1.0, rel=1e-2)
    unpriced = tr.time_dict(M8, s, gpus()["rtx3060"], tr.Dataset(tokens=10**6))
    assert unpriced["cost"]["usd"] is None and "pass --price" in unpriced["cost"]["why"]


@pytest.mark.parametrize(
    "bad, match",
    [
        (tr.Dataset(examples=10, tokens=10), "not both"),
        (tr.Dataset(tokens=-5), "--tokens must be positive"),
        (tr.Dataset(mean_tokens=300), "--mean-tokens needs --examples"),
        (tr.Dataset(tokens=10, epochs=0), "--epochs must be positive"),
    ],
)
def test_bad_dataset_values_are_one_line_errors(bad, match):
    with pytest.raises(EstimateError, match=match):
        tr.time_dict(M8, Setup(), H100, bad)


def test_shipped_band_is_what_the_published_rows_give():
    rows, low, high = tar.throughput_band(ta.compare())
    assert (rows, low, high) == (tr.BAND_ROWS, tr.BAND_LOW, tr.BAND_HIGH)


def test_accuracy_table_separates_fit_and_held_out_rows():
    results = ta.compare()
    groups = {r.row.group for r in results if r.error is not None}
    assert {"fms a100", "fms l40", "PEFT l40s"} <= groups
    fit = tar.stats([r for r in results if r.row.group.startswith(ta.FIT_SOURCE)])
    assert fit["compared"] >= 40
    lines = tar.report_lines(results)
    assert any(line.startswith("held out") for line in lines) and any("not expressible" in x for x in lines)
    # custom-kernel rows are never compared
    assert all(r.error is None for r in results if "custom kernels" in r.row.skipped)


def test_fit_recovers_a_perturbed_constant():
    """The fit is real: start it from a wrong matmul efficiency and it moves back towards the shipped one."""
    from dataclasses import replace

    from estimators.roofline import DEFAULT

    rows = [r for r in ta.mapped_rows() if r.group.startswith(ta.FIT_SOURCE) and not r.skipped][:20]
    wrong = replace(DEFAULT, matmul_efficiency=0.45)
    fitted = ta.fit_constants(rows, wrong, rounds=2)
    assert ta.loss(ta.compare(rows, fitted)) < ta.loss(ta.compare(rows, wrong))
    assert abs(fitted.matmul_efficiency - DEFAULT.matmul_efficiency) < abs(0.45 - DEFAULT.matmul_efficiency)


# ---- the CLI ----------------------------------------------------------------------------------


def test_estimate_json_has_a_time_block_with_units(capsys):
    assert (
        main(
            [
                "estimate",
                "--model",
                "8b",
                "--method",
                "qlora",
                "--gpu",
                "rtx4090",
                "--examples",
                "20000",
                "--mean-tokens",
                "350",
                "--epochs",
                "3",
                "--json",
            ]
        )
        == 0
    )
    t = json.loads(capsys.readouterr().out)["time"]
    assert t["units"]["throughput"] == "tokens/s" and t["units"]["cost"] == "USD"
    assert t["dataset"]["training_tokens"] == 20000 * 350 * 3
    assert t["tokens_per_s_per_gpu"] > 0 and t["cost"]["usd"] > 0
    assert t["band"]["tokens_per_s_per_gpu"]["low"] < t["tokens_per_s_per_gpu"] < t["band"]["tokens_per_s_per_gpu"]["high"]


def test_estimate_without_gpu_has_no_time_block(capsys):
    assert main(["estimate", "--model", "8b", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["time"] is None


def test_estimate_text_shows_throughput_hours_and_cost(capsys):
    assert main(["estimate", "--model", "8b", "--gpu", "a100-80gb", "--tokens", "5e7", "--price", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s per GPU" in out and "training tokens" in out and "$1.5/GPU-hour" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tokens", "1000"], "need --gpu"),
        (["--gpu", "24GB", "--tokens", "1000"], "a named card"),
        (["--gpu", "h100", "--tokens", "1000", "--examples", "5"], "not both"),
        (["--gpu", "h100", "--tokens", "1000", "--price", "-1"], "--price: must be at least 0"),
    ],
)
def test_estimate_time_flag_errors_exit_2(capsys, argv, message):
    assert main(["estimate", "--model", "8b", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_accuracy_throughput_command(capsys, tmp_path):
    out = tmp_path / "t.txt"
    assert main(["accuracy", "--throughput", "--throughput-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fit set" in text and "held out" in text and out.read_text(encoding="utf-8").startswith("# generated by `advisor accuracy --throughput")


@pytest.mark.slow  # refits the throughput model on every published row
def test_recorded_throughput_table_is_current():
    """bench/results/time_accuracy.txt is what `advisor accuracy --throughput --fit` prints now (refit included:
    a refit equal to the shipped constants shows they are the fit's fixed point)."""
    from pathlib import Path

    from advisor.throughput import recorded_text, table_lines

    path = Path(__file__).resolve().parent.parent / "bench" / "results" / "time_accuracy.txt"
    assert path.read_text(encoding="utf-8") == recorded_text(True, table_lines(True)), (
        "run: advisor accuracy --throughput --fit --throughput-out bench/results/time_accuracy.txt"
    )
