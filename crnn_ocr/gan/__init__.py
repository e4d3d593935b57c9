"""A GAN that makes rendered (synthetic) text images look like real crops, keeping their text.

A conditional generator takes a clean render (plus noise) and returns an image of the same size and text; a
patch discriminator compares it with real, unlabelled crops; a content term (a frozen recognizer's CTC loss
on the known label, and a light L1 term) keeps the text readable and unchanged. See README.md here.

The rest of crnn_ocr reaches this package only through plain callables, and only when asked:

>>> # from crnn_ocr.gan import load_refiner
>>> # refine = load_refiner("gan.pt")          # list[uint8 array] -> list[uint8 array], same shapes
>>> # synthesize("out.lmdb", 1000, image_filter=refine)       # or: ocr gan refine renders.lmdb --out real-looking.lmdb
>>> # train(cfg, sample_filter=make_sample_filter("gan.pt", 0.5, sources=["synth"]))   # on the fly
"""

from __future__ import annotations

from crnn_ocr.gan.models import GanConfig, Generator, PatchDiscriminator
from crnn_ocr.gan.refine import Refiner, SampleFilter, load_refiner, make_sample_filter, refine_dataset
from crnn_ocr.gan.train import (
    FORMAT,
    ContentLoss,
    GanResult,
    GanTrainConfig,
    load_gan_checkpoint,
    load_generator,
    save_gan,
    train_gan,
)

__all__ = [
    "FORMAT",
    "ContentLoss",
    "GanConfig",
    "GanResult",
    "GanTrainConfig",
    "Generator",
    "PatchDiscriminator",
    "Refiner",
    "SampleFilter",
    "load_gan_checkpoint",
    "load_generator",
    "load_refiner",
    "make_sample_filter",
    "refine_dataset",
    "save_gan",
    "train_gan",
]
