"""Training batches that depend only on (seed, step): resume is exact and every rank knows its share.

Each step's batch is drawn from a block of `chunks` batches sampled together from the source mixture and
sorted by aspect ratio before being cut, so images of similar width share a batch (little padding).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch

from crnn_ocr.config import DataSource, ModelConfig
from crnn_ocr.datasets.augment import augment, random_width_scale
from crnn_ocr.datasets.sources import Source, open_source
from crnn_ocr.errors import DatasetError, ImageError
from crnn_ocr.image.io import read_image
from crnn_ocr.image.preprocess import make_batch, output_lengths, resize_to_height
from crnn_ocr.text.vocab import Vocab, required_frames

SYNTH = "synth"
SYNTH_VIRTUAL_SIZE = 10_000_000


class SampleFilterHook(Protocol):
    """How experimental image transforms (the GAN refiner of `crnn_ocr.gan`) reach training, without the core
    knowing them: `train(cfg, sample_filter=hook)`. The hook maps a sample's image (with the sample's own random
    generator, so a run stays a function of its seed) before augmentation, for the sources it applies to."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...

    def applies_to(self, source: DataSource) -> bool: ...

    def describe(self, sources: Sequence[DataSource]) -> dict: ...


class SynthSource(Source):
    """Renders samples on the fly, seeded by index: a virtual dataset for `--train synth`."""

    name = SYNTH

    def __init__(self, charset: str):
        from crnn_ocr.datasets.synth import SynthGenerator
        from crnn_ocr.datasets.synth.fonts import discover_fonts

        self.generator = SynthGenerator(discover_fonts(), charset=charset)

    def __len__(self) -> int:
        return SYNTH_VIRTUAL_SIZE

    def sample(self, i: int) -> tuple[np.ndarray, str]:
        return self.generator.sample(random.Random(i))

    def load(self, i: int, channels: int = 1) -> tuple[np.ndarray, str]:
        """The render of seed `i`."""
        image, text = self.sample(i)
        return read_image(image, channels=channels), text


@dataclass
class SourceEntry:
    source: Source
    ratio: float
    valid: np.ndarray  # indices whose labels the vocabulary can encode
    aspect: np.ndarray  # width / height per valid index (estimate for on-the-fly synthesis)


def open_training_sources(specs: Sequence[DataSource], vocab: Vocab | None) -> tuple[list[SourceEntry], dict]:
    """Open every source, drop (and count) labels the vocabulary cannot encode or that are empty."""
    entries, report = [], {}
    for spec in specs:
        if spec.path == SYNTH:
            if vocab is None:
                raise DatasetError("on-the-fly synthesis needs a vocabulary (give --vocab or a dataset)")
            src = SynthSource(vocab.chars)
            entries.append(SourceEntry(src, spec.ratio, np.arange(len(src)), np.full(len(src), 5.0, np.float32)))
            continue
        src = open_source(spec.path)
        labels = src.labels()
        ok = np.array([bool(t.strip()) and (vocab is None or not vocab.unknown(t)) for t in labels], dtype=bool)
        unknown = sorted({c for t, good in zip(labels, ok) if not good for c in (vocab.unknown(t) if vocab else [])})
        sizes = src.sizes().astype(np.float32)
        aspect = sizes[:, 0] / np.maximum(sizes[:, 1], 1)
        valid = np.nonzero(ok)[0]
        if len(valid) == 0:
            raise DatasetError(f"{spec.path}: no sample has a non-empty label the vocabulary can encode")
        report[spec.path] = {"samples": len(labels), "skipped_labels": int((~ok).sum()), "unknown_chars": "".join(unknown)}
        entries.append(SourceEntry(src, spec.ratio, valid, aspect[valid]))
    return entries, report


