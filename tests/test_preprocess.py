"""Resize to height, normalise, batch with median padding, frame counts, width grouping."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ConfigError
from crnn_ocr.image.preprocess import (
    make_batch,
    normalize,
    output_lengths,
    padded_width,
    resize_to_height,
    target_width,
    width_groups,
)
from crnn_ocr.text.vocab import Vocab

CFG = ModelConfig(height=32)


def noise(h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize(
    "h, w, expected",
    [(32, 100, 100), (10, 50, 160), (64, 100, 50), (16, 37, 74), (100, 10, 16), (10, 1000, 1600), (48, 47, 31)],
)
def test_target_width_keeps_aspect_within_limits(h, w, expected):
    assert target_width(h, w, CFG) == expected


def test_target_width_custom_limits():
    cfg = ModelConfig(height=16, min_width=32, max_width=64)
    assert target_width(16, 8, cfg) == 32
    assert target_width(16, 48, cfg) == 48
    assert target_width(16, 500, cfg) == 64


@pytest.mark.parametrize("h, w", [(10, 50), (64, 300), (32, 100), (100, 10), (7, 3), (40, 4000)])
def test_resize_to_height(h, w):
    out = resize_to_height(noise(h, w), CFG)
    assert out.dtype == np.uint8
    assert out.shape == (32, target_width(h, w, CFG))
    assert CFG.min_width <= out.shape[1] <= CFG.max_width
    if CFG.min_width < w * 32 / h < CFG.max_width:
        assert abs(out.shape[1] / out.shape[0] - w / h) <= 1 / out.shape[0] + 1e-9  # aspect within a pixel


def test_resize_keeps_colour_and_content():
    rgb = noise(16, 40, 3)
    out = resize_to_height(rgb, CFG)
    assert out.shape == (32, 80, 3)
    flat = np.full((20, 60), 77, np.uint8)
    assert (resize_to_height(flat, CFG) == 77).all()
    exact = noise(32, 100)
    assert resize_to_height(exact, CFG) is exact  # already the right size: no resampling


def test_normalize_default():
    img = np.array([[0, 255, 51]], np.uint8)
    x = normalize(img, CFG)
    assert x.dtype == np.float32 and x.shape == (1, 1, 3)
    np.testing.assert_allclose(x[0, 0], [(0 - 0.5) / 0.5, (1 - 0.5) / 0.5, (0.2 - 0.5) / 0.5], rtol=1e-6)


def test_normalize_custom_mean_std_and_channels():
    cfg = ModelConfig(height=32, channels=3, mean=0.2, std=0.25)
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255
    img[0, 0] = (10, 20, 30)
    x = normalize(img, cfg)
    assert x.shape == (3, 2, 3)  # (H, W, C) -> (C, H, W)
    assert x[0, 1, 1] == pytest.approx((1.0 - 0.2) / 0.25)
    assert x[1, 1, 1] == pytest.approx((0.0 - 0.2) / 0.25)
    np.testing.assert_allclose(x[:, 0, 0], (np.array([10, 20, 30]) / 255 - 0.2) / 0.25, rtol=1e-6)
    assert x.flags["C_CONTIGUOUS"]


def test_make_batch_shapes_and_stride():
    images = [noise(20, 50, seed=1), noise(32, 17, seed=2), noise(64, 300, seed=3)]
    batch, widths = make_batch(images, CFG)
    assert batch.dtype == np.float32
    assert widths.tolist() == [target_width(*im.shape, CFG) for im in images]
    assert batch.shape[:3] == (3, 1, 32)
    assert batch.shape[3] % CFG.width_stride == 0
    assert max(widths) <= batch.shape[3] < max(widths) + CFG.width_stride


@pytest.mark.parametrize("stride", [1, 4, 8])
def test_make_batch_pads_to_a_multiple_of_the_stride(stride):
    cfg = ModelConfig(height=16, width_stride=stride)
    for w in (16, 17, 19, 37, 100, 101):
        batch, widths = make_batch([noise(16, w)], cfg)
        assert widths.tolist() == [w]
        assert batch.shape[3] % stride == 0 and w <= batch.shape[3] < w + stride
        assert batch.shape[3] == padded_width([w], cfg)


def test_make_batch_with_a_fixed_width_still_keeps_the_stride():
    batch, _ = make_batch([noise(32, 40)], CFG, width=64)
    assert batch.shape[3] == 64
    batch, _ = make_batch([noise(32, 40)], CFG, width=50)
    assert batch.shape[3] >= 50 and batch.shape[3] % CFG.width_stride == 0
    batch, _ = make_batch([noise(32, 100)], CFG, width=20)  # narrower than the image: the image wins
    assert batch.shape[3] == 100


def test_make_batch_keeps_content_and_pads_with_the_median():
    a = np.full((32, 40), 200, np.uint8)
    a[:, :5] = 0  # dark strip: the median is still 200
    b = noise(32, 80, seed=4)
    batch, widths = make_batch([a, b], CFG, resized=True)
    assert widths.tolist() == [40, 80]
    np.testing.assert_array_equal(batch[0, :, :, :40], normalize(a, CFG))
    np.testing.assert_array_equal(batch[1], normalize(b, CFG))
    pad = batch[0, :, :, 40:]
    assert pad.shape == (1, 32, 40)
    assert np.allclose(pad, (200 / 255 - 0.5) / 0.5, atol=1e-6)


def test_make_batch_median_padding_per_channel():
    cfg = ModelConfig(height=16, channels=3)
    rgb = np.zeros((16, 20, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 128, 250
    wide = noise(16, 60, 3)
    batch, _ = make_batch([rgb, wide], cfg, resized=True)
    assert batch.shape == (2, 3, 16, 60)
    for c, v in enumerate((10, 128, 250)):
        assert np.allclose(batch[0, c, :, 20:], (v / 255 - 0.5) / 0.5, atol=1e-6)


def test_make_batch_resizes_unless_told_not_to():
    img = noise(64, 64)
    batch, widths = make_batch([img], CFG)
    assert batch.shape == (1, 1, 32, 32) and widths.tolist() == [32]
    with pytest.raises(ValueError):
        make_batch([img], CFG, resized=True)  # 64 rows do not fit a height-32 batch
    with pytest.raises(ValueError):
        make_batch([], CFG)


def test_output_lengths():
    assert output_lengths([16, 17, 19, 20, 160], CFG).tolist() == [4, 5, 5, 5, 40]
    assert output_lengths(np.array([8, 9]), ModelConfig(width_stride=8)).tolist() == [1, 2]
    # Every image's frames fit inside its batch's frames (T = padded width // stride).
    widths = [16, 37, 101, 260]
    T = padded_width(widths, CFG) // CFG.width_stride
    assert output_lengths(widths, CFG).max() <= T


def test_width_groups_sorts_by_width():
    widths = [50, 10, 30, 10, 40]
    groups = width_groups(widths, 2)
    assert groups == [[1, 3], [2, 4], [0]]
    rng = np.random.default_rng(0)
    widths = rng.integers(16, 500, 37).tolist()
    groups = width_groups(widths, 8)
    assert sorted(i for g in groups for i in g) == list(range(37))
    assert all(len(g) == 8 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 8
    flat = [widths[i] for g in groups for i in g]
    assert flat == sorted(flat)
    assert width_groups([], 4) == []


def test_model_config_rejects_bad_geometry():
    for bad in ({"height": 30}, {"channels": 2}, {"std": 0}, {"min_width": 0}, {"min_width": 50, "max_width": 40},
                {"width_stride": 0}):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)


def test_to_gray_converts_channels_and_guards_the_dtype():
    from crnn_ocr.image.preprocess import to_gray

    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 1] = 200
    assert to_gray(rgb).shape == (4, 5) and 110 < int(to_gray(rgb)[0, 0]) < 125  # luminance weights green ~0.587
    rgba = np.dstack([rgb, np.full((4, 5), 255, np.uint8)])
    assert np.array_equal(to_gray(rgba), to_gray(rgb))
    assert np.array_equal(to_gray(rgb[..., :1]), rgb[..., 0])
    wide = np.full((2, 2), 300.0)
    with pytest.raises(ValueError, match="uint8"):
        to_gray(wide)
    assert to_gray(wide, clip=True).tolist() == [[255, 255], [255, 255]]
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((2, 2, 2, 2), np.uint8))


class AlternatingReader:
    """A stand-in network: `pattern` repeated over the output frames ('' = blank), for any input width."""

    def __init__(self, vocab, pattern: str):
        self.vocab, self.pattern, self.widths = vocab, pattern, []

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.widths.append(batch.shape[3])
        frames = batch.shape[3] // 4
        logits = np.zeros((batch.shape[0], frames, self.vocab.num_classes), np.float32)
        for t in range(frames):
            symbol = self.pattern[t % len(self.pattern)]
            logits[:, t, 0 if symbol == "_" else self.vocab.index(symbol)] = 10.0
        return logits


@pytest.mark.parametrize(("pattern", "reread"), [("ab", True), ("a__", False), ("a_b_", True), ("a_b__", False)])
def test_text_packed_into_too_few_frames_is_read_again_wider(pattern, reread):
    from crnn_ocr.recognize.base import TextRecognizer

    cfg = ModelConfig(height=32, width_stride=4)
    vocab = Vocab("ab")
    network = AlternatingReader(vocab, pattern)
    recognizer = TextRecognizer(network, cfg, vocab)
    image = np.full((32, 200), 255, np.uint8)
    (prediction,) = recognizer.recognize_arrays([image])
    if reread:  # 1 and 0.5 characters per frame: stretched by at most 1.6 and 1.25
        factor = min(recognizer.max_stretch, (2 / len(pattern)) / recognizer.dense_chars_per_frame)
        assert len(network.widths) == 2 and prediction.frames == -(-round(200 * factor) // 4)
    else:  # 0.33 and 0.4 characters per frame: dense enough
        assert len(network.widths) == 1 and prediction.frames == 200 // 4
    assert all(0 <= c.x0 <= c.x1 <= 200 for c in prediction.chars)
    assert prediction.chars[-1].x1 > 190  # placed on the original image, not the stretched one
    recognizer.dense_chars_per_frame = None
    network.widths.clear()
    assert recognizer.recognize_arrays([image])[0].frames == 200 // 4 and len(network.widths) == 1
