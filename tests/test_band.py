"""The on-card figure's error band (estimators/band.py) and `fits` judged on its upper end (issue 15 §3)."""

from __future__ import annotations

import json

import pytest

from estimators import band as b
from estimators import estimate
from estimators.catalog import resolve_model
from estimators.dtypes import GIB, MIB
from estimators.setup import Setup

SPEC = resolve_model("7b").spec
MODEL = {  # a hand-made device model: the arithmetic below is checked against it, not against the fitted numbers
    "min_rows": 8,
    "constants": {
        "frag_checkpointed": {"value": 0.25, "rows": []},
        "frag_saved": {"value": 0.1, "rows": []},
        "grad_frag": {"value": 0.5, "rows": []},
        "multi_gpu_gib": {"value": 3.0, "rows": []},
        "context": [{"torch_from": [2, 0], "mib": 512}, {"torch_from": [0, 0], "mib": 1343}],
    },
    "bands": {
        "qlora x trl x device": {"low": 0.9, "high": 1.2, "n": 3, "source": "three rows"},
        "qlora x any x device": {"low": 0.95, "high": 1.1, "n": 12, "source": "twelve rows"},
        "any x any x device": {"low": 0.8, "high": 1.3, "n": 40, "source": "forty rows"},
    },
}


def test_reserved_is_allocated_plus_the_fragmented_share_of_transients_and_gradients_rounded_to_2_mib():
    allocated, transient, grads = 10 * GIB, 4 * GIB, 1 * GIB
    # checkpointed: 10 + 0.25 x 4 + 0.5 x 1 = 11.5 GiB, already a multiple of 2 MiB
    assert b.reserved_bytes(allocated, transient, grads, True, MODEL) == int(11.5 * GIB)
    # saved activations: 10 + 0.1 x 4 + 0.5 = 10.9 GiB -> rounded up to the next 2 MiB
    expected = -(-int(10.9 * GIB) // (2 * MIB)) * (2 * MIB)
    assert b.reserved_bytes(allocated, transient, grads, False, MODEL) == expected
    assert expected % (2 * MIB) == 0 and expected >= 10.9 * GIB


def test_context_depends_on_the_torch_generation_and_adds_the_multi_gpu_constant():
    assert b.context_bytes("2.4.1", 1, MODEL) == 512 * MIB
    assert b.context_bytes("1.13", 1, MODEL) == 1343 * MIB
    assert b.context_bytes("2.4", 2, MODEL) == 512 * MIB + 3 * GIB
    reserved, device = b.on_card(10 * GIB, 6 * GIB, 1 * GIB, True, "2.4", 1, MODEL)
    assert reserved == int(11.5 * GIB) and device == reserved + 512 * MIB


def test_a_class_with_too_few_rows_falls_back_to_the_coarser_class():
    name, entry = b.lookup("qlora", "trl", "device", MODEL)
    assert name == "qlora x any x device" and entry["n"] == 12  # the asked class has 3 < 8 rows
    name, _ = b.lookup("full", "unsloth", "device", MODEL)
    assert name == "any x any x device"


def test_estimate_band_is_the_device_figure_times_its_class_percentiles():
    est = estimate(SPEC, Setup(adaptation="qlora"))
    band = est.band
    name, entry = b.lookup("qlora", est.setup.stack, "device")
    assert band.klass == name and band.n_rows == entry["n"] and band.asked == f"qlora x {est.setup.stack} x device"
    assert band.low_bytes == int(est.device_bytes * entry["low"])
    assert band.high_bytes == int(est.device_bytes * max(entry["high"], 1.0)) >= est.device_bytes
    assert band.source and band.statistic == "device"


def test_fits_and_headroom_use_the_upper_end_of_the_band():
    est = estimate(SPEC, Setup(adaptation="full", precision="bf16-mixed"))
    assert est.band.high_bytes > est.device_bytes
    between = (est.device_bytes + est.band.high_bytes) / 2  # a card the point figure fits on, the band does not
    assert not est.fits(between)
    assert est.headroom(between) == between - est.band.high_bytes < 0
    assert est.fits(est.band.high_bytes) and est.headroom(est.band.high_bytes) == 0


def test_older_torch_prices_the_larger_context():
    new = estimate(SPEC, Setup(adaptation="qlora", versions="torch=2.4"))
    old = estimate(SPEC, Setup(adaptation="qlora", versions="torch=1.13"))
    assert old.context_bytes - new.context_bytes == (1343 - 512) * MIB
    assert old.peak_allocated == new.peak_allocated


def test_json_gives_the_band_with_units_and_says_fits_uses_its_upper_end(advisor_main):
    out = advisor_main("estimate", "--model", "7b", "--method", "qlora", "--gpu", "rtx3090", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    band = data["peak"]["band"]
    assert band["low"]["bytes"] <= band["high"]["bytes"] and band["high"]["gib"] == pytest.approx(band["high"]["bytes"] / GIB, abs=1e-3)
    assert band["fits_uses"] == "high" and band["n_rows"] > 0 and band["class"].endswith("x device")
    assert data["gpu"]["judged_on"] == "band high"
    assert data["gpu"]["headroom_gib"] == pytest.approx((data["gpu"]["memory_gib"] * GIB - band["high"]["bytes"]) / GIB, abs=0.01)


def test_terminal_output_prints_the_range_on_real_gpus(advisor_main):
    run = advisor_main("estimate", "--model", "7b", "--method", "qlora")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "on the card (" in out and "on real GPUs)" in out and "upper end" in out
