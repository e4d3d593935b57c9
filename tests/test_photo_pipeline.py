"""Photos and turned pages through the detector route: orientation by the recogniser's confidence, reading order
on the upright page, clutter dropped, and the auto route sending documents to the line finder, photos to the
detector. A stand-in detector returns the true line quads, so this tests the pipeline, not a trained network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import crnn_ocr
from crnn_ocr.detect.postprocess import Detection
from crnn_ocr.page import read_page
from crnn_ocr.page.detected import looks_like_document, turn_quad, upright_points

REPO = Path(__file__).resolve().parents[1]
FONT = str(REPO / "data" / "fonts" / "DejaVuSans.ttf")
LINES = ["Fresh bread daily", "Open until midnight"]


class QuadDetector:
    """Answers with the quads it was given (visual order: TL, TR, BR, BL on screen), or for an image of a shape in
    `by_shape` with the quads given for that shape."""

    def __init__(self, quads, by_shape=None):
        self.quads = [np.asarray(q, np.float32) for q in quads]
        self.by_shape = by_shape or {}
        self.calls = 0

    def detect(self, image, levels=None):
        self.calls += 1
        quads = self.by_shape.get(image.shape[:2], self.quads)
        return {"line": [Detection(np.asarray(q, np.float32), 0.9) for q in quads]}


def scene(background=(40, 90, 60)) -> tuple[np.ndarray, list[np.ndarray]]:
    """A coloured 'photo' with two lines of light text and their quads."""
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.normal(0, 18, (480, 760, 3)) + background).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 44)
    quads = []
    for i, text in enumerate(LINES):
        x, y = 60, 120 + 150 * i
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        draw.text((x, y), text, fill=(245, 240, 220), font=font)
        quads.append(np.array([[x0 - 4, y0 - 6], [x1 + 4, y0 - 6], [x1 + 4, y1 + 6], [x0 - 4, y1 + 6]], np.float32))
    return np.asarray(image), quads


def turned(image: np.ndarray, quads, degrees: int):
    """The image turned `degrees` clockwise, and the quads' corners in the turned image, in visual order."""
    h, w = image.shape[:2]
    k = degrees // 90
    out = np.ascontiguousarray(np.rot90(image, -k))
    moved = []
    for q in quads:
        p = q.copy()
        for _ in range(k):  # one clockwise quarter turn of an image of the current size
            p = np.stack([h - 1 - p[:, 1], p[:, 0]], -1)
            h, w = w, h
        h, w = image.shape[:2]
        visual = p[np.argsort(np.arctan2(p[:, 1] - p[:, 1].mean(), p[:, 0] - p[:, 0].mean()))]
        moved.append(np.roll(visual, -int(np.argmin(visual.sum(1))), 0))
    return out, moved


@pytest.fixture(scope="module")
def recognizer():
    reader = crnn_ocr.load(threads=1, verifier=False)
    return reader.recognizer


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_turned_photos_read_upright(recognizer, degrees):
    upright, upright_quads = scene()
    image, quads = turned(upright, upright_quads, degrees)
    detector = QuadDetector(quads, by_shape={upright.shape[:2]: upright_quads} if degrees in (90, 270) else None)
    result = read_page(recognizer, image, layout="photo", detector=detector)
    assert result.orientation == degrees and result.layout == "photo"
    assert [line.text for line in result.lines] == LINES  # in reading order on the upright page
    assert result.to_dict()["orientation"] == degrees
    assert detector.calls == (2 if degrees in (90, 270) else 1)  # lines running down: found again on the upright page


def test_a_photo_without_text_prints_nothing(recognizer):
    image, _ = scene()
    blank = np.ascontiguousarray(image[:100, :100].repeat(5, 0).repeat(8, 1))
    result = read_page(recognizer, blank, layout="photo", detector=QuadDetector([]))
    assert result.lines == [] and result.to_text() == ""
    clutter = read_page(recognizer, blank, layout="photo", detector=QuadDetector([[[10, 10], [300, 10], [300, 60], [10, 60]]]))
    assert clutter.lines == []  # a box over noise reads with too little confidence to be text


def test_auto_sends_photos_to_the_detector_and_documents_to_the_line_finder(recognizer):
    photo, quads = scene()
    detector = QuadDetector(quads)
    assert read_page(recognizer, photo, detector=detector).layout == "photo" and detector.calls == 1
    page = np.full((900, 700), 250, np.uint8)
    Image.fromarray(page)
    document = Image.fromarray(page)
    ImageDraw.Draw(document).text((50, 100), "A plain document line", fill=0, font=ImageFont.truetype(FONT, 30))
    assert looks_like_document(np.asarray(document.convert("RGB"))) and not looks_like_document(photo)
    photographed_sheet = np.clip(np.asarray(document.convert("RGB")).astype(int) - 100, 0, 255).astype(np.uint8)
    assert not looks_like_document(photographed_sheet)  # the same sheet under room light: gray paper, not a scan
    result = read_page(recognizer, np.asarray(document), detector=detector)
    assert result.layout == "page" and detector.calls == 1 and result.lines[0].text == "A plain document line"
    crop = Image.fromarray(photo).crop((40, 100, 560, 190))
    assert read_page(recognizer, np.asarray(crop), detector=detector).layout in ("line", "word")  # crops stay crops


