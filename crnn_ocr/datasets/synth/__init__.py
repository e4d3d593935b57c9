"""Synthetic labelled text images, rendered in parallel into an LMDB. Deterministic for a seed."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from crnn_ocr.datasets.lmdb_writer import LmdbWriter
from crnn_ocr.datasets.synth.fonts import FontInfo, discover_fonts
from crnn_ocr.datasets.synth.render import Renderer, encode_image
from crnn_ocr.datasets.synth.text import TextSampler
from crnn_ocr.text.vocab import DEFAULT_CHARSET

logging.getLogger("fontTools").setLevel(logging.ERROR)

CHUNK = 256
ImageFilter = Callable[[list[np.ndarray]], list[np.ndarray]]


class SynthGenerator:
    """Draws (image, text) pairs: text from `TextSampler`, pixels from `Renderer`.

    >>> # gen = SynthGenerator(discover_fonts()); image, text = gen.sample(random.Random(0))
    """

    def __init__(self, fonts: list[FontInfo], charset: str = DEFAULT_CHARSET, line_share: float = 0.35,
                 max_height: int = 64, color: bool = False, style: str = "mixed",
                 languages: tuple[str, ...] | None = None, curved: float = 0.0):
        self.renderer = Renderer(fonts, max_height=max_height, color=color, style=style, curved=curved)
        self.sampler = TextSampler(charset, line_share=line_share, style=style, languages=languages)
        self.charset = set(charset) | {" "}

    def sample(self, rng: random.Random) -> tuple[np.ndarray, str]:
        while True:
            text = self.sampler.sample(rng)
            if not text.strip() or any(c not in self.charset for c in text):
                continue
            image = self.renderer.render(text, rng)
            if image is not None:
                return image, text


_worker_gen: SynthGenerator | None = None


def _init_worker(fonts: list[FontInfo], kwargs: dict) -> None:
    global _worker_gen
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    _worker_gen = SynthGenerator(fonts, **kwargs)


def _render_chunk(args: tuple[int, int, int, str]) -> list[tuple[bytes, str, tuple[int, int]]]:
    seed, chunk, n, fmt = args
    rng = random.Random(seed * 1_000_003 + chunk)
    out = []
    for _ in range(n):
        image, text = _worker_gen.sample(rng)  # type: ignore[union-attr]
        out.append((encode_image(image, fmt), text, (image.shape[1], image.shape[0])))
    return out


def render_chunks(count: int, fonts: list[FontInfo], seed: int = 0, workers: int = 0, fmt: str = ".jpg",
                  **kwargs) -> Iterator[tuple[bytes, str, tuple[int, int]]]:
    """Yield `count` encoded samples in a fixed order whatever the number of worker processes."""
    jobs = [(seed, k, min(CHUNK, count - k * CHUNK), fmt) for k in range(-(-count // CHUNK))]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        _init_worker(fonts, kwargs)
        for job in jobs:
            yield from _render_chunk(job)
        return
    # forkserver, not fork: a child forked from a process whose OpenCV thread pool has started can hang in it
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(fonts, kwargs)) as pool:
        for chunk in pool.imap(_render_chunk, jobs):
            yield from chunk


def synthesize(out: str | Path, count: int, seed: int = 0, workers: int = 0, font_dirs: list[str] | None = None,
               overwrite: bool = False, progress: bool = True, image_filter: ImageFilter | None = None,
               fmt: str = ".jpg", **kwargs) -> int:
    """Render `count` samples into a new LMDB at `out`; returns the number written.

    `image_filter` (e.g. a GAN refiner) maps a list of rendered images to images of the same sizes.
    """
    from tqdm import tqdm

    from crnn_ocr.image.io import read_image

    fonts = discover_fonts(font_dirs)
    written = 0
    with LmdbWriter(out, overwrite=overwrite) as writer:
        stream = render_chunks(count, fonts, seed, workers, fmt, **kwargs)
        for data, text, size in tqdm(stream, total=count, disable=not progress, desc="synth", unit="img"):
            if image_filter is not None:
                image = image_filter([read_image(data)])[0]
                data = encode_image(image, fmt)
            writer.add(data, text, size)
            written += 1
    return written
