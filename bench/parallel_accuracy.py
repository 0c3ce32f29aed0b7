"""Compare the FSDP estimates with the published 2-GPU FSDP FULL_SHARD rows and write docs/parallel-accuracy.md.

    .venv/bin/python bench/parallel_accuracy.py            # writes docs/parallel-accuracy.md
    .venv/bin/python bench/parallel_accuracy.py --stdout   # prints it instead

Rows: fms-acceleration benchmark refs in estimators/calibration/published_calibration.csv (A100 80GB, alpaca
packed to 4096 tokens, gradient checkpointing and flash-attention on, HF Trainer default optimizer, bf16 weights
without AMP, LoRA r16 on q/k/v/o; the 2-GPU runs use accelerate FSDP FULL_SHARD). Figure: HF Trainer memory
metrics, max_memory_allocated of rank 0, compared with the estimate's allocated peak. Each 2-GPU row is put next
to its 1-GPU twin (same model, method, framework and micro-batch) so the error the layout adds can be told
apart from the error the single-GPU model already has.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from estimators import Setup, estimate  # noqa: E402
from estimators.accuracy_setups import SOURCE_STACKS  # noqa: E402
from estimators.catalog import catalog  # noqa: E402
from estimators.dtypes import GIB  # noqa: E402
from estimators.gpus import find_gpu  # noqa: E402
from estimators.params import count_params  # noqa: E402

CSV = ROOT / "estimators" / "calibration" / "published_calibration.csv"
OUT = ROOT / "docs" / "parallel-accuracy.md"
KEYS = {"Mistral-7B-v0.1": "mistral-7b-v0.1", "Mixtral-8x7B-Instruct-v0.1": "mixtral-8x7b", "Llama-2-70b-hf": "llama-2-70b"}
CARD = find_gpu("a100-80gb")


def short_framework(fw: str) -> str:
    if fw.startswith("plain HF"):
        return "HF"
    if "baseline-peft-bnb" in fw:
        return "HF+PEFT bnb"
    if "accelerated-peft-bnb]" in fw:
        return "fms bnb plugin"
    return fw


def skip_reason(row: dict) -> str:
    if not row["source_name"].startswith("fms"):
        return "not fms-acceleration"
    if "foak" in row["framework"]:
        return "fused Triton kernels (foak): not plain HF"
    if "GPTQ" in row["quantization"]:
        return "GPTQ base: not modelled"
    if row["model"] not in KEYS:
        return f"{row['model']} is not in the catalog"
    return ""


def setup_for(row: dict) -> Setup:
    """The run as a Setup. kbit_upcast: the HF+PEFT baseline calls prepare_model_for_kbit_training on one GPU;
    the fms plugin does not, and no FSDP run can (FSDP1 flattens a unit into one dtype)."""
    gpus = int(row["n_gpus"])
    upcast = row["method"] == "qlora" and "baseline-peft-bnb" in row["framework"] and gpus == 1
    stack, versions = SOURCE_STACKS.get(row["source_name"], ("trl", ""))  # the stack the benchmark recorded, as advisor accuracy prices it
    return Setup(
        stack=stack,
        versions=versions,
        adaptation=row["method"],
        precision="bf16",
        optimizer="adamw",
        micro_batch=int(row["micro_batch_size"]),
        seq_len=4096,
        grad_ckpt=True,
        attention="flash",
        lora_r=16,
        lora_alpha=16,
        lora_targets="attention",
        kbit_upcast=upcast,
        gpus=gpus,
        parallel="fsdp" if gpus > 1 else "none",
        loss="full",  # the HF Trainer's causal-LM loss
    )


def spec_for(row: dict):
    """The 2024-25 runs predate transformers 5: Mixtral's experts were nn.Linear modules that bitsandbytes
    quantised (transformers 5 stores them as fused 3-D parameters, which it does not)."""
    spec = catalog()[KEYS[row["model"]]]
    return spec.with_(experts_fused=False) if spec.is_moe else spec


def evaluate(row: dict) -> dict:
    est = estimate(spec_for(row), setup_for(row))
    measured = float(row["memory_gib"]) if row["figure_kind"] == "peak" else None
    got = est.peak_allocated / GIB
    return {
        "row": row["row_id"],
        "model": row["model"],
        "method": row["method"],
        "framework": short_framework(row["framework"]),
        "mb": int(row["micro_batch_size"]),
        "gpus": int(row["n_gpus"]),
        "measured": measured,
        "estimate": got,
        "error": (got / measured - 1) if measured else None,
        "phase": est.peak_phase,
        "oom": measured is None,
        "predicted_oom": not est.fits(CARD.memory_bytes),
        "est": est,
    }


def load() -> tuple[list[dict], dict]:
    rows = list(csv.DictReader(CSV.open()))
    skipped: dict[str, int] = {}
    kept = []
    for row in rows:
        if not row["source_name"].startswith("fms"):
            continue
        reason = skip_reason(row)
        if reason:
            if row["n_gpus"] == "2":
                skipped[reason] = skipped.get(reason, 0) + 1
            continue
        kept.append(evaluate(row))
    return kept, skipped


def fmt(x, spec="{:.2f}", none="OOM") -> str:
    return none if x is None else spec.format(x)


def pct(x) -> str:
    return "" if x is None else f"{x * 100:+.0f}%"


def render(results: list[dict], skipped: dict) -> str:
    two = [r for r in results if r["gpus"] == 2]
    one = {(r["model"], r["method"], r["framework"], r["mb"]): r for r in results if r["gpus"] == 1}
    lines = [
        "# FSDP estimates against published 2-GPU runs",
        "",
        "Generated by `bench/parallel_accuracy.py` from `estimators/calibration/published_calibration.csv` (fms-acceleration",
        "benchmark refs: A100 80GB, alpaca packed to 4096 tokens, gradient checkpointing, flash-attention, HF Trainer",
        "default optimizer, bf16 weights without AMP, LoRA r16 on q/k/v/o, 2-GPU runs with accelerate FSDP FULL_SHARD).",
        "Figure compared: HF Trainer memory metrics (max_memory_allocated, rank 0) against the estimate's allocated peak",
        "per GPU. Each 2-GPU row sits next to its 1-GPU twin (same model, method, framework, micro-batch) when the",
        "source has one, so the error the FSDP layout adds is separated from the single-GPU model's own error.",
        "",
        "| row | model | method | framework | micro-batch | measured GiB | estimate GiB | error | peak phase | 1-GPU twin: measured / estimate / error | change 1 -> 2 GPUs: measured / estimate |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in two:
        twin = one.get((r["model"], r["method"], r["framework"], r["mb"]))
        twin_txt, delta_txt = "", ""
        if twin:
            twin_err = pct(twin["error"]) if twin["measured"] is not None else ("OOM predicted" if twin["predicted_oom"] else "OOM missed")
            twin_txt = f"{fmt(twin['measured'])} / {twin['estimate']:.2f} / {twin_err}"
            if twin["measured"] is not None and r["measured"] is not None:
                delta_txt = f"{r['measured'] - twin['measured']:+.2f} / {r['estimate'] - twin['estimate']:+.2f}"
        measured = fmt(r["measured"], none="OOM (> 80 GB)")
        err = (
            pct(r["error"])
            if not r["oom"]
            else ("OOM predicted" if r["predicted_oom"] else f"OOM missed (device {r['est'].device_bytes / GIB:.1f} GiB)")
        )
        lines.append(
            f"| {r['row']} | {r['model']} | {r['method']} | {r['framework']} | {r['mb']} | {measured} | {r['estimate']:.2f} | {err} | {r['phase']} | {twin_txt} | {delta_txt} |"
        )
    errors = [r["error"] for r in two if r["error"] is not None]
    twin_errors = [t["error"] for r in two if (t := one.get((r["model"], r["method"], r["framework"], r["mb"]))) and t["error"] is not None]
    ooms = [r for r in two if r["oom"]]
    lines += [
        "",
        "## Summary",
        "",
        f"- 2-GPU rows with a measured peak: {len(errors)}; median |error| {statistics.median(abs(e) for e in errors) * 100:.1f} %, "
        f"mean error {statistics.mean(errors) * 100:+.1f} %, worst {max(errors, key=abs) * 100:+.0f} %.",
        f"- Their 1-GPU twins: median |error| {statistics.median(abs(e) for e in twin_errors) * 100:.1f} % over {len(twin_errors)} rows.",
        f"- OOM rows (the run failed on 80 GB): {len(ooms)}; predicted as not fitting: {sum(r['predicted_oom'] for r in ooms)}.",
    ]
    for method in ("full", "lora", "qlora"):
        errs = [r["error"] for r in two if r["method"] == method and r["error"] is not None]
        if errs:
            lines.append(f"- {method}: {', '.join(pct(e) for e in errs)}")
    lines.append("- Rows left out (2-GPU): " + "; ".join(f"{n} x {why}" for why, n in sorted(skipped.items())) + ".")
    lines += ["", "## Where the remaining error comes from", ""] + explain(two, one)
    return "\n".join(lines) + "\n"


def explain(two: list[dict], one: dict) -> list[str]:
    out = []
    full = next((r for r in two if r["method"] == "full" and r["model"].startswith("Mistral") and r["measured"]), None)
    if full:
        shard = count_params(spec_for({"model": full["model"]})).total * 2 / 2 / GIB
        step = sum(v.bytes for v in full["est"].phases["optimizer step"]) / GIB
        out.append(
            f"1. **Full fine-tuning: the optimizer step, not FSDP.** Mistral-7B full on 2 GPUs measures {full['measured']:.3f} GiB at "
            f"micro-batch 2 and 4 alike: the peak does not depend on activations. One GPU's shard of the bf16 weights is "
            f"{shard:.2f} GiB; weights + gradients + two AdamW states are 4 shards = {4 * shard:.2f} GiB, which the estimate's "
            f"optimizer-step phase reproduces ({step:.2f} GiB; with one more shard {step + shard:.2f} GiB, "
            f"{pct((step + shard) / full['measured'] - 1)}). The measured figure is 5 shards ({5 * shard:.2f} GiB): the "
            "benchmark's `adamw_torch` is torch's foreach AdamW, whose `_foreach_sqrt` of exp_avg_sq allocates one more "
            "parameter-sized tensor. The estimator prices the fused AdamW (`adamw_torch_fused`, transformers' default since "
            "torch 2.8) without that temporary; the 1-GPU rows show the same signature (5 x 13.49 GiB = 67.46 GiB). So "
            "the sharding itself is exact here and the residual belongs to the single-GPU optimizer term."
        )
    lora = [(r, one.get((r["model"], r["method"], r["framework"], r["mb"]))) for r in two if r["method"] == "lora" and r["measured"]]
    pairs = [(r, tw) for r, tw in lora if tw and tw["measured"]]
    if pairs:
        r, tw = pairs[0]
        dm, de = r["measured"] - tw["measured"], r["estimate"] - tw["estimate"]
        layer = (count_params(spec_for(r)).total - 2 * 32000 * 4096) / 32 * 2 / GIB
        out.append(
            f"2. **LoRA: most of the error is the single-GPU model's.** {r['model']} LoRA at micro-batch {r['mb']}: 1 GPU "
            f"{pct(tw['error'])}, 2 GPUs {pct(r['error'])}. Going to 2 GPUs saves {-dm:.2f} GiB measured and {-de:.2f} GiB "
            f"estimated: the estimate credits FSDP with {abs(dm - de):.2f} GiB too much, about {abs(dm - de) / layer:.1f} "
            f"decoder layers ({layer:.2f} GiB each in bf16). These rows cannot tell the candidates apart: a second unit "
            "gathered in forward (limit_all_gathers allows two all-gathers in flight), peft's wrap policy giving every "
            "LoRA module its own unit, transient copies around all-gather and reduce-scatter. The estimate keeps the "
            "documented working set (root + 1 layer in forward, root + 2 layers in backward); the same-size Mixtral "
            "LoRA rows land within 2 %."
        )
    qlora = [r for r in two if r["method"] == "qlora" and r["measured"]]
    if qlora:
        mistral = [r for r in qlora if r["model"].startswith("Mistral")]
        llama = [r for r in qlora if r["model"].startswith("Llama")]
        text = (
            "3. **QLoRA: dtype rules first.** FSDP1 flattens each unit into one dtype, so under FSDP the non-quantised "
            "weights stay bf16 (peft's fp32 upcast is impossible); the estimator prices QLoRA under FSDP that way"
            + upcast_evidence(one)
            + ". 2-GPU Mistral rows: "
            + ", ".join(f"{r['row']} {pct(r['error'])}" for r in mistral)
            + ". Mixtral rows are priced with experts as quantised nn.Linear modules (the runs predate transformers 5)."
        )
        if llama:
            r = llama[0]
            spec = spec_for(r)
            full4 = estimate(spec, Setup(adaptation="qlora", kbit_upcast=False, loss="full")).phases["forward"][0].bytes / GIB
            text += (
                f" Llama-2-70B QLoRA is the outlier: {r['measured']:.2f} GiB measured vs {r['estimate']:.2f} GiB at micro-batch 2, "
                "and the micro-batch-4 run ran out of memory (nvidia-smi at 79.5 GiB) where the estimate sees room. The "
                "same framework's 1-GPU micro-batch-4 run (r0299) measured 63.45 GiB, 3 % above the 1-GPU estimate: one "
                "GPU holding the whole 4-bit model fits what two FSDP GPUs holding half each could not, so the gap is an "
                "FSDP-and-QLoRA effect of that stack, not the per-GPU step. It grows with the batch: about 11 GiB "
                "allocated (15 GiB on the card) at micro-batch 2 and at least 29 GiB on the card at 4, roughly one more "
                "bf16 hidden state per layer and sequence (5 GiB per 4096-token sequence for this model), whereas the "
                "Mistral and Mixtral rows show about 0.5 GiB per sequence. A load-time artifact cannot explain it (the "
                f"whole 4-bit model is {full4:.1f} GiB, and a load peak does not grow with the batch). The rows do not "
                "say more (activation checkpointing through FSDP's wrapper or through transformers, caching-allocator "
                "pools of FSDP's all-gather stream); settling it needs a 2-GPU run, which this project could not get."
            )
        out.append(text)
    out.append(
        "4. **What the FSDP terms themselves add.** Per GPU the estimate shards weights, gradients and optimizer "
        "states 1/N, adds the gathered root unit (embeddings and head: FSDP1 does not reshard the root after forward), "
        "one decoder layer in forward and two in backward (BACKWARD_PRE), and one unit's unsharded gradients before "
        "its reduce-scatter. Activations, logits and the loss terms are per GPU and not sharded. NCCL buffers are "
        "allocated outside PyTorch and are not in max_memory_allocated."
    )
    return out


def upcast_evidence(one: dict) -> str:
    """The fms plugin's 1-GPU QLoRA rows (no upcast in that framework) priced with and without the upcast."""
    twins = [t for key, t in one.items() if key[2] == "fms bnb plugin" and t["measured"] and key[0].startswith("Mistral")]
    if not twins:
        return ""
    t = twins[0]
    spec = spec_for({"model": t["model"]})
    with_upcast = (
        estimate(
            spec,
            Setup(
                adaptation="qlora",
                micro_batch=t["mb"],
                seq_len=4096,
                grad_ckpt=True,
                attention="flash",
                lora_r=16,
                lora_alpha=16,
                lora_targets="attention",
                kbit_upcast=True,
                loss="full",
            ),
        ).peak_allocated
        / GIB
    )
    return (
        f" (the same rule fits the fms plugin's 1-GPU rows, which do not upcast: {t['row']} is {pct(t['error'])} priced "
        f"without the upcast and {pct(with_upcast / t['measured'] - 1)} with it)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stdout", action="store_true", help="print the report instead of writing docs/parallel-accuracy.md")
    args = p.parse_args(argv)
    results, skipped = load()
    text = render(results, skipped)
    if args.stdout:
        print(text)
    else:
        OUT.parent.mkdir(exist_ok=True)
        OUT.write_text(text)
        print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