def test_a_small_photo_goes_to_the_detector_and_a_small_crop_does_not(recognizer):
    import cv2

    from crnn_ocr.page.reading import CROP_AREA, SMALL_PHOTO_MIN_SIDE

    photo, quads = scene()
    small = np.ascontiguousarray(cv2.resize(photo, (400, 252), interpolation=cv2.INTER_AREA))  # a thumbnail
    assert small.shape[0] * small.shape[1] <= CROP_AREA and min(small.shape[:2]) >= SMALL_PHOTO_MIN_SIDE
    detector = QuadDetector([q * 400 / 760 for q in quads])
    result = read_page(recognizer, small, detector=detector)
    assert detector.calls >= 1 and result.layout == "photo"
    assert [line.text for line in result.lines] == LINES
    cut = np.ascontiguousarray(small[60:140, 20:300])  # a strip cut out: under the minimum side, the line finder's
    detector.calls = 0
    assert read_page(recognizer, cut, detector=detector).layout != "photo" and detector.calls == 0


def test_a_small_photo_of_one_sign_goes_to_the_detector(recognizer):
    from crnn_ocr.page import reading
    from crnn_ocr.page.lines import find_lines, is_single_line

    ramp = np.linspace(0, 40, 320)[None, :, None]  # a sign's painted face: colour, not paper
    image = Image.fromarray((np.zeros((200, 320, 3)) + (60, 90, 140) + ramp).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = draw.textbbox((20, 30), "OPEN", font=ImageFont.truetype(FONT, 100))
    draw.text((20, 30), "OPEN", fill=(250, 240, 200), font=ImageFont.truetype(FONT, 100))
    sign = np.asarray(image)
    gray = sign.mean(axis=2).astype(np.uint8)
    assert is_single_line(gray, find_lines(gray))  # what made it a word crop before
    detector = QuadDetector([[[x0 - 4, y0 - 6], [x1 + 4, y0 - 6], [x1 + 4, y1 + 6], [x0 - 4, y1 + 6]]])
    result = read_page(recognizer, sign, detector=detector)
    assert result.layout == "photo" and detector.calls >= 1 and result.to_text() == "OPEN"
    wide = np.ascontiguousarray(np.concatenate([sign, sign[:, ::-1]], axis=1))  # 640 x 200: a word crop's shape
    assert 640 > reading.LINE_PHOTO_MAX_ASPECT * 200
    detector.calls = 0
    read_page(recognizer, wide, detector=detector)
    assert detector.calls == 0


def test_quads_turn_and_map_back_consistently():
    quad = np.array([[0, 0], [10, 0], [10, 2], [0, 2]], float)
    assert turn_quad(quad, 180)[0].tolist() == [10, 2]
    pts = np.array([[3.0, 4.0]])
    assert upright_points(pts, 180, 100, 50).tolist() == [[97.0, 46.0]]
    assert upright_points(upright_points(pts, 90, 100, 50), 270, 50, 100).tolist() == pts.tolist()


@pytest.mark.parametrize("orientation", [90, 270])
def test_a_turned_page_is_detected_upright_and_mapped_back(orientation):
    from crnn_ocr.page.detected import detect_turned_upright

    upright = np.zeros((60, 160, 3), np.uint8)
    upright[20:40, 10:110] = 255
    line = np.array([[10, 20], [110, 20], [110, 40], [10, 40]], float)  # the text's own TL, TR, BR, BL

    class SeesUpright:
        def detect(self, image, levels):
            assert np.array_equal(image, upright)
            return {"line": [Detection(line.tolist(), 0.9)]}

    turned = np.ascontiguousarray(np.rot90(upright, -orientation // 90))  # turned clockwise
    quads = detect_turned_upright(SeesUpright(), turned, orientation)
    h, w = turned.shape[:2]
    in_turned = [upright_points(np.array([p]), (360 - orientation) % 360, 160, 60)[0] for p in line]
    assert np.allclose(turn_quad(quads[0], orientation), in_turned)
    ink = np.argwhere(turned[..., 0] > 0)
    (y0, x0), (y1, x1) = ink.min(axis=0), ink.max(axis=0) + 1
    assert np.allclose(quads[0].min(axis=0), [x0, y0]) and np.allclose(quads[0].max(axis=0), [x1, y1])
    assert quads[0][0][1] == y0 and quads[0][0][0] == x0  # a visual quad: it starts at the top-left on screen


def test_a_single_upside_down_line_on_an_upright_photo_is_turned_back(recognizer):
    image, quads = scene()  # two lines: the page's orientation may go either way, each line is still read upright
    h, w = image.shape[:2]
    x0, y0 = quads[1][:, 0].min(), quads[1][:, 1].min()
    x1, y1 = quads[1][:, 0].max(), quads[1][:, 1].max()
    y0, y1, x0, x1 = int(y0), int(y1), int(x0), int(x1)
    image = image.copy()
    image[y0:y1, x0:x1] = image[y0:y1, x0:x1][::-1, ::-1]  # the second sign hangs upside down
    result = read_page(recognizer, image, layout="photo", detector=QuadDetector(quads))
    assert sorted(line.text for line in result.lines) == sorted(LINES)


class InkDetector:
    """Finds the ink of an image as one line, but, like the trained detector, not text that fills most of the
    image's height (a crop of one huge word)."""

    def __init__(self):
        self.sizes = []

    def detect(self, image, levels=None):
        self.sizes.append(image.shape[:2])
        gray = np.asarray(image).mean(axis=2) if np.asarray(image).ndim == 3 else np.asarray(image)
        ys, xs = np.nonzero(gray < 128)
        if not len(ys) or (ys.max() - ys.min()) > 0.4 * gray.shape[0]:
            return {"line": []}
        quad = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.max(), ys.max()], [xs.min(), ys.max()]],
                        np.float32) + [[-4, -4], [4, -4], [4, 4], [-4, 4]]
        return {"line": [Detection(quad, 0.9)]}