class StepSampler:
    """Yields, for steps start..stop-1, this rank's list of sample keys (source, index, augmentation seed)."""

    def __init__(self, entries: list[SourceEntry], batch_size: int, seed: int, chunks: int = 8,
                 rank: int = 0, world: int = 1):
        self.entries = entries
        ratios = np.array([e.ratio for e in entries], dtype=np.float64)
        self.probs = ratios / ratios.sum()
        self.batch_size, self.seed, self.chunks, self.rank, self.world = batch_size, seed, chunks, rank, world
        self.start, self.stop = 0, 0

    def range(self, start: int, stop: int) -> StepSampler:
        self.start, self.stop = start, stop
        return self

    def block(self, block: int) -> list[list[tuple[int, int, int]]]:
        rng = np.random.default_rng([self.seed, block])
        n = self.batch_size * self.chunks
        src = rng.choice(len(self.entries), size=n, p=self.probs)
        pos = np.array([rng.integers(len(self.entries[s].valid)) for s in src])
        aspect = np.array([self.entries[s].aspect[p] for s, p in zip(src, pos)])
        seeds = rng.integers(0, 2**31 - 1, size=n)
        order = np.argsort(aspect, kind="stable")
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(self.chunks)]
        batches = [batches[i] for i in rng.permutation(self.chunks)]
        return [[(int(src[j]), int(self.entries[src[j]].valid[pos[j]]), int(seeds[j])) for j in b] for b in batches]

    def batch(self, step: int) -> list[tuple[int, int, int]]:
        full = self.block(step // self.chunks)[step % self.chunks]
        return full[self.rank :: self.world]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start, self.stop):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.stop - self.start


class TrainDataset(torch.utils.data.Dataset):
    """Loads, augments and resizes one sample per key; a corrupt image yields None (counted by the collate)."""

    def __init__(self, entries: list[SourceEntry], cfg: ModelConfig, vocab: Vocab, augment_prob: float,
                 sample_filter: SampleFilterHook | None = None, filtered_sources: Sequence[bool] = ()):
        """`sample_filter(image, rng) -> image` (a `SampleFilterHook`) is applied, before augmentation, to samples
        of the sources flagged in `filtered_sources`."""
        self.entries, self.cfg, self.vocab, self.augment_prob = entries, cfg, vocab, augment_prob
        self.sample_filter = sample_filter
        self.filtered = [bool(f) for f in filtered_sources] + [False] * (len(entries) - len(filtered_sources))

    def __len__(self) -> int:
        return sum(len(e.valid) for e in self.entries)

    def __getitem__(self, key: tuple[int, int, int]):
        s, i, seed = key
        source = self.entries[s].source
        rng = np.random.default_rng(seed)
        try:
            image, text = source.load(i, self.cfg.channels)
        except (ImageError, DatasetError):
            return None
        if self.sample_filter is not None and self.filtered[s]:
            image = self.sample_filter(image, rng)
        if rng.random() < self.augment_prob:
            image = augment(image, rng)
            scale = random_width_scale(rng)
            image = np.ascontiguousarray(image)
            h, w = image.shape[:2]
            image = cv2.resize(image, (max(1, int(w * scale)), h), interpolation=cv2.INTER_LINEAR)
        return resize_to_height(image, self.cfg), self.vocab.encode(text)


class Collate:
    """Pads a batch to its widest image; drops and counts corrupt samples and labels too long for their image."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg

    def __call__(self, samples):
        good = [s for s in samples if s is not None]
        corrupt = len(samples) - len(good)
        widths = [im.shape[1] for im, _ in good]
        frames = output_lengths(widths, self.cfg) if good else np.zeros(0, np.int64)
        fits = [required_frames(ids) <= t for (_, ids), t in zip(good, frames)]
        kept = [s for s, f in zip(good, fits) if f]
        too_long = len(good) - len(kept)
        if not kept:
            return {"images": None, "corrupt": corrupt, "too_long": too_long}
        images, widths = make_batch([im for im, _ in kept], self.cfg, resized=True)
        labels = [ids for _, ids in kept]
        return {
            "images": torch.from_numpy(images),
            "targets": torch.tensor([c for ids in labels for c in ids], dtype=torch.long),
            "target_lengths": torch.tensor([len(ids) for ids in labels], dtype=torch.long),
            "input_lengths": torch.from_numpy(output_lengths(widths, self.cfg)),
            "corrupt": corrupt,
            "too_long": too_long,
        }
