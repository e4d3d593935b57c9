"""What the GAN trains on: a fixed pool of labelled renders (the generator's input) and real crops (labels ignored).

Everything is uint8 at the GAN's height until a batch is made; batches are padded on the right by repeating
the last column, and carry each image's true width so losses can ignore the padding.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import DatasetError, ImageError
from crnn_ocr.gan.models import to_unit
from crnn_ocr.image.io import read_image
from crnn_ocr.image.preprocess import resize_to_height
from crnn_ocr.text.vocab import Vocab

BATCH_MULTIPLE = 8  # the discriminator's stride; also even for the generator


def prepare(image: np.ndarray | bytes, height: int, channels: int, max_width: int = 4096) -> np.ndarray:
    """Any image input -> uint8 (height, W[, 3]) with the aspect ratio kept (width clamped to [16, max_width])."""
    image = read_image(image, channels=channels)
    return resize_to_height(image, ModelConfig(height=height, channels=channels, min_width=16, max_width=max_width))


def pad_batch(images: Sequence[np.ndarray], multiple: int = BATCH_MULTIPLE) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 images of one height -> float (B, C, H, W') in [-1, 1], W' the widest rounded up to `multiple`.

    Each image is padded by repeating its last column (no hard edge for the networks to react to).
    """
    widths = np.array([im.shape[1] for im in images], dtype=np.int64)
    width = int(-(-widths.max() // multiple) * multiple)
    out = []
    for im in images:
        x = torch.from_numpy(to_unit(im))
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)  # (H, W) -> (1, H, W); (H, W, C) -> (C, H, W)
        if x.shape[2] < width:
            x = F.pad(x[None], (0, width - x.shape[2], 0, 0), mode="replicate")[0]
        out.append(x)
    return torch.stack(out), widths


class RenderPool:
    """Rendered images at the GAN's height with their texts (and class ids when a recognizer's vocab is known)."""

    def __init__(self, images: list[np.ndarray], texts: list[str], vocab: Vocab | None = None):
        if vocab is not None:
            keep = [i for i, t in enumerate(texts) if t and not vocab.unknown(t)]
            images, texts = [images[i] for i in keep], [texts[i] for i in keep]
        if not images:
            raise DatasetError("no rendered image left to train the GAN on (are the labels in the recognizer's vocabulary?)")
        self.images, self.texts = images, texts
        self.targets = [vocab.encode(t) for t in texts] if vocab is not None else None

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[np.ndarray, str]], height: int, channels: int, max_width: int,
                   vocab: Vocab | None = None) -> RenderPool:
        return cls([prepare(im, height, channels, max_width) for im, _ in pairs], [t for _, t in pairs], vocab)

    @classmethod
    def render(cls, count: int, height: int, channels: int, max_width: int, seed: int = 0,
               font_dirs: list[str] | None = None, vocab: Vocab | None = None, line_share: float = 0.1,
               progress: bool = False) -> RenderPool:
        """Render `count` samples with SynthGenerator (deterministic for a seed); texts the vocab can't encode are
        redrawn (at most 20 x count draws)."""
        from tqdm import tqdm

        from crnn_ocr.datasets.synth import SynthGenerator
        from crnn_ocr.datasets.synth.fonts import discover_fonts

        gen = SynthGenerator(discover_fonts(font_dirs), line_share=line_share, max_height=max(64, height),
                             color=channels == 3)
        rng = random.Random(seed)
        images, texts = [], []
        with tqdm(total=count, disable=not progress, desc="render", unit="img") as bar:
            for _ in range(20 * count):
                image, text = gen.sample(rng)
                if vocab is not None and vocab.unknown(text):
                    continue
                images.append(prepare(image, height, channels, max_width))
                texts.append(text)
                bar.update(1)
                if len(images) == count:
                    break
        return cls(images, texts, vocab)

    @classmethod
    def from_dataset(cls, path: str | Path, count: int, height: int, channels: int, max_width: int, seed: int = 0,
                     vocab: Vocab | None = None) -> RenderPool:
        """Up to `count` samples of a labelled dataset of renders (an LMDB from `ocr data synth`, any form)."""
        from crnn_ocr.datasets.sources import open_source

        src = open_source(path)
        order = np.random.default_rng(seed).permutation(len(src))
        images, texts = [], []
        for i in order:
            if len(images) == count:
                break
            text = src.label(int(i))
            if not text or (vocab is not None and vocab.unknown(text)):
                continue
            try:
                images.append(prepare(src.image_bytes(int(i)), height, channels, max_width))
            except (ImageError, DatasetError):
                continue
            texts.append(text)
        return cls(images, texts, vocab)


class RealPool:
    """Real crops for the discriminator, read on demand from datasets (labels ignored) or given as arrays."""

    def __init__(self, height: int, channels: int, crop_width: int, paths: Sequence[str | Path] = (),
                 arrays: Sequence[np.ndarray] | None = None):
        self.height, self.channels, self.crop_width = height, channels, crop_width
        self.arrays = [prepare(a, height, channels) for a in arrays] if arrays is not None else None
        self.source = None
        if self.arrays is None:
            from crnn_ocr.datasets.sources import open_sources

            if not paths:
                raise DatasetError("the GAN needs real crops: give at least one --real dataset")
            self.source = open_sources(list(paths))
        if len(self) == 0:
            raise DatasetError("the real datasets hold no image")
        self.corrupt = 0

    def __len__(self) -> int:
        return len(self.arrays) if self.arrays is not None else len(self.source)

    def full(self, i: int) -> np.ndarray | None:
        """Crop i at the GAN's height, whole; None if it cannot be read (counted in `corrupt`)."""
        if self.arrays is not None:
            return self.arrays[i]
        try:
            return prepare(self.source.image_bytes(i), self.height, self.channels)
        except (ImageError, DatasetError):
            self.corrupt += 1
            return None

    def sample(self, rng: np.random.Generator, n: int) -> list[np.ndarray]:
        """n random crops; those wider than `crop_width` are cut to a random window of that width."""
        out: list[np.ndarray] = []
        for _ in range(20 * n):
            image = self.full(int(rng.integers(len(self))))
            if image is None:
                continue
            w = image.shape[1]
            if w > self.crop_width:
                x0 = int(rng.integers(w - self.crop_width + 1))
                image = image[:, x0 : x0 + self.crop_width]
            out.append(image)
            if len(out) == n:
                return out
        raise DatasetError("too many real crops could not be read")