def test_a_word_filling_a_large_crop_is_found_again_small_and_read(recognizer):
    rng = np.random.default_rng(1)  # a sign photographed close up: textured, not paper
    image = Image.fromarray((rng.normal(0, 25, (520, 1700, 3)) + (170, 150, 90)).clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(image).text((60, 20), "observe", fill=(15, 15, 25), font=ImageFont.truetype(FONT, 380))
    detector = InkDetector()
    result = read_page(recognizer, np.asarray(image), detector=detector)
    assert len(detector.sizes) == 2 and max(detector.sizes[1]) < max(detector.sizes[0])  # looked again, smaller
    assert result.text == "observe"


def test_detect_large_text_maps_quads_back_to_the_image():
    from crnn_ocr.page.detected import detect_large_text

    image = np.full((600, 1800, 3), 240, np.uint8)
    image[150:450, 200:1600] = 10
    assert InkDetector().detect(image)["line"] == []
    quads = detect_large_text(InkDetector(), image, 256)
    assert len(quads) == 1
    x0, y0 = quads[0].min(axis=0)
    x1, y1 = quads[0].max(axis=0)
    margin = 4 * 1800 / 256 + 5  # the stand-in's 4-pixel margin, at the small scale
    assert abs(x0 - 200) < margin and abs(x1 - 1600) < margin and abs(y0 - 150) < margin and abs(y1 - 450) < margin
    assert detect_large_text(InkDetector(), image[:100, :200], 256) == []  # already small: nothing to gain


@pytest.mark.parametrize("ink, floor", [((200, 450, 300, 1500), "LARGE_TEXT_MIN_CONFIDENCE"),
                                        ((100, 500, 100, 1700), "FILLING_TEXT_MIN_CONFIDENCE")], ids=["part", "fills"])
def test_large_text_found_small_must_read_surely_unless_it_fills_the_image(recognizer, ink, floor):
    from crnn_ocr.page import reading

    image = np.full((600, 1800, 3), 240, np.uint8)
    top, bottom, left, right = ink  # too tall for the first look; with the box margins about 0.35 / 0.65 of the image
    for x in range(left, right, 200):  # letter strokes: the background stays the image's median colour
        image[top:bottom, x:x + 80] = 10
    plan = reading._plan(recognizer, image, "photo", None, None, 64, 0.2, detector=InkDetector())
    assert len(plan.jobs) == 1
    assert plan.min_confidence == getattr(reading, floor)
    assert reading.FILLING_TEXT_MIN_CONFIDENCE < reading.LARGE_TEXT_MIN_CONFIDENCE


class BlindDetector:
    """Finds nothing, or one small fragment, at every size (the trained detector on some close-ups of one word)."""

    def __init__(self, quads=()):
        self.quads = [np.asarray(q, np.float32) for q in quads]

    def detect(self, image, levels=None):
        if max(np.asarray(image).shape[:2]) < 600:  # the small second look finds nothing either
            return {"line": []}
        return {"line": [Detection(q, 0.9) for q in self.quads]}


def close_up(word: str = "safety") -> np.ndarray:
    rng = np.random.default_rng(2)  # a sign photographed close up: textured and coloured, not paper
    image = Image.fromarray((rng.normal(0, 25, (560, 1500, 3)) + (170, 150, 90)).clip(0, 255).astype(np.uint8))
    ImageDraw.Draw(image).text((80, 60), word, fill=(20, 30, 40), font=ImageFont.truetype(FONT, 330))
    return np.asarray(image)


@pytest.mark.parametrize("quads", [(), ([[700, 420], [760, 420], [760, 470], [700, 470]],)], ids=["none", "fragment"])
def test_a_close_up_the_detector_misses_is_read_whole_when_that_reads_surely(recognizer, quads):
    result = read_page(recognizer, close_up(), detector=BlindDetector(quads))
    assert result.text == "safety"


FRAGMENT = [[60, 40], [560, 40], [560, 470], [60, 470]]  # over "saf" of the close-up's "safety"
CORNERS = [[[1300, 480], [1480, 480], [1480, 550], [1300, 550]], [[10, 480], [60, 480], [60, 550], [10, 550]],
           [[1400, 5], [1490, 5], [1490, 50], [1400, 50]]]  # bare texture: read as clutter and dropped


@pytest.mark.parametrize("quads", [[FRAGMENT], [FRAGMENT, *CORNERS]], ids=["fragment", "fragment and clutter"])
def test_a_sure_fragment_of_a_large_word_gives_way_to_the_whole_reading(recognizer, quads):
    from crnn_ocr.page import read_pages

    fragment = read_pages(recognizer, [close_up()], "photo", detector=BlindDetector([FRAGMENT]))[0]
    assert 0 < len(fragment.text) < len("safety")  # what the detector's box alone gives
    assert read_page(recognizer, close_up(), detector=BlindDetector(quads)).text == "safety"


def test_a_long_word_the_detector_misses_at_every_size_is_kept_less_surely(recognizer, monkeypatch):
    from crnn_ocr.page import reading

    monkeypatch.setattr(reading, "LARGE_TEXT_MIN_CONFIDENCE", 1.01)  # whole readings of short text: never sure enough
    assert read_page(recognizer, close_up("safety"), detector=BlindDetector()).text == "safety"
    assert read_page(recognizer, close_up("sky"), detector=BlindDetector()).text == ""
    fragment = BlindDetector([[[700, 420], [760, 420], [760, 470], [700, 470]]])  # text found at the working size
    assert read_page(recognizer, close_up("safety"), detector=fragment).text != "safety"
    monkeypatch.setattr(reading, "LONG_WHOLE_TEXT", 7)
    assert read_page(recognizer, close_up("safety"), detector=BlindDetector()).text == ""


def test_a_textless_photo_the_detector_misses_still_prints_nothing(recognizer):
    rng = np.random.default_rng(3)
    image = (rng.normal(0, 30, (560, 1500, 3)) + (90, 120, 80)).clip(0, 255).astype(np.uint8)
    assert read_page(recognizer, image, detector=BlindDetector()).text == ""


def _line(text: str, confidence: float):
    from crnn_ocr.page.reading import LineResult

    return LineResult(text, confidence, (0, 0, 10, 10), ((0, 0), (10, 0), (10, 10), (0, 10)))


@pytest.mark.parametrize("text, confidence, layout, clutter", [
    ("1", 0.6, "photo", True), ("|", 0.85, "photo", True), (" I ", 0.5, "photo", True), ("1", 0.95, "photo", False),
    ("RM", 0.6, "page", False), ("I", 0.45, "page", True), ("12.00", 0.6, "photo", False),
    ("TOTAL", 0.3, "page", True), ("TOTAL", 0.45, "photo", False), ("", 0.45, "page", True)])
def test_weak_short_marks_are_clutter_and_words_are_not(text, confidence, layout, clutter):
    from crnn_ocr.page.reading import is_clutter

    assert is_clutter(_line(text, confidence), layout) is clutter


def test_specks_and_rules_on_a_page_print_no_weak_marks(recognizer):
    image = Image.new("L", (900, 500), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 28)
    texts = ["Fresh bread daily from our bakery", "Open until midnight every day", "Ask about our weekly offers"]
    for i, text in enumerate(texts):
        draw.text((120, 80 + 60 * i), text, font=font, fill=0)
    for x in (40, 60, 820):  # ruled lines in the margins
        draw.rectangle((x, 60, x + 4, 420), fill=0)
    draw.rectangle((300, 330, 306, 360), fill=0)
    draw.ellipse((500, 340, 512, 352), fill=0)  # a speck that reads as a weak "0"
    result = read_page(recognizer, np.asarray(image))
    assert result.layout == "page"
    assert [line.text for line in result.lines[:3]] == texts
    assert all(len(line.text.strip()) > 2 or line.confidence >= 0.5 for line in result.lines)
