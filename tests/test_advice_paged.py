"""Issue 13 item 3: paged optimizer states (bitsandbytes paged_adamw8bit: CUDA unified memory, outside the on-card
figure) are shown with their size and where they live on every surface: the advise printer and its JSON, the
saved plan, `advisor fit`, and the wizard's memory screen."""

from __future__ import annotations

import asyncio
import json

import pytest

from advisor.plan import load_plan
from estimators import Setup, estimate
from estimators.catalog import resolve_model
from estimators.dtypes import GIB
from estimators.gpus import find_gpu
from estimators.margin import Margin, paged_placement

# Full fine-tuning that only paged 8-bit states make fit: the example was 7B on an A100 40GB; as the
# estimator's figures move, the first of these cards and models whose plan pages is used.
CANDIDATES = [("a100-40gb", "7b"), ("l40s", "7b"), ("a100-80gb", "13b"), ("h100", "13b"), ("rtx4090", "3b")]


def _paged_plan() -> tuple[str, str]:
    from advisor.advice.advise import advise
    from advisor.answers import Answers

    for gpu, model in CANDIDATES:
        plan = advise(Answers.from_mapping(dict(goal="chat_format", data=["instruction_pairs"], gpu=gpu, model=model)))
        if any(s.setup.optimizer == "paged_adamw8bit" for s in plan.stages):
            return gpu, model
    raise AssertionError("no candidate plan uses paged_adamw8bit any more: pick new candidates")


GPU, MODEL = _paged_plan()
ADVISE = ["advise", "--goal", "chat_format", "--data", "instruction_pairs", "--gpu", GPU, "--model", MODEL]
FIT = ["fit", "--model", "7b", "--gpu", "a100-40gb", "--method", "full", "--optimizer", "paged_adamw8bit", "--grad-ckpt"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_placement_is_the_free_memory_then_pcie():
    est = estimate(resolve_model("7b").spec, Setup(adaptation="full", optimizer="paged_adamw8bit", grad_ckpt=True))
    assert est.paged_bytes > 10 * GIB  # 8-bit AdamW states of 6.7B parameters
    gpu = find_gpu("a100-40gb")
    placed = paged_placement(est, gpu.memory_bytes, Margin(), gpu.pcie_gbs)
    free = gpu.memory_bytes - est.device_bytes - Margin().kept(est, gpu.memory_bytes).total
    assert placed.total == est.paged_bytes and placed.on_card == min(est.paged_bytes, int(free))
    assert placed.spilled == est.paged_bytes - placed.on_card > 0
    assert placed.seconds_per_step == pytest.approx(2 * placed.spilled / (gpu.pcie_gbs * 1e9))
    roomy = paged_placement(est, find_gpu("h200").memory_bytes, Margin())
    assert roomy.spilled == 0 and "nothing pages" in roomy.describe()
    assert paged_placement(estimate(resolve_model("7b").spec, Setup(adaptation="qlora")), gpu.memory_bytes) is None


def test_advise_says_where_the_paged_states_live(advisor_main, tmp_path):
    target = tmp_path / "plan.toml"
    out = advisor_main(*ADVISE, "--json", "--save", str(target))
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["adaptation"] == "full" and any(s["setup"]["optimizer"] == "paged_adamw8bit" for s in plan["stages"])
    spec = resolve_model(MODEL).spec
    paged = max(estimate(spec, Setup.from_dict(s["setup"])).paged_bytes for s in plan["stages"])
    summary = plan["estimate"]
    assert summary["paged_gib"] == round(paged / GIB, 2) > 0
    assert "unified memory" in summary["paged_note"] and "PCIe" in summary["paged_note"]
    fits_reason = next(r["en"] for r in plan["reasons"] if r["rule"] == "full")
    assert "paged optimizer states" in fits_reason and f"{paged / GIB:.2f} GiB" in fits_reason
    saved = load_plan(target).estimate  # the saved plan's summary carries it too
    assert saved.paged_gib == summary["paged_gib"] and saved.paged_note == summary["paged_note"]


@pytest.mark.parametrize("lang, needle", [("en", "page between host RAM and the card over PCIe"), ("ko", "PCIe로 호스트 RAM과 오가며")])
def test_advise_printer_says_it_in_both_languages(advisor_main, lang, needle):
    out = advisor_main(*ADVISE, "--lang", lang)
    assert out.returncode == 0, out.stderr
    assert needle in _one_line(out.stdout)


def test_fit_says_where_the_paged_states_live(advisor_main):
    out = advisor_main(*FIT)
    assert out.returncode == 0, out.stderr
    text = _one_line(out.stdout)
    est = estimate(resolve_model("7b").spec, Setup(adaptation="full", optimizer="paged_adamw8bit", grad_ckpt=True))
    assert f"paged optimizer states: {est.paged_bytes / GIB:.2f} GiB live in CUDA unified memory" in text
    data = json.loads(advisor_main(*FIT, "--json").stdout)["paged_optimizer_states"]
    assert data["total"]["bytes"] == est.paged_bytes and data["on_card"]["bytes"] + data["spilled"]["bytes"] == est.paged_bytes
    assert "unified memory" in data["where"]


def test_wizard_memory_screen_says_where_the_paged_states_live():
    pytest.importorskip("textual")
    from test_wizard import text_of, to_step

    from advisor.tui.app import WizardApp

    answers = {"goal": "chat_format", "data": ["instruction_pairs"], "gpu": GPU, "model": MODEL}

    async def scenario():
        app = WizardApp(answers=answers, lang="en")
        async with app.run_test(size=(100, 30)) as pilot:
            await to_step(pilot, "memory")
            note = text_of(app.screen.query_one("#margin-note"))
            await pilot.press("ctrl+q")
        return note

    note = _one_line(asyncio.run(scenario()))
    assert "paged optimizer states" in note and "unified memory" in note
