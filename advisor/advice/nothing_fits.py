"""When nothing fits: the warning that says so with the least memory-hungry attempt, and what would fit instead:
more of the same GPU, the smallest larger card in the table, or a smaller catalog model."""

from __future__ import annotations

from estimators.gpus import Gpu, gpus

from ..messages import Pair, both, join
from .context import Context
from .fitting import MIN_SEQ, Candidate, Search, fit_candidate
from .hardware import Hw
from .rows import adaptation_name
from .summary import gib


def _smallest_card(ctx: Context, pipeline: str, order: tuple[str, ...]) -> tuple[Gpu, Candidate] | None:
    for gpu in sorted(gpus().values(), key=lambda g: g.memory_gib):
        if gpu.memory_gib <= ctx.hw.gpu.memory_gib:
            continue
        hw = Hw(gpu, ctx.hw.count, ctx.hw.margin)
        for a in order:
            cand = fit_candidate(ctx.spec, pipeline, a, hw, ctx.seq_len)
            if cand.fits:
                return gpu, cand
    return None


def _more_gpus(ctx: Context, pipeline: str, order: tuple[str, ...]) -> tuple[int, Candidate] | None:
    for n in (2, 4, 8):
        if n <= ctx.hw.count:
            continue
        hw = Hw(ctx.hw.gpu, n, ctx.hw.margin)
        for a in order:
            cand = fit_candidate(ctx.spec, pipeline, a, hw, ctx.seq_len)
            if cand.fits:
                return n, cand
    return None


def _smaller_models(ctx: Context, pipeline: str, order: tuple[str, ...], limit: int = 2) -> list[tuple[str, str, Candidate]]:
    from estimators.catalog import catalog, shorthands
    from estimators.params import count_params

    own = count_params(ctx.spec).total
    specs = catalog()
    sized = sorted(((count_params(specs[key]).total, short, key) for short, key in shorthands().items()), reverse=True)
    out = []
    for params, short, key in sized:
        if params >= own:
            continue
        for a in order:
            cand = fit_candidate(specs[key], pipeline, a, ctx.hw, min(ctx.seq_len, specs[key].max_positions))
            if cand.fits:
                out.append((short, specs[key].name, cand))
                break
        if len(out) == limit:
            break
    return out


def nothing_fits_warnings(ctx: Context, pipeline: str, order: tuple[str, ...], found: Search) -> list[Pair]:
    c = found.chosen
    out = [
        both(
            "warn.nothing_fits", adaptation=adaptation_name(c.adaptation), gib=gib(c.base_bytes), stage=c.peak.name, gpu=ctx.hw.label, min_seq=MIN_SEQ
        )
    ]
    more = _more_gpus(ctx, pipeline, order)
    if more:
        n, cand = more
        out.append(both("warn.more_gpus", n=n, gpu=ctx.hw.gpu.name, adaptation=adaptation_name(cand.adaptation), gib=gib(cand.base_bytes)))
    card = _smallest_card(ctx, pipeline, order)
    if card:
        gpu, cand = card
        out.append(
            both(
                "warn.larger_card",
                count=ctx.hw.count,
                gpu=gpu.name,
                memory=gpu.memory_gib,
                adaptation=adaptation_name(cand.adaptation),
                gib=gib(cand.base_bytes),
                gpu_id=gpu.id,
            )
        )
    smaller = _smaller_models(ctx, pipeline, order)
    if smaller:
        listed = join(
            [
                both("part.smaller_model", short=short, name=name, adaptation=adaptation_name(c.adaptation), gib=gib(c.base_bytes))
                for short, name, c in smaller
            ],
            sep=", ",
        )
        out.append(both("warn.smaller_models", gpu=ctx.hw.label, models=listed, first=smaller[0][0]))
    if len(out) == 1:
        out.append(both("warn.nothing_helps"))
    return out
