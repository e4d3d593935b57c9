"""Fuzzing the two readers that take untrusted bytes: images and labels files. Whatever comes in, the answer is a
result or a clean typed error (ImageError / DatasetError), never a crash or another exception, and memory stays
bounded (a few hundred cases here; `pytest -m slow` runs thousands)."""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from crnn_ocr.datasets.sources import open_source
from crnn_ocr.errors import DatasetError, ImageError
from crnn_ocr.image.io import read_image

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
THOROUGH = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEMORY_LIMIT_KB = 2 * 1024 * 1024  # what the process may have grown to after all cases


def _seed_images() -> list[bytes]:
    out = []
    for fmt, mode in (("PNG", "L"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("BMP", "RGB"), ("TIFF", "I;16"), ("GIF", "P")):
        buffer = io.BytesIO()
        Image.new(mode, (23, 11)).save(buffer, fmt)
        out.append(buffer.getvalue())
    return out


SEEDS = _seed_images()


@st.composite
def damaged_images(draw) -> bytes:
    """A real image file with bytes flipped, cut, inserted or its header size fields rewritten."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "big"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=64))
        elif kind == "big" and len(data) > at + 4:
            data[at:at + 4] = (0x7FFF_FFFF).to_bytes(4, "big")  # a huge width or height in a header field
    return bytes(data)


def _read(data: bytes) -> None:
    try:
        image = read_image(data, channels=draw_channels(data))
        assert image.dtype == np.uint8 and image.size > 0
    except ImageError:
        pass


def draw_channels(data: bytes) -> int:
    return 1 + 2 * (len(data) % 2)


@FAST
@given(st.one_of(damaged_images(), st.binary(max_size=2048)))
def test_the_image_reader_gives_an_image_or_an_image_error(data):
    _read(data)


@pytest.mark.slow
@THOROUGH
@given(st.one_of(damaged_images(), st.binary(max_size=4096)))
def test_the_image_reader_thoroughly(data):
    _read(data)


LABEL_LINES = st.lists(st.one_of(
    st.text(max_size=80),
    st.builds(lambda name, label: f"{name}\t{label}", st.sampled_from(["a.png", "missing.png", "../a.png", "/etc/passwd", ""]),
              st.text(max_size=40)),
), max_size=12)


def _labels(tmp_path_factory, lines: list[str], raw: bytes | None) -> None:
    folder = tmp_path_factory.mktemp("labels")
    (folder / "a.png").write_bytes(SEEDS[0])
    data = raw if raw is not None else "\n".join(lines).encode("utf-8", "surrogatepass")
    (folder / "labels.tsv").write_bytes(data)
    try:
        source = open_source(folder)
        for i in range(len(source)):
            try:
                source.label(i), source.image_bytes(i), source.sample_name(i)
            except DatasetError:
                pass
    except DatasetError:
        pass


@FAST
@given(lines=LABEL_LINES, raw=st.one_of(st.none(), st.binary(max_size=512)))
def test_the_labels_reader_gives_samples_or_a_dataset_error(tmp_path_factory, lines, raw):
    _labels(tmp_path_factory, lines, raw)


def test_memory_stayed_bounded():
    """Run after the fuzz cases above (file order): the process never grew past the limit."""
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < MEMORY_LIMIT_KB
