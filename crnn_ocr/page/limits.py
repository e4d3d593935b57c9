"""What one input may cost: bytes read, decoded pixels, lines read and seconds spent (docs/limits.md).

`ocr recognize --max-bytes/--max-pixels/--max-lines/--timeout`, `crnn_ocr.load(limits=...)` and the server take a
`Limits`; a file past `max_bytes` or `max_pixels` is refused with one error line, a page past `max_lines` or
`seconds` says so in a warning and returns what it has read.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crnn_ocr.image.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

DEFAULT_MAX_LINES = 2000  # a dense newspaper page at 300 dpi holds about 600 lines
DEFAULT_SECONDS = 120.0  # per image or PDF page; the slowest real page measured reads in a few seconds
RECOGNITION_SLICE = 128  # line pieces recognised between two looks at the clock


@dataclass(frozen=True)
class Limits:
    """Per-input limits; 0 turns `max_lines` or `seconds` off."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_lines: int = DEFAULT_MAX_LINES
    seconds: float = DEFAULT_SECONDS

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_pixels < 1:
            raise ValueError("max_bytes and max_pixels must be positive")
        if self.max_lines < 0 or not self.seconds >= 0:
            raise ValueError("max_lines and seconds must be 0 (no limit) or positive")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str, binary: bool = False) -> int:
    """'120M', '1.5G', '120000000' -> a count: decimal multiples (1M = 1,000,000: pixels), or `binary` ones
    (1M = 1,048,576: bytes, as `ls -h` and most tools count them)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (e.g. 200M, 1.5G, 120000000)")
    value = int(float(match.group(1)) * (1024 if binary else 1000) ** _POWERS[match.group(2).lower()])
    if value < 1:
        raise ValueError(f"not a positive size: {text!r}")
    return value


class Clocks:
    """Seconds spent on each image of a batch, charged as work on it is done; an image over the limit gets no
    more work."""

    def __init__(self, count: int, limit: float, now: Callable[[], float] | None = None):
        self.spent = [0.0] * count
        self.limit = limit
        self.now = now or time.perf_counter

    def over(self, index: int) -> bool:
        return bool(self.limit) and self.spent[index] >= self.limit

    def charge(self, owners: Sequence[int], seconds: float) -> None:
        """Share `seconds` among the images that owned the work (one entry per piece of work)."""
        if owners:
            for owner in owners:
                self.spent[owner] += seconds / len(owners)

    def timed(self, index: int, work: Callable[[], object]):
        start = self.now()
        try:
            return work()
        finally:
            self.spent[index] += self.now() - start


def recognize_within(recognize: Callable[[list], list], arrays: Sequence, owners: Sequence[int], clocks: Clocks,
                     slice_size: int | None = None) -> list:
    """`recognize(arrays)` in slices, skipping (None) the pieces of images whose time is up."""
    slice_size = slice_size or RECOGNITION_SLICE
    if not clocks.limit:
        return list(recognize(list(arrays))) if len(arrays) else []
    predictions: list = [None] * len(arrays)
    start = 0
    while start < len(arrays):
        chosen = []
        k = start
        while k < len(arrays) and len(chosen) < slice_size:
            if not clocks.over(owners[k]):
                chosen.append(k)
            k += 1
        start = k
        if not chosen:
            continue
        began = clocks.now()
        for i, prediction in zip(chosen, recognize([arrays[i] for i in chosen])):
            predictions[i] = prediction
        clocks.charge([owners[i] for i in chosen], clocks.now() - began)
    return predictions
