"""The terminal view of a check (the dict --json prints, so the two never disagree)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

BAR = 40  # histogram bar width, characters


def _n(x: int) -> str:
    return f"{x:,}"


def renderables(data: dict) -> list:
    out: list = []
    src, rows = data["source"], data["rows"]
    sample = f" (first {rows['sample']:,} rows only: --sample)" if rows["sample"] and not rows["complete"] else ""
    out.append(
        f"[bold]{src['path']}[/bold]: {src['format']}, {src['files']} file(s), {src['bytes']:,} bytes"
        + (f", split {src['split']}" if src["split"] else "")
        + f"\n[dim]{src['how']}[/dim]"
    )
    out.append(
        f"rows: {_n(rows['read'])} read{sample}, {_n(rows['usable'])} usable, {_n(rows['with_errors'])} with errors, "
        f"{_n(rows['with_warnings'])} with warnings only"
    )
    t = data.get("type")
    if t:
        out.append(f"[bold]type[/bold]: {t['label']}")
        mapping = Table("TRL column", "from", title="column mapping", title_justify="left")
        for trl, col in t["mapping"].items():
            mapping.add_row(trl, col)
        out.append(mapping)
        if t["extra_columns"]:
            out.append(f"[dim]other columns (kept, unused by the mapping): {', '.join(t['extra_columns'])}[/dim]")
        for note in t["notes"]:
            out.append(f"[dim]note: {note}[/dim]")
        kinds = Table("training", "can feed", "how / why not", title="what it can train", title_justify="left")
        for kind, v in data["kinds"].items():
            kinds.add_row(kind, "[green]yes[/green]" if v["ok"] else "[red]no[/red]", v["how"])
        out.append(kinds)
    if data["problems"]:
        probs = Table("problem", "severity", "rows", "first rows", "example", title="problems (nothing was changed)", title_justify="left")
        for p in data["problems"]:
            sev = "[red]error[/red]" if p["severity"] == "error" else "[yellow]warning[/yellow]"
            probs.add_row(p["kind"], sev, _n(p["count"]), ", ".join(map(str, p["first_rows"])), p["example"] or p["what"])
        out.append(probs)
    for note in data.get("notes", []):
        out.append(f"[dim]note: {note}[/dim]")
    tok = data.get("tokens")
    if tok:
        c = tok["counter"]
        out.append(f"[bold]tokens[/bold] ({c['name']}): [dim]{c['note']}[/dim]")
        lens = Table("tokens", "p50", "p90", "p99", "max", "mean", title="token lengths per row", title_justify="left")
        for name, s in {**tok["fields"], "sequence": tok["sequence"]}.items():
            if name == "total":
                continue
            lens.add_row(name, _n(s["p50"]), _n(s["p90"]), _n(s["p99"]), _n(s["max"]), f"{s['mean']:,.1f}")
        out.append(lens)
        out.append(histogram_text(tok["histogram"], tok["seq_len"]))
        un, pk = tok["unpacked"], tok["packed"]
        out.append(
            f"at --seq-len {tok['seq_len']:,}: {_n(tok['truncated_rows'])} rows cut ({tok['truncated_share']:.2%}); "
            f"{_n(tok['tokens_per_epoch'])} tokens per epoch, {_n(tok['supervised_tokens_per_epoch'])} supervised\n"
            f"unpacked (micro-batch {tok['micro_batch']}): {_n(un['sequences'])} sequences, {_n(un['padding_tokens'])} padding tokens ({un['padding_share']:.1%})\n"
            f"packed: {_n(pk['sequences'])} sequences of {tok['seq_len']:,} ({pk['fill']:.1%} full), "
            f"{_n(un['padding_tokens'])} padding tokens avoided"
        )
    rec = data.get("recommendation")
    if rec:
        cap = f", capped at the model's {rec['max_positions']:,} positions" if rec["capped_at_model"] else ""
        out.append(
            f"[bold]recommended[/bold]: --seq-len {rec['seq_len']:,} (keeps {rec['rows_whole']:.1%} of rows whole; "
            f"{rec['keep']:.0%} need ≤ {rec['needed']:,} tokens, {rec['rounding']}{cap}); "
            f"packing {'on' if rec['packing'] else 'off'} for {rec['kind']}: {rec['packing_reason']}"
        )
    mem = data.get("memory")
    if mem:
        for name, label in (("longest_unpacked", "longest batch, unpacked"), ("packed", "packed")):
            e = mem[name]
            fit = ""
            if "fits" in e:
                fit = (
                    f" [green]fits[/green] {mem['gpu']} ({e['headroom_gib']:+.2f} GiB)"
                    if e["fits"]
                    else f" [red]does not fit[/red] {mem['gpu']} ({e['headroom_gib']:+.2f} GiB)"
                )
            band = f" ({e['band_gib'][0]:.2f}-{e['band_gib'][1]:.2f} on real GPUs)" if e.get("band_gib") else ""
            out.append(f"memory ({mem['model']}, {label}: micro-batch {mem['micro_batch']} × {e['seq_len']:,} tokens): {e['gib']:.2f} GiB{band}{fit}")
    if data.get("time") and "skipped" in data["time"]:
        out.append(f"[dim]time: {data['time']['skipped']}[/dim]")
    elif data.get("time"):
        from estimators.time_report import time_lines

        out.extend(time_lines(data["time"]))
        out.append(f"  [dim]{data['time']['from_data']}[/dim]")
    color = "green" if data["usable"] else "red"
    out.append(f"[bold {color}]{data['verdict']}[/bold {color}]")
    return out


def histogram_text(buckets: list[dict], seq_len: int) -> str:
    if not buckets:
        return ""
    top = max(b["rows"] for b in buckets)
    lines = ["sequence tokens per row:"]
    for b in buckets:
        hi = f"{b['to']:,}" if b["to"] else "more"
        bar = "█" * max(1 if b["rows"] else 0, round(BAR * b["rows"] / top))
        cut = "  ← cut at --seq-len" if b["to"] and b["from"] < seq_len < b["to"] else ""
        lines.append(f"  {b['from']:>9,} – {hi:>9} │{bar:<{BAR}} {b['rows']:,}{cut}")
    return "\n".join(lines)


def print_check(data: dict, console: Console | None = None) -> None:
    console = console or Console()
    for r in renderables(data):
        console.print(r)
