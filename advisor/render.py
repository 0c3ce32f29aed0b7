"""Human output with rich. Renders the same plain-data dicts that `--json` prints, so the two never disagree."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from estimators.stacks import stack_line


def _gib(entry: dict) -> str:
    return f"{entry['gib']:.2f}"


def setup_line(setup: dict) -> str:
    parts = [
        f"train={setup['train']}", f"method={setup['method']}", f"precision={setup['precision']}",
        f"optimizer={setup['optimizer']}", f"micro-batch={setup['micro_batch']}", f"seq-len={setup['seq_len']}",
        f"grad-ckpt={'on' if setup['grad_ckpt'] else 'off'}", f"attention={setup['attention']}",
    ]
    if setup["method"] != "full":
        parts.append(f"lora r={setup['lora_r']} alpha={setup['lora_alpha']} targets={setup['lora_targets']}")
    if setup["method"] == "qlora":
        parts.append(f"{setup['quant_type']}{' double-quant' if setup['double_quant'] else ''}")
    if setup["gpus"] * setup["nodes"] > 1:
        parts.append(f"gpus={setup['gpus']}x{setup['nodes']} parallel={setup['parallel']}")
    if setup.get("loss", "fused") != "fused":  # the HF causal-LM loss instead of TRL's fused head
        parts.append(f"loss={setup['loss']}")
    return "  ".join(parts)


def estimate_tables(data: dict) -> list:
    """The renderables of one estimate: header, terms, peaks, GPUs."""
    model, peak = data["model"], data["peak"]
    active = f", {model['params_active']:,} active" if model["params_active"] != model["params_total"] else ""
    header = (
        f"[bold]{model['name']}[/bold]: {model['params_total']:,} parameters{active}, {model['trainable_params']:,} trainable\n"
        f"[dim]model from {model['resolved_from']}\n{setup_line(data['setup'])}[/dim]"
        + (f"\n[dim]{stack_line(data['stack'])}[/dim]" if data.get("stack") else "")
    )
    terms = Table("term", "category", "GiB", "what", title=f"memory at the peak ({peak['phase']})", title_justify="left")
    for term in data["terms"]:
        terms.add_row(term["name"], term["category"], _gib(term), term["note"])
    terms.add_section()
    terms.add_row("[bold]allocated peak[/bold]", "", f"[bold]{_gib(peak['allocated'])}[/bold]", "torch max_memory_allocated")
    terms.add_row("reserved peak", "", _gib(peak["reserved"]), peak["reserved_model"])
    terms.add_row("+ CUDA context", "", _gib(peak["cuda_context"]), peak.get("context_model", "outside PyTorch's allocator"))
    terms.add_row("[bold]on the card[/bold]", "", f"[bold]{_gib(peak['device'])}[/bold]", "what nvidia-smi shows")
    out = [header, terms]
    if peak.get("band"):
        out.append(band_line(peak))
    if data.get("host_offload", {}).get("bytes"):
        out.append(f"[dim]CPU offload: {_gib(data['host_offload'])} GiB of host RAM per node (not on the GPU)[/dim]")
    if data.get("memory_scope", "single GPU") != "single GPU":
        out.append(f"[dim]figures are {data['memory_scope']}[/dim]")
    if data["paged_optimizer_states"]["bytes"]:
        out.append(f"[dim]paged optimizer states: {_gib(data['paged_optimizer_states'])} GiB in CUDA unified memory (can spill to host RAM; not in the allocated peak)[/dim]")
    out.append(fits_table(data["fits_on"]))
    if data["gpu"]:
        out.append(verdict_line(data["gpu"]))
    return out


def band_line(peak: dict) -> str:
    """"7.4 GiB on the card (7.1–8.2 on real GPUs)" and where the range comes from."""
    band = peak["band"]
    low, high = band["low"]["gib"], band["high"]["gib"]
    return (f"[bold]{peak['device']['gib']:.1f} GiB on the card ({low:.1f}–{high:.1f} on real GPUs)[/bold]\n"
            f"[dim]range: {band['n_rows']} published runs of class {band['class']} measured "
            f"{band['ratios']['low']:.2f}-{band['ratios']['high']:.2f} x the estimate (10th-90th percentile); "
            f"'fits' below uses the upper end, {high:.2f} GiB"
            + (f"; {band['asked_class']} has too few rows" if band["fallback"] else "") + "[/dim]")


def fits_table(rows: list[dict]) -> Table:
    table = Table("GPU", "GiB", "fits", "headroom GiB", title="fits on one of (judged on the band's upper end)", title_justify="left")
    for g in rows:
        mark = "[green]yes[/green]" if g["fits"] else "[red]no[/red]"
        table.add_row(g["name"], f"{g['memory_gib']:.1f}", mark, f"{g['headroom_gib']:+.1f}")
    return table


def verdict_line(g: dict) -> str:
    if g["fits"]:
        return f"[green]fits[/green] on {g['name']} with {g['headroom_gib']:.1f} GiB to spare above the band's upper end"
    return f"[red]does not fit[/red] on {g['name']}: {-g['headroom_gib']:.1f} GiB over its {g['memory_gib']:.1f} GiB"


def print_estimate(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    for item in estimate_tables(data):
        console.print(item)
