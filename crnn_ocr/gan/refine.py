"""Apply a trained generator to uint8 images of any size: the plain callables the rest of crnn_ocr uses.

* `load_refiner(path)` -> `Refiner`: list of uint8 images -> list of uint8 images of the same shapes
  (what `ocr gan refine`, `refine_dataset` and `synthesize(image_filter=...)` use).
* `make_sample_filter(path, probability, seed, sources)` -> `SampleFilter`: (image, rng) -> image, applied with
  a probability; the hook `crnn_ocr.train.train(cfg, sample_filter=...)` takes for on-the-fly use.
  Picklable; loads the generator lazily per process.

Each image is brought to the generator's height (aspect ratio kept) and channel count, run through it, and
resized back to its own size and channel layout.

>>> # refine = load_refiner("gan.pt"); looks_real = refine([render])[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from crnn_ocr.errors import ConfigError
from crnn_ocr.gan.models import Generator, from_unit, to_unit


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if channels == 1 and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channels == 3 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image


def _like(result: np.ndarray, original: np.ndarray) -> np.ndarray:
    """`result` (H', W'[, 3]) back to the original's size and channel layout ((H, W), (H, W, 1|3|4))."""
    h, w = original.shape[:2]
    if result.shape[:2] != (h, w):
        shrinking = w * h < result.shape[0] * result.shape[1]
        result = cv2.resize(result, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    gray = result if result.ndim == 2 else cv2.cvtColor(result, cv2.COLOR_RGB2GRAY)
    if original.ndim == 2:
        return gray
    rgb = result if result.ndim == 3 else cv2.cvtColor(result, cv2.COLOR_GRAY2RGB)
    if original.shape[2] == 1:
        return gray[:, :, None]
    if original.shape[2] == 4:  # the alpha channel is kept as it was
        return np.ascontiguousarray(np.concatenate([rgb, original[:, :, 3:]], axis=2))
    return rgb


class Refiner:
    """Runs a generator over uint8 images; each output has its input's shape and dtype.

    Args:
        generator: a trained `Generator` (eval mode is set here).
        device: where to run it.
        seed: seeds the noise; the same seed and inputs give the same outputs.
    """

    def __init__(self, generator: Generator, device: str = "cpu", seed: int = 0):
        self.generator = generator.eval().to(device)
        self.device = device
        self.height, self.channels = generator.cfg.height, generator.cfg.channels
        self.noise = torch.Generator().manual_seed(seed)

    def refine_one(self, image: np.ndarray, noise_seed: int | None = None) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
            raise ValueError("the refiner takes uint8 arrays (H, W) or (H, W, C)")
        x = _to_channels(image, self.channels)
        h, w = x.shape[:2]
        new_w = max(8, int(round(w * self.height / h)))
        if (h, w) != (self.height, new_w):
            shrinking = new_w * self.height < w * h
            x = cv2.resize(x, (new_w, self.height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        t = torch.from_numpy(to_unit(x))
        t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]  # (H, W) -> (1, 1, H, W); (H, W, C) -> (1, C, H, W)
        generator = self.noise if noise_seed is None else torch.Generator().manual_seed(noise_seed)
        with torch.inference_mode():
            y = self.generator(t.to(self.device), generator=generator)
        out = from_unit(y)[0]  # (C, H, W) uint8
        out = out[0] if out.shape[0] == 1 else out.transpose(1, 2, 0)  # (1, H, W) -> (H, W); (C, H, W) -> (H, W, C)
        return _like(out, image)

    def __call__(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.refine_one(im) for im in images]


def load_refiner(path: str | Path, device: str = "cpu", seed: int = 0) -> Refiner:
    """The generator of GAN checkpoint `path` as a callable: list[uint8 array] -> list[uint8 array], same shapes.

    >>> # images = load_refiner("gan.pt")([np.zeros((40, 120), np.uint8)])
    """
    from crnn_ocr.gan.train import load_generator

    return Refiner(load_generator(path), device=device, seed=seed)


class SampleFilter:
    """(image, rng) -> image: with probability `probability` the image goes through the generator.

    The draw and the noise come from `rng` (a numpy Generator, e.g. the training sample's own), so a training
    run stays a function of its seed. The generator is loaded on first use in each process, on the CPU, so the
    filter can be handed to data-loader workers.
    """

    def __init__(self, path: str | Path, probability: float = 0.5, seed: int = 0, sources: Sequence[str] = ("synth",)):
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be in [0, 1]")
        self.path, self.probability, self.seed = str(path), float(probability), seed
        self.sources = [str(s) for s in sources]
        self._refiner: Refiner | None = None
        self._rng = np.random.default_rng(seed)
        from crnn_ocr.gan.train import load_gan_checkpoint

        load_gan_checkpoint(self.path)  # fail early, in the parent process, on a missing or foreign file

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_refiner"] = None
        return state

    def refiner(self) -> Refiner:
        if self._refiner is None:
            self._refiner = load_refiner(self.path, seed=self.seed)
        return self._refiner

    def __call__(self, image: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng if rng is not None else self._rng
        if self.probability <= 0 or rng.random() >= self.probability:
            return image
        return self.refiner().refine_one(image, noise_seed=int(rng.integers(0, 2**62)))

    @staticmethod
    def _matches(name: str, source) -> bool:
        if name == source.path:
            return True
        return "synth" not in (name, source.path) and Path(name).resolve() == Path(source.path).resolve()

    def applies_to(self, source) -> bool:
        """Whether the samples of a training source (a `crnn_ocr.config.DataSource`) go through the generator:
        renders only, named when the filter is made; never real crops."""
        return any(self._matches(name, source) for name in self.sources)

    def describe(self, sources) -> dict:
        """What a training run's report says of the filter; a named source the run does not train on is an error."""
        for name in self.sources:
            if name != "synth" and not any(self._matches(name, s) for s in sources):
                raise ConfigError(f"GAN source {name}: not one of the training sources ({', '.join(s.path for s in sources)})")
        return {"generator": self.path, "probability": self.probability,
                "sources": [s.path for s in sources if self.applies_to(s)]}


def make_sample_filter(path: str | Path, probability: float = 0.5, seed: int = 0,
                       sources: Sequence[str] = ("synth",)) -> SampleFilter:
    """A per-sample GAN filter for `crnn_ocr.train.train(cfg, sample_filter=...)` (see `SampleFilter`); it
    refines the samples of the training `sources` named (paths of render datasets, or "synth")."""
    return SampleFilter(path, probability, seed, sources)


def refine_dataset(source, out: str | Path, refiner: Refiner, overwrite: bool = False, progress: bool = True) -> int:
    """Write every image of `source` (a `crnn_ocr.datasets.sources.Source` of renders) through the generator into
    a new LMDB at `out`, labels unchanged; returns the number written."""
    from tqdm import tqdm

    from crnn_ocr.datasets.lmdb_writer import LmdbWriter
    from crnn_ocr.datasets.synth.render import encode_image
    from crnn_ocr.image.io import read_image

    written = 0
    with LmdbWriter(out, overwrite=overwrite, protected=source.paths()) as writer:
        for i in tqdm(range(len(source)), disable=not progress, desc="refine", unit="img"):
            image = read_image(source.image_bytes(i))
            refined = refiner([image])[0]
            writer.add(encode_image(refined, ".png"), source.label(i), (refined.shape[1], refined.shape[0]))
            written += 1
    return written
