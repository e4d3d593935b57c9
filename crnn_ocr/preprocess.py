"""Resize to the model height, pad and normalise: one copy, used by training, evaluation, torch and ONNX.

>>> import numpy as np
>>> from crnn_ocr.config import ModelConfig
>>> batch, widths = make_batch([np.zeros((10, 50), np.uint8)], ModelConfig(height=32))
>>> batch.shape, widths.tolist()
((1, 1, 32, 160), [160])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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


# ----- patches of the text / non-text verifier (crnn_ocr.dbn trains it; crnn_ocr.runtime runs its ONNX) -----
# A candidate crop becomes an "ink map": made dark-on-light, then ink strength in [0, 1] measured from the
# background level, so contrast, brightness and polarity do not matter; it is scaled to the patch height and
# cut into patch-wide windows. A crop's score is the mean text probability of its inked windows.
PATCH_HEIGHT = 16
PATCH_WIDTH = 64
MAX_WINDOWS = 8
MIN_WINDOW_INK = 0.01  # mean ink a window needs to count as evidence
MIN_CONTRAST = 32.0  # ink strength is measured against at least this many gray levels


def _thickness(mask: np.ndarray) -> float:
    """How thick the regions of a binary mask are: the 90th percentile of their distance to the other side."""
    d = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    values = d[mask]
    return float(np.percentile(values, 90)) if values.size else 0.0


def dark_background(gray: np.ndarray) -> bool:
    """Whether a crop is light ink on a dark ground.

    The two sides of an Otsu split are compared by thickness at a fixed height of 32 pixels: strokes are
    thin, the ground between and around them is wide. This holds for text in a dark box inside a light
    margin too, where "majority" or "border colour" rules pick the box as the ground.
    """
    h = 32
    w = max(1, int(round(gray.shape[1] * h / max(gray.shape[0], 1))))
    small = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if gray.shape[0] > h else cv2.INTER_LINEAR)
    t, _ = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = small <= t
    return _thickness(dark) > _thickness(~dark)


def ink_map(crop: np.ndarray) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 0 for background, 1 for full-contrast ink, whatever the polarity.

    Light ink on a dark ground is turned around first (`dark_background`). Ink strength is the distance
    from the ground's median level (the light side of an Otsu split), divided by the distance of the
    darkest 1% of pixels (at least MIN_CONTRAST levels, so flat crops stay faint).
    """
    g = to_gray(crop, clip=True)
    if g.size == 0:
        return np.zeros((1, 1), np.float32)
    f = g.astype(np.float32)
    if dark_background(g):
        f = 255.0 - f
        g = 255 - g
    t, _ = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ground = f[f > t]
    background = float(np.median(ground)) if ground.size else float(np.median(f))
    ink_level = float(np.percentile(f, 1))
    scale = max(background - ink_level, MIN_CONTRAST)
    return np.clip((background - f) / scale, 0.0, 1.0)


def patch_windows(crop: np.ndarray, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                  max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """The patches a crop is scored on: float32 (n, height * width), 1 <= n <= max_windows.

    The crop's ink map is scaled to `height` keeping the aspect ratio; a narrow result is centred and
    padded with background, a wide one cut into evenly spaced windows (overlapping where fewer than needed
    to tile the line).
    """
    return ink_windows(ink_map(crop), height, width, max_windows)


def ink_windows(ink: np.ndarray, height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH,
                max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """`patch_windows` of an ink map (float32 (H, W) in [0, 1])."""
    h, w = ink.shape
    new_w = max(1, int(round(w * height / max(h, 1))))
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    scaled = cv2.resize(ink, (new_w, height), interpolation=interp)
    if new_w <= width:
        patch = np.zeros((height, width), np.float32)
        x0 = (width - new_w) // 2
        patch[:, x0:x0 + new_w] = scaled
        return patch.reshape(1, -1)
    n = min(max_windows, int(np.ceil(new_w / width)))
    starts = np.linspace(0, new_w - width, n).round().astype(int)
    return np.stack([scaled[:, s:s + width].reshape(-1) for s in starts])


def score_crops(crops: Sequence[np.ndarray], score_patches: Callable[[np.ndarray], np.ndarray],
                height: int = PATCH_HEIGHT, width: int = PATCH_WIDTH, max_windows: int = MAX_WINDOWS) -> np.ndarray:
    """Probability of text per crop, float64 (N,): the mean of `score_patches` over the crop's inked windows
    (over all its windows when none holds ink). `score_patches`: float32 (n, height * width) -> (n,)."""
    groups = [patch_windows(c, height, width, max_windows) for c in crops]
    if not groups:
        return np.zeros(0)
    probs = np.asarray(score_patches(np.concatenate(groups)), dtype=np.float64).reshape(-1)
    out = np.empty(len(groups))
    start = 0
    for i, g in enumerate(groups):
        p = probs[start:start + len(g)]
        inked = g.mean(1) >= MIN_WINDOW_INK
        out[i] = float(p[inked].mean() if inked.any() else p.mean())
        start += len(g)
    return out
