"""Resize to the model height, pad and normalise: one copy, used by training, evaluation, torch and ONNX.

>>> import numpy as np
>>> from crnn_ocr.config import ModelConfig
>>> batch, widths = make_batch([np.zeros((10, 50), np.uint8)], ModelConfig(height=32))
>>> batch.shape, widths.tolist()
((1, 1, 32, 160), [160])
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from crnn_ocr.config import ModelConfig


def to_gray(image: np.ndarray, clip: bool = False) -> np.ndarray:
    """uint8 (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA -> uint8 (H, W).

    Another dtype raises ValueError, or is clipped to [0, 255] when `clip` is true.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3:
        code = cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY
        image = cv2.cvtColor(np.ascontiguousarray(image), code)
    if image.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if image.dtype != np.uint8:
        if not clip:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def target_width(height: int, width: int, cfg: ModelConfig) -> int:
    """Width after resizing an (height, width) image to cfg.height, keeping the aspect ratio, clamped."""
    scaled = int(round(width * cfg.height / max(height, 1)))
    return int(min(max(scaled, cfg.min_width), cfg.max_width))


def resize_to_height(image: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """uint8 (H, W[, 3]) -> uint8 (cfg.height, W'[, 3]); W' keeps the aspect ratio within [min_width, max_width]."""
    h, w = image.shape[:2]
    new_w = target_width(h, w, cfg)
    if (h, w) == (cfg.height, new_w):
        return image
    shrinking = new_w * cfg.height < w * h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (new_w, cfg.height), interpolation=interpolation)


def stretch(image: np.ndarray, factor: float, cfg: ModelConfig) -> np.ndarray:
    """A resized image `factor` times as wide (at most cfg.max_width), same height."""
    width = int(min(round(image.shape[1] * factor), cfg.max_width))
    return image if width <= image.shape[1] else cv2.resize(image, (width, image.shape[0]),
                                                            interpolation=cv2.INTER_LINEAR)


def normalize(image: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """uint8 (H, W[, C]) -> float32 (C, H, W), scaled to [0, 1] then (x - mean) / std."""
    x = image.astype(np.float32) * (1.0 / 255.0)
    x = (x - cfg.mean) / cfg.std
    if x.ndim == 2:
        return x[None]  # (H, W) -> (1, H, W)
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # (H, W, C) -> (C, H, W)


def padded_width(widths: Sequence[int], cfg: ModelConfig) -> int:
    """Batch width: the widest item, rounded up to a multiple of the model's width stride."""
    widest = max(widths)
    return int(-(-widest // cfg.width_stride) * cfg.width_stride)


def bucket_width(width: int, cfg: ModelConfig) -> int:
    """The padded width an image `width` pixels wide is read at: the next multiple of 32 (64 past 256 px, 128
    past 1024 px). It depends on the image alone, so a BiLSTM, which also reads the padding, gives an image the
    same reading whatever else shares its batch."""
    step = 32 if width <= 256 else 64 if width <= 1024 else 128
    bucket = -(-width // step) * step
    return bucket if bucket <= cfg.max_width else padded_width([width], cfg)


def output_lengths(widths: Sequence[int] | np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """Output frames that belong to each image (the rest of the batch's frames are padding)."""
    return -(-np.asarray(widths, dtype=np.int64) // cfg.width_stride)


def make_batch(
    images: Sequence[np.ndarray], cfg: ModelConfig, resized: bool = False, width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stack uint8 images into one float32 (B, C, H, W) batch.

    Each image is resized to the model height (unless `resized`), normalised, and padded on the right with
    its own median gray, so padding looks like background. The batch is at least `width` wide and always a
    multiple of `cfg.width_stride`. Returns the batch and each image's width.
    """
    if not images:
        raise ValueError("make_batch needs at least one image")
    scaled = list(images) if resized else [resize_to_height(im, cfg) for im in images]
    widths = np.array([im.shape[1] for im in scaled], dtype=np.int64)
    batch_width = padded_width([*widths, width or 0], cfg)  # a requested width is rounded up to the stride too
    batch = np.empty((len(scaled), cfg.channels, cfg.height, batch_width), dtype=np.float32)
    for i, im in enumerate(scaled):
        x = normalize(im, cfg)
        w = x.shape[2]
        batch[i, :, :, :w] = x
        if w < batch_width:
            batch[i, :, :, w:] = np.median(x, axis=(1, 2), keepdims=True)
    return batch, widths


def width_groups(widths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar width, so little compute is spent on padding."""
    order = np.argsort(np.asarray(widths), kind="stable")
    return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]


def bucket_groups(widths: Sequence[int], batch_size: int, cfg: ModelConfig) -> list[tuple[int, list[int]]]:
    """(bucket width, indices) batches: each batch holds images of one `bucket_width`, at most batch_size."""
    buckets: dict[int, list[int]] = {}
    for i, w in enumerate(widths):
        buckets.setdefault(bucket_width(int(w), cfg), []).append(i)
    return [(b, members[i : i + batch_size]) for b, members in sorted(buckets.items())
            for i in range(0, len(members), batch_size)]
