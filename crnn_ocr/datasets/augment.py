"""Training-time augmentation on uint8 images (numpy/OpenCV), applied before resizing to the model height."""

from __future__ import annotations

import cv2
import numpy as np


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mix of geometric and photometric changes that keep the text readable."""
    h, w = image.shape[:2]
    if rng.random() < 0.3:
        angle = rng.normal(0, 1.5)
        shear = rng.normal(0, 0.1)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        matrix[0, 1] += shear
        matrix[0, 2] -= shear * h / 2
        image = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.2:
        d = 0.08 * h
        src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        dst = (src + rng.uniform(-d, d, size=(4, 2))).astype(np.float32)
        image = cv2.warpPerspective(image, cv2.getPerspectiveTransform(src, dst), (w, h),
                                    borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.25:  # crop jitter: real detectors cut a little too much or too little
        dy = int(round(rng.uniform(-0.08, 0.08) * h))
        dx = int(round(rng.uniform(-0.05, 0.05) * h))
        image = _shift_edges(image, dy, dx)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.2:
        k = np.ones((2, 2), np.uint8)
        image = cv2.erode(image, k) if rng.random() < 0.5 else cv2.dilate(image, k)
    if rng.random() < 0.4:
        alpha = rng.uniform(0.6, 1.3)
        beta = rng.uniform(-40, 40)
        image = np.clip(image.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(3, 12), size=image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        image = _low_resolution(image, rng)
    if rng.random() < 0.2:
        image = _jpeg(image, int(rng.integers(15, 70)))
    if rng.random() < 0.08:
        image = 255 - image
    return image


def _low_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down to a street-sign-photo height (10-22 px) and back: the blocky, smeared look of distant text."""
    h, w = image.shape[:2]
    factor = rng.uniform(10, 22) / h
    if factor >= 0.9:
        return image
    small = cv2.resize(image, (max(2, round(w * factor)), max(2, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED) if ok else image


def _shift_edges(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Positive values cut rows/columns off each side, negative ones add replicated border."""
    if dy > 0 and image.shape[0] - 2 * dy >= 8:
        image = image[dy:-dy]
    elif dy < 0:
        image = cv2.copyMakeBorder(image, -dy, -dy, 0, 0, cv2.BORDER_REPLICATE)
    if dx > 0 and image.shape[1] - 2 * dx >= 8:
        image = image[:, dx:-dx]
    elif dx < 0:
        image = cv2.copyMakeBorder(image, 0, 0, -dx, -dx, cv2.BORDER_REPLICATE)
    return image


def random_width_scale(rng: np.random.Generator, spread: float = 0.2) -> float:
    return float(np.exp(rng.uniform(-spread, spread)))
