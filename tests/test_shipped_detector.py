"""The shipped text detector (weights/text_detector.onnx) on renders it never saw: it finds the planted lines of
pages and scenes, a page turned by 90, 180 or 270 degrees reads upright, a photo without text gives no line."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from crnn_ocr.defaults import find_detector

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(find_detector() is None, reason="no detector shipped in weights/")


@pytest.fixture(scope="module")
def detector():
    from crnn_ocr.detect.runtime import OnnxDetector

    return OnnxDetector(find_detector(), threads=1)


@pytest.fixture(scope="module")
def renders():
    from crnn_ocr.datasets.synth.fonts import discover_fonts
    from crnn_ocr.detect.synth import PageSynth, SceneSynth

    fonts = discover_fonts([str(REPO / "data" / "fonts")])
    pages = [PageSynth(fonts).render(random.Random(seed)) for seed in (1, 2)]
    scene = SceneSynth(fonts).render(random.Random(1))
    return pages, scene


def test_it_finds_the_planted_lines(detector, renders):
    from crnn_ocr.detect.scoring import score_detections

    pages, (scene, scene_record) = renders
    for image, record in pages:
        counts = score_detections([d.quad for d in detector.detect(image, levels=["line"])["line"]], record["regions"],
                                  level="line")
        assert counts.hmean >= 0.8, (counts.tp, counts.fp, counts.fn)
    counts = score_detections([d.quad for d in detector.detect(scene, levels=["line"])["line"]], scene_record["regions"],
                              level="line")
    assert counts.tp >= 1


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_turned_page_reads_upright(detector, renders, degrees):
    import crnn_ocr
    from crnn_ocr.page import read_page

    pages, _ = renders
    image = pages[0][0]
    reader = crnn_ocr.load(threads=1, verifier=False)
    upright = read_page(reader.recognizer, image, layout="photo", detector=detector)
    turned = np.ascontiguousarray(np.rot90(image, -degrees // 90))  # turned clockwise
    result = read_page(reader.recognizer, turned, layout="photo", detector=detector)
    assert upright.orientation == 0 and result.orientation == degrees
    words, again = Counter(upright.to_text().split()), Counter(result.to_text().split())
    assert sum((words & again).values()) >= 0.6 * sum(words.values())  # boxes of a turned page differ a little


def test_a_photo_without_text_gives_no_line(detector):
    import crnn_ocr

    rng = np.random.default_rng(3)
    sky = np.linspace(90, 200, 720)[:, None, None] * np.array([0.6, 0.8, 1.0]) + rng.normal(0, 4, (720, 1280, 3))
    photo = np.clip(sky, 0, 255).astype(np.uint8)
    document = crnn_ocr.load(threads=1).read(photo)
    assert document.pages[0].layout == "photo" and document.lines == []
