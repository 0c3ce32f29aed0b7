"""What a plan keeps free on the card besides the estimate, and where paged optimizer states live.

A plan "fits" only when the on-card estimate plus a margin stays within the card:

- estimate error: the estimate's own measured error for its class (`Estimate.band`, the upper end of the
  on-card figure measured for set-ups like this one, estimators/band*.py). Without a band (an older estimate)
  the trace target's worst case, estimators/accuracy.py TRACE_MAX (8 %), stands in.
- the display: a consumer card (`Gpu.consumer`, a GeForce card that usually also drives the desktop) loses
  memory to the X server / Wayland compositor / Windows DWM and the applications drawing on it. nvidia-smi on a
  GNOME or KDE desktop typically lists a few hundred MiB of such processes (Xorg or gnome-shell, a browser with
  hardware acceleration); DISPLAY_RESERVE keeps 512 MiB, the upper end of "a few hundred" rounded to a power
  of two. This is the advisor's judgement, not a measurement: a headless card can pass `--margin 0`.

`--margin` replaces both with the user's figure: "1.5GiB" / "1.5" (GiB), "800MiB", or "10%" (of the card).
Pure Python; no torch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .dtypes import GIB
from .errors import EstimateError

MIB = 1 << 20
DISPLAY_RESERVE = 512 * MIB  # advisor's judgement, see the module docstring
FALLBACK_ERROR = 0.08  # estimators/accuracy.py TRACE_MAX: the worst traced error the estimator is held to


def band_error_bytes(est) -> int:
    """How far the upper end of the estimate's measured error band lies above its on-card figure."""
    band = getattr(est, "band", None)
    high = getattr(band, "high_bytes", None) if band is not None else None
    if high is None:
        return int(math.ceil(est.device_bytes * FALLBACK_ERROR))
    return max(0, int(high) - int(est.device_bytes))


@dataclass(frozen=True)
class Kept:
    """The margin kept for one estimate on one card, by part (bytes)."""

    error: int
    display: int
    user: int | None  # the --margin figure when given (it replaces error and display)
    how: str  # "auto" | the user's text

    @property
    def total(self) -> int:
        return self.user if self.user is not None else self.error + self.display

    def describe(self, lang: str = "en") -> str:
        """'1.6 GiB margin kept for estimate error (1.1) and the display (0.5)'."""
        g = self.total / GIB
        if self.user is not None:
            if lang == "ko":
                return f"--margin {self.how}로 요청한 여유분 {g:.1f} GiB 확보 후"
            return f"after the {g:.1f} GiB margin you asked for (--margin {self.how})"
        if self.display:
            if lang == "ko":
                return f"추정 오차({self.error / GIB:.1f})와 디스플레이({self.display / GIB:.1f})를 위한 여유분 {g:.1f} GiB 확보 후"
            return f"after the {g:.1f} GiB margin kept for estimate error ({self.error / GIB:.1f}) and the display ({self.display / GIB:.1f})"
        if lang == "ko":
            return f"추정 오차를 위한 여유분 {g:.1f} GiB 확보 후"
        return f"after the {g:.1f} GiB margin kept for estimate error"


@dataclass(frozen=True)
class Margin:
    """How much to keep free on a card: automatic (estimate error + display on a consumer card) or the user's."""

    display: bool = False  # the card drives a display (Gpu.consumer)
    user_bytes: float | None = None  # --margin as a size
    user_fraction: float | None = None  # --margin as a share of the card
    text: str = "auto"

    def kept(self, est, capacity: float) -> Kept:
        user = None
        if self.user_bytes is not None:
            user = int(self.user_bytes)
        elif self.user_fraction is not None:
            user = int(capacity * self.user_fraction)
        error = band_error_bytes(est) if user is None else 0
        display = DISPLAY_RESERVE if (self.display and user is None) else 0
        return Kept(error, display, user, self.text)

    def spare(self, est, capacity: float) -> float:
        """Bytes left on the card after the estimate and the margin (negative: it does not fit)."""
        return capacity - est.device_bytes - self.kept(est, capacity).total

    def fits(self, est, capacity: float) -> bool:
        return self.spare(est, capacity) >= 0

    def verdict(self, est, capacity: float, lang: str = "en") -> str:
        """'fits with 2.1 GiB to spare, after the 1.6 GiB margin kept for estimate error and the display'."""
        kept = self.kept(est, capacity)
        spare = self.spare(est, capacity)
        if spare >= 0:
            if lang == "ko":
                return f"들어감: {kept.describe('ko')} {spare / GIB:.1f} GiB 남음"
            return f"fits with {spare / GIB:.1f} GiB to spare, {kept.describe()}"
        if lang == "ko":
            return f"들어가지 않음: {kept.describe('ko')} {-spare / GIB:.1f} GiB 초과"
        return f"does not fit: {-spare / GIB:.1f} GiB over, {kept.describe()}"


