"""The estimator held to measurements (fast, no torch): every stored trace row, the published rows, and
docs/accuracy.md being what `advisor accuracy` generates now."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from estimators import accuracy as acc
from estimators.accuracy_published import compare_published
from estimators.accuracy_rows import read_traces
from estimators.accuracy_traces import compare_traces
from estimators.catalog import resolve_model
from estimators.params import count_params
from estimators.setup import Setup

TRACES = compare_traces()
PUBLISHED = compare_published()


def test_every_trace_row_is_within_tolerance():
    bad = [f"{c.model} {c.config}: {100 * c.error:+.1f} %" for c in TRACES if abs(c.error) > acc.TRACE_MAX]
    assert bad == []
    assert statistics.median(abs(c.error) for c in TRACES) <= acc.TRACE_MEDIAN


def test_traces_cover_the_required_matrix():
    rows = read_traces()
    assert len(rows) >= 40
    setups = [Setup.from_dict(r["setup"]) for r in rows]
    families = {resolve_model(r["model"]).spec.model_type for r in rows}
    assert {"llama", "mistral", "qwen2", "gemma2", "phi3", "gpt2"} <= families
    assert any(resolve_model(r["model"]).spec.is_moe for r in rows)
    assert {s.adaptation for s in setups} == {"full", "lora", "qlora"}
    assert {s.checkpointing for s in setups} == {True, False}
    assert min(s.micro_batch for s in setups) == 1 and max(s.micro_batch for s in setups) >= 16
    assert min(s.seq_len for s in setups) <= 256 and max(s.seq_len for s in setups) >= 8192
    sizes = [count_params(resolve_model(r["model"]).spec).total for r in rows]
    assert min(sizes) <= 0.6e9 and max(sizes) >= 65e9


def test_fused_head_traces_cover_the_matrix():
    """TRL's fused LM head (what generated scripts run) is traced over the three large vocabularies, every method,
    with and without checkpointing; every row records the loss it traced."""
    rows = read_traces()
    assert all(r["setup"]["loss"] in ("fused", "full") for r in rows)
    fused = [r for r in rows if r["setup"]["loss"] == "fused" and r["setup"].get("train", "sft") != "reward"]
    assert len(fused) >= 12
    vocabs = {resolve_model(r["model"]).spec.vocab_size for r in fused}
    assert 128256 in vocabs and any(150_000 < v < 160_000 for v in vocabs) and 256000 in vocabs  # Llama 3, Qwen2.5, Gemma 2
    setups = [Setup.from_dict(r["setup"]) for r in fused]
    assert {s.adaptation for s in setups} == {"full", "lora", "qlora"}
    assert {s.checkpointing for s in setups} == {True, False}
    assert min(s.seq_len for s in setups) <= 512 and max(s.seq_len for s in setups) >= 8192
    assert min(s.micro_batch for s in setups) == 1 and max(s.micro_batch for s in setups) >= 8
    assert all(any("add_fused_lm_head" in n for n in r["notes"]) for r in fused)
    errors = [abs(c.error) for c in TRACES if c.loss == "fused"]
    assert len(errors) == len(fused) and max(errors) <= acc.TRACE_MAX


def test_preference_kinds_are_traced_and_within_tolerance():
    """--train reward and --train dpo (advisor/measure/prefs.py) are traced at full size: full, LoRA and QLoRA, with and
    without checkpointing, several models; each row is within the trace target, and the summary reports each
    kind on its own line."""
    rows = read_traces()
    for kind in ("reward", "dpo"):
        setups = [Setup.from_dict(r["setup"]) for r in rows if r["setup"].get("train") == kind]
        assert len(setups) >= 4
        assert {s.adaptation for s in setups} == {"full", "lora", "qlora"}
        assert {s.checkpointing for s in setups} == {True, False}
        assert len({r["model"] for r in rows if r["setup"].get("train") == kind}) >= 3
        assert all(any(kind in n.lower() for n in r["notes"]) for r in rows if r["setup"].get("train") == kind)
        errors = [abs(c.error) for c in TRACES if c.train == kind]
        assert len(errors) == len(setups) and max(errors) <= acc.TRACE_MAX
        assert statistics.median(errors) <= acc.TRACE_MEDIAN
        assert any(line.strip().startswith(kind) for line in acc.summary_lines(TRACES, PUBLISHED))
    dpo = [r for r in rows if r["setup"].get("train") == "dpo"]
    assert all(any("add_fused_lm_head" in n for n in r["notes"]) for r in dpo)


def test_grpo_is_traced_with_its_generation_round_and_within_tolerance():
    """--train grpo (advisor/measure/grpo.py) is traced at full size: generation, the no-grad log-prob forwards and
    the training step are phases of each row, LoRA, QLoRA and full; every step peak is within the trace target."""
    rows = [r for r in read_traces() if r["setup"].get("train") == "grpo"]
    assert len(rows) >= 4
    assert {r["setup"]["method"] for r in rows} == {"full", "lora", "qlora"}
    assert all("generation" in r["phase_peaks"] and "GRPOTrainer" in " ".join(r["notes"]) for r in rows)
    errors = [abs(c.error) for c in TRACES if c.train == "grpo"]
    assert len(errors) == len(rows) and max(errors) <= acc.TRACE_MAX


def test_trace_rows_name_their_kernel_and_mode():
    for r in read_traces():
        assert r["attention"] and r["mode"] in ("fake", "real-cpu", "cuda")
        if r["setup"]["method"] == "qlora":
            assert "Linear4bit" in r["quantization"]


def test_published_rows_with_the_matching_statistic():
    compared = [c for c in PUBLISHED if c.error is not None]
    assert len(compared) >= 20
    assert statistics.median(abs(c.error) for c in compared) <= acc.PUBLISHED_MEDIAN
    # the primary statistic of each row; the nvidia-smi figures of the same runs (row ids ending /smi) are held to
    # their own targets in tests/test_band_fit.py
    single = [c for c in compared if "fsdp" not in c.config and not c.row_id.endswith("/smi")]
    misses = {c.row_id: c.error for c in single if abs(c.error) > 0.10}
    # Known and explained in docs/status.md: SantaCoder B8 (transformers 4.48.1, loss priced from its source and a CPU
    # measurement) holds ~1.6 GiB more than any traced or read term; the fused-kernel run of the same file shows it
    # too. Listed so a fix shows up here (the entry must then be removed) and no other row may join it.
    assert misses.keys() == KNOWN_MISSES.keys(), f"rows over 10 %: {misses}; known: {KNOWN_MISSES}"
    for row_id, error in misses.items():
        assert abs(error) <= KNOWN_MISSES[row_id]


KNOWN_MISSES = {"r0209": 0.13}  # row id -> the |error| it must stay within


def test_oom_rows_are_predicted_above_the_card():
    ooms = [c for c in PUBLISHED if c.statistic == "oom"]
    assert len(ooms) >= 15
    single_gpu_misses = [c.row_id for c in ooms if not c.oom_ok and "fsdp" not in c.config]
    assert single_gpu_misses == []
    # FSDP + QLoRA is priced by estimators/parallel.py; the one published miss is listed in docs/accuracy.md
    assert sum(1 for c in ooms if not c.oom_ok) <= 1


def test_llama_adapter_rows_are_priced_with_the_config_their_count_implies():
    """PEFT's MetaMathQA ADAPTION_PROMPT runs on an L40S (r0146, r0147): 8,601,628 trained = 28 x (100 x 3072 + 1),
    priced as --llama-adapter --adapter-len 100 --adapter-layers 28 and held to the reserved figure."""
    rows = {c.row_id: c for c in PUBLISHED if c.row_id in ("r0146", "r0147")}
    assert rows.keys() == {"r0146", "r0147"}
    for c in rows.values():
        assert "llama-adapter len 100 x28" in c.config and c.statistic == "reserved"
        assert abs(c.error) <= 0.05, c


def test_rows_the_estimator_cannot_express_say_why():
    skipped = [c for c in PUBLISHED if c.skipped]
    assert skipped and all(len(c.skipped) > 10 for c in skipped)
    assert not any(c.skipped for c in PUBLISHED if c.row_id in ("r0215", "r0263", "r0158"))


def test_docs_accuracy_md_is_what_the_tool_generates():
    assert acc.DOC_PATH.is_file(), "run `advisor accuracy` to write docs/accuracy.md"
    assert acc.DOC_PATH.read_text(encoding="utf-8") == acc.generate(), "docs/accuracy.md is stale: run `advisor accuracy`"


def test_readme_accuracy_block_is_what_the_tool_generates():
    text = acc.README_PATH.read_text(encoding="utf-8")
    assert text.count(acc.README_START) == 1 and text.count(acc.README_END) == 1
    block = acc.render_readme_block(TRACES, PUBLISHED)
    assert acc.readme_with_block(text, block) == text, "README.md's accuracy block is stale: run `advisor accuracy --write-readme`"
    assert text.index(acc.README_START) > text.index("## Accuracy") and text.index(acc.README_END) < text.index("## Development")


def test_accuracy_command_checks_without_torch():
    code = (
        "import sys, contextlib, io\nfrom advisor.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    rc = main(['accuracy', '--check'])\n"
        "print(rc, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 False"


def test_accuracy_json():
    out = subprocess.run([sys.executable, "-m", "advisor", "accuracy", "--json", "--out", "/dev/null"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["traces"]["summary"]["compared"] == len(TRACES)
    assert {"measured", "estimate", "error", "skipped"} <= set(data["published"]["rows"][0])
