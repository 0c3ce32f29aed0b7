"""rules/gpus.toml as the time model reads it: the consumer flag, speed and price columns, and a loader that
rejects a broken table with one message naming every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from estimators.errors import EstimateError
from estimators.gpus import find_gpu, gpus, load_gpus
from estimators.tables import rules_path

GEFORCE = {"rtx3060ti", "rtx3060", "rtx3090", "rtx4060ti-8gb", "rtx4060ti-16gb", "rtx4090", "rtx5090"}


def test_every_row_states_consumer_explicitly():
    # Explicit in the table, not the dataclass default: a new row must decide.
    text = rules_path("gpus.toml").read_text(encoding="utf-8")
    assert text.count("[[gpu]]") == text.count("\nconsumer = ")


def test_consumer_is_the_geforce_cards():
    table = gpus()
    assert {g.id for g in table.values() if g.consumer} == GEFORCE
    assert all("GeForce" in table[i].name for i in GEFORCE)
    assert not table["rtxa6000"].consumer  # workstation card
    assert not table["a100-80gb"].consumer


def test_user_given_size_is_not_consumer_and_not_timed():
    card = find_gpu("24GB")
    assert card.consumer is False
    assert not card.timed


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gpus.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD = 'id = "x"\nname = "X"\nmemory_gib = 10.0\nbf16 = true\nsource = "s"\n'


def test_loader_is_tolerant_of_missing_optional_columns(tmp_path):
    card = load_gpus(_write(tmp_path, "[[gpu]]\n" + GOOD))["x"]
    assert card.consumer is False and card.price_usd_per_hour is None and not card.timed


def test_loader_reports_every_problem(tmp_path):
    body = (
        "[[gpu]]\n" + GOOD + 'consumer = "yes"\nbf16_tflops = -1\nwarp = 3\n'
        '[[gpu]]\nid = "y"\nname = "Y"\nbf16 = true\nsource = "s"\nprice_usd_per_hour = 1.0\n'
    )
    with pytest.raises(EstimateError) as err:
        load_gpus(_write(tmp_path, body))
    msg = str(err.value)
    for part in (
        "x: 'consumer' must be true or false",
        "x: 'bf16_tflops' must be a positive number",
        "x: unknown key 'warp'",
        "x: speed figures need a perf_source",
        "y: missing 'memory_gib'",
        "y: a price needs price_date and price_source",
    ):
        assert part in msg


def test_loader_rejects_duplicates_and_bad_interconnect(tmp_path):
    body = "[[gpu]]\n" + GOOD + "[[gpu]]\n" + GOOD + 'interconnect = "smoke"\n'
    with pytest.raises(EstimateError) as err:
        load_gpus(_write(tmp_path, body))
    assert "duplicate row id 'x'" in str(err.value) and "interconnect must be one of" in str(err.value)


def test_loader_rejects_unreadable_table(tmp_path):
    with pytest.raises(EstimateError, match="cannot read"):
        load_gpus(_write(tmp_path, "[[gpu]\n"))
    with pytest.raises(EstimateError, match="no \\[\\[gpu\\]\\] rows"):
        load_gpus(_write(tmp_path, "x = 1\n"))


def test_every_card_has_speed_figures_with_a_source():
    for card in gpus().values():
        assert card.timed, card.id
        assert "http" in card.perf_source or card.perf_source.startswith("derived"), card.id
        assert card.interconnect_gbs and card.pcie_gbs, card.id
        # Dense, not 2:4 sparsity: no card in the table reaches 2.5 PFLOP/s dense bf16.
        assert card.peak_flops < 2.5e15, card.id


def test_every_card_has_a_price_or_says_why_not():
    for card in gpus().values():
        if card.price_usd_per_hour is None:
            assert "pass --price" in card.price_source, card.id
        else:
            assert card.price_date and "http" in card.price_source, card.id


def test_datasheet_peaks_the_calibration_set_uses():
    # /work/shared/calibration/README.md: "A100 312, L40 181.05, L40S 362.05 TFLOPS (... without sparsity)".
    table = gpus()
    assert table["a100-80gb"].peak_flops == 312e12
    assert table["l40"].peak_flops == 181.05e12
    assert table["l40s"].peak_flops == 362.05e12


def test_flash_attention_and_bf16_follow_compute_capability():
    table = gpus()
    for old in ("t4", "v100", "v100-32gb"):  # sm_70/sm_75: no bf16, no FlashAttention-2
        assert not table[old].bf16 and not table[old].flash_attention
        assert table[old].peak_flops == table[old].fp16_tflops * 1e12
    assert all(g.flash_attention for g in table.values() if g.bf16)
    assert table["h100"].fp8 and not table["a100-80gb"].fp8