NO_MARGIN = Margin(user_bytes=0, text="0")

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(%|gib|gb|g|mib|mb|m)?\s*$", re.IGNORECASE)


def parse_margin(text: str | None, display: bool = False) -> Margin:
    """`--margin`: None/"auto" = the automatic margin; "1.5GiB", "1.5" (GiB), "800MiB", "10%" (of the card).
    GB and MB are read as GiB and MiB (people write 2GB for a margin; the difference is 7 %)."""
    if text is None or str(text).strip().lower() in ("", "auto"):
        return Margin(display=display)
    m = _SIZE.match(str(text))
    if not m:
        raise EstimateError(f"--margin: expected a size like 1.5GiB, 800MiB or 10%, or 'auto'; got {str(text)[:40]!r}")
    value, unit = float(m.group(1)), (m.group(2) or "gib").lower()
    if not math.isfinite(value):
        raise EstimateError(f"--margin: {str(text)[:40]!r} is not a finite size")
    if unit == "%":
        if value >= 100:
            raise EstimateError(f"--margin: {value:g}% would keep the whole card free; use less than 100%")
        return Margin(display=display, user_fraction=value / 100, text=str(text).strip())
    scale = MIB if unit in ("mib", "mb", "m") else GIB
    return Margin(display=display, user_bytes=value * scale, text=str(text).strip())


# ------------------------------------------------------------------------------------------------ paged states
@dataclass(frozen=True)
class Paged:
    """bitsandbytes' paged optimizer states (cudaMallocManaged unified memory, not in the allocated peak): how
    much of them the card's free memory holds and how much pages between host RAM and the card each step."""

    total: int
    on_card: int
    spilled: int
    pcie_gbs: float | None  # host link, GB/s per direction (rules/gpus.toml), for the time it costs

    @property
    def seconds_per_step(self) -> float | None:
        """Paging the spilled part in and back out once per optimizer step over PCIe (a lower bound: page faults
        move 2 MiB at a time and stall the kernels that touch them)."""
        if not self.spilled or not self.pcie_gbs:
            return None
        return 2 * self.spilled / (self.pcie_gbs * 1e9)

    def describe(self, lang: str = "en") -> str:
        g = self.total / GIB
        if lang == "ko":
            head = f"페이지드 옵티마이저 상태 {g:.2f} GiB는 CUDA 통합 메모리(unified memory)에 있어 카드 사용량 수치에 포함되지 않습니다"
            if not self.spilled:
                return head + ": 카드의 남는 메모리에 모두 들어가 페이징이 없습니다"
            cost = f", 스텝당 최소 {self.seconds_per_step:.2f}초" if self.seconds_per_step else ""
            return head + (
                f": 카드에 {self.on_card / GIB:.2f} GiB, 나머지 {self.spilled / GIB:.2f} GiB는 매 옵티마이저 스텝마다 "
                f"PCIe로 호스트 RAM과 오가며 느려집니다{cost}"
            )
        head = f"paged optimizer states: {g:.2f} GiB live in CUDA unified memory, outside the on-card figure"
        if not self.spilled:
            return head + "; the card's free memory holds all of them, so nothing pages"
        cost = f" (at least {self.seconds_per_step:.2f} s per step over PCIe)" if self.seconds_per_step else ""
        return head + (
            f"; the card holds {self.on_card / GIB:.2f} GiB of them and the other {self.spilled / GIB:.2f} GiB page "
            f"between host RAM and the card over PCIe every optimizer step{cost}"
        )


def paged_placement(est, capacity: float, margin: Margin | None = None, pcie_gbs: float | None = None) -> Paged | None:
    """Where `est.paged_bytes` live on this card: the free memory after the estimate (and the margin) holds what it
    can; the rest pages. None when the estimate has no paged states."""
    total = int(getattr(est, "paged_bytes", 0) or 0)
    if not total:
        return None
    keep = margin.kept(est, capacity).total if margin is not None else 0
    free = max(0, int(capacity - est.device_bytes - keep))
    on_card = min(total, free)
    return Paged(total, on_card, total - on_card, pcie_gbs)
