"""Human output of an estimate. Renders the same plain-data dicts that `--json` prints, so the two never disagree.

Each block is a markup string or a TableSpec; on a terminal rich draws them, and when stdout is not one
advisor/plaintext.py writes rich's very characters without importing it (start-up of `advisor estimate | ...`)."""

from __future__ import annotations

import sys
from typing import NamedTuple

from estimators.stacks import stack_line

from . import plaintext


class TableSpec(NamedTuple):
    """A rich Table(*headers, title=title, title_justify="left"); a row of None is add_section()."""

    title: str
    headers: tuple
    rows: list

    def to_rich(self):
        from rich.table import Table

        table = Table(*self.headers, title=self.title, title_justify="left")
        for row in self.rows:
            if row is None:
                table.add_section()
            else:
                table.add_row(*row)
        return table


def _gib(entry: dict) -> str:
    return f"{entry['gib']:.2f}"


def setup_line(setup: dict) -> str:
    parts = [
        f"train={setup['train']}",
        f"method={setup['method']}",
        f"precision={setup['precision']}",
        f"optimizer={setup['optimizer']}",
        f"micro-batch={setup['micro_batch']}",
        f"seq-len={setup['seq_len']}",
        f"grad-ckpt={'on' if setup['grad_ckpt'] else 'off'}",
        f"attention={setup['attention']}",
    ]
    if setup.get("llama_adapter"):  # the prompts replace LoRA's adapters (estimators/adapter_prompt_terms.py)
        parts.append(f"llama-adapter len={setup['adapter_len']} layers={setup['adapter_layers']}")
    elif setup["method"] != "full":
        parts.append(f"lora r={setup['lora_r']} alpha={setup['lora_alpha']} targets={setup['lora_targets']}")
    if setup["method"] == "qlora":
        parts.append(f"{setup['quant_type']}{' double-quant' if setup['double_quant'] else ''}")
    if setup["gpus"] * setup["nodes"] > 1:
        parts.append(f"gpus={setup['gpus']}x{setup['nodes']} parallel={setup['parallel']}")
    if setup.get("loss", "fused") != "fused":  # the HF causal-LM loss instead of TRL's fused head
        parts.append(f"loss={setup['loss']}")
    return "  ".join(parts)


def estimate_blocks(data: dict) -> list:
    """The blocks of one estimate: header, terms, peaks, GPUs (markup strings and TableSpecs)."""
    model, peak = data["model"], data["peak"]
    active = f", {model['params_active']:,} active" if model["params_active"] != model["params_total"] else ""
    header = (
        f"[bold]{model['name']}[/bold]: {model['params_total']:,} parameters{active}, {model['trainable_params']:,} trainable\n"
        f"[dim]model from {model['resolved_from']}\n{setup_line(data['setup'])}[/dim]"
        + (f"\n[dim]{stack_line(data['stack'])}[/dim]" if data.get("stack") else "")
    )
    rows: list[tuple[str, ...] | None] = [(term["name"], term["category"], _gib(term), term["note"]) for term in data["terms"]]
    rows += [
        None,
        ("[bold]allocated peak[/bold]", "", f"[bold]{_gib(peak['allocated'])}[/bold]", "torch max_memory_allocated"),
        ("reserved peak", "", _gib(peak["reserved"]), peak["reserved_model"]),
        ("+ CUDA context", "", _gib(peak["cuda_context"]), peak.get("context_model", "outside PyTorch's allocator")),
        ("[bold]on the card[/bold]", "", f"[bold]{_gib(peak['device'])}[/bold]", "what nvidia-smi shows"),
    ]
    out = [header, TableSpec(f"memory at the peak ({peak['phase']})", ("term", "category", "GiB", "what"), rows)]
    if peak.get("band"):
        out.append(band_line(peak))
    if data.get("host_offload", {}).get("bytes"):
        out.append(f"[dim]CPU offload: {_gib(data['host_offload'])} GiB of host RAM per node (not on the GPU)[/dim]")
    if data.get("memory_scope", "single GPU") != "single GPU":
        out.append(f"[dim]figures are {data['memory_scope']}[/dim]")
    if data["paged_optimizer_states"]["bytes"]:
        out.append(
            f"[dim]paged optimizer states: {_gib(data['paged_optimizer_states'])} GiB in CUDA unified memory (can spill to host RAM; not in the allocated peak)[/dim]"
        )
    out.append(fits_spec(data["fits_on"]))
    if data["gpu"]:
        out.append(verdict_line(data["gpu"]))
    return out


def estimate_tables(data: dict) -> list:
    """The renderables of one estimate for rich: header, terms, peaks, GPUs."""
    return [block.to_rich() if isinstance(block, TableSpec) else block for block in estimate_blocks(data)]


def band_line(peak: dict) -> str:
    """ "7.4 GiB on the card (7.1–8.2 on real GPUs)" and where the range comes from."""
    band = peak["band"]
    low, high = band["low"]["gib"], band["high"]["gib"]
    return (
        f"[bold]{peak['device']['gib']:.1f} GiB on the card ({low:.1f}–{high:.1f} on real GPUs)[/bold]\n"
        f"[dim]range: {band['n_rows']} published runs of class {band['class']} measured "
        f"{band['ratios']['low']:.2f}-{band['ratios']['high']:.2f} x the estimate (10th-90th percentile); "
        f"'fits' below uses the upper end, {high:.2f} GiB" + (f"; {band['asked_class']} has too few rows" if band["fallback"] else "") + "[/dim]"
    )


def fits_spec(rows: list[dict]) -> TableSpec:
    marks = [("[green]yes[/green]" if g["fits"] else "[red]no[/red]") for g in rows]
    return TableSpec(
        "fits on one of (judged on the band's upper end)",
        ("GPU", "GiB", "fits", "headroom GiB"),
        [(g["name"], f"{g['memory_gib']:.1f}", mark, f"{g['headroom_gib']:+.1f}") for g, mark in zip(rows, marks, strict=False)],
    )


def verdict_line(g: dict) -> str:
    if g["fits"]:
        return f"[green]fits[/green] on {g['name']} with {g['headroom_gib']:.1f} GiB to spare above the band's upper end"
    return f"[red]does not fit[/red] on {g['name']}: {-g['headroom_gib']:.1f} GiB over its {g['memory_gib']:.1f} GiB"


def plain_lines(blocks: list, width: int) -> list[str]:
    """The lines rich prints for `blocks` on a stream that is not a terminal (plaintext.Unsupported if unsure)."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, TableSpec):
            out += plaintext.table(block.title, block.headers, block.rows, width)
        elif hasattr(block, "plain_lines"):  # another table spec that lays itself out (advisor/compact_table.py)
            out += block.plain_lines(width)
        else:
            out += plaintext.paragraph(block, width)
    return out


def print_blocks(blocks: list, console=None, highlight: bool = True) -> None:
    """Print markup strings and table specs (TableSpec, compact_table.CompactSpec): as plain text, without rich,
    when stdout is not a terminal (where rich's highlighting of numbers and quotes would change no character)."""
    if console is None:
        width = plaintext.console_width()
        if plaintext.wanted() and width >= plaintext.MIN_WIDTH:
            try:
                lines = plain_lines(blocks, width)
            except plaintext.Unsupported:  # a character or tag only rich knows how to lay out
                pass
            else:
                sys.stdout.write("".join(line + "\n" for line in lines))
                return
        from rich.console import Console

        console = Console()
    for block in blocks:
        console.print(block.to_rich() if hasattr(block, "to_rich") else block, highlight=highlight)
