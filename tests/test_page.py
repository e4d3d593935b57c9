"""Whole images: line finding on rendered pages with known lines, and page reading with a fake recogniser.

The pages are drawn here with Pillow and the bundled DejaVu fonts. Reading is checked with `BarReader`, a
deterministic stand-in for a CRNN that reads "bar text" (each letter a bar whose height encodes it) and, like a
real network, reads garbage where a chunk edge cuts a glyph: so chunk merging, ordering, word boxes and the output
formats are tested exactly, without a trained model and without asserting OCR accuracy.
"""

from __future__ import annotations

import json
import math
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import BUNDLED_FONTS
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.config import ModelConfig
from crnn_ocr.page import (
    PageResult,
    crop_line,
    find_lines,
    format_result,
    is_single_line,
    is_stack_of_lines,
    merge_chunks,
    plan_chunks,
    read_page,
    read_pages,
    recognize_page_cli,
)
from crnn_ocr.page.reading import TSV_HEADER
from crnn_ocr.recognize.base import TextRecognizer
from crnn_ocr.text.vocab import CharInfo, Prediction, Vocab

SANS = str(BUNDLED_FONTS / "DejaVuSans.ttf")
MONO = str(BUNDLED_FONTS / "DejaVuSansMono.ttf")
SERIF_BOLD = str(BUNDLED_FONTS / "DejaVuSerif-Bold.ttf")

PROSE = (
    "Line finding groups connected components into text lines, keeps columns apart and reads them in order. "
    "A recurrent network then reads each line from left to right and the connectionist temporal "
    "classification layer turns its column scores into characters with their positions on the page. "
    "Receipts, invoices and screenshots all hold lines of very different lengths and sizes, so the finder "
    "estimates the text height first and measures every gap against it."
).split()


@dataclass
class Page:
    image: np.ndarray  # uint8 (H, W)
    boxes: list[tuple[int, int, int, int]]  # ink bounds of every line, in reading order
    texts: list[str]


def wrap(words: list[str], font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, current = [], ""
    for w in words:
        trial = f"{current} {w}".strip()
        if current and font.getlength(trial) > width:
            lines.append(current)
            current = w
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def render(items: list[tuple[float, float, str, str, int]], size: tuple[int, int], bg: int = 255, fg: int = 0,
           angle: float = 0.0, boxes_fg: list[int] | None = None) -> Page:
    """Draw (x, y, text, font_path, font_size) items; boxes are ink bounds, after rotating by `angle` degrees."""
    page = Image.new("L", size, bg)
    draw = ImageDraw.Draw(page)
    boxes, texts = [], []
    for k, (x, y, text, font_path, font_size) in enumerate(items):
        font = ImageFont.truetype(font_path, font_size)
        color = fg if boxes_fg is None else boxes_fg[k]
        draw.text((x, y), text, font=font, fill=color)
        boxes.append(draw.textbbox((x, y), text, font=font))
        texts.append(text)
    ink = boxes
    if angle:
        w, h = size
        rotated = page.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=bg)
        W, H = rotated.size
        a = math.radians(angle)
        out = []
        for x0, y0, x1, y1 in ink:
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float) - [w / 2, h / 2]
            # PIL turns counter-clockwise on screen: (x, y) -> (x cos + y sin, -x sin + y cos) with y down.
            rx = corners[:, 0] * math.cos(a) + corners[:, 1] * math.sin(a) + W / 2
            ry = -corners[:, 0] * math.sin(a) + corners[:, 1] * math.cos(a) + H / 2
            out.append((int(rx.min()), int(ry.min()), int(math.ceil(rx.max())), int(math.ceil(ry.max()))))
        return Page(np.asarray(rotated), out, texts)
    return Page(np.asarray(page), [tuple(map(int, b)) for b in ink], texts)


def two_columns() -> Page:
    """Title across the page, two prose columns, a footer across the page."""
    font = ImageFont.truetype(SANS, 18)
    left = wrap(PROSE[:40], font, 360)
    right = wrap(PROSE[40:], font, 360)
    items = [(40, 30, "Two Columns of Text on One Page", SERIF_BOLD, 30)]
    y0 = 100
    items += [(40, y0 + 30 * i, t, SANS, 18) for i, t in enumerate(left)]
    items += [(460, y0 + 30 * i, t, SANS, 18) for i, t in enumerate(right)]
    y_end = y0 + 30 * max(len(left), len(right)) + 30
    items.append((40, y_end, "Page 1 of 1, printed for the line finder tests", SANS, 18))
    return render(items, (860, y_end + 60))


def rotated(angle: float = 3.0) -> Page:
    font = ImageFont.truetype(SANS, 20)
    lines = wrap(PROSE[:60], font, 620)
    items = [(50, 40 + 34 * i, t, SANS, 20) for i, t in enumerate(lines)]
    return render(items, (720, 80 + 34 * len(lines)), angle=angle)


def white_on_black() -> Page:
    font = ImageFont.truetype(SANS, 22)
    lines = wrap(PROSE[10:55], font, 560)
    items = [(30, 30, "DARK MODE", SERIF_BOLD, 34)]
    items += [(30, 95 + 36 * i, t, SANS, 22) for i, t in enumerate(lines)]
    return render(items, (640, 130 + 36 * len(lines)), bg=0, fg=255)


def receipt() -> Page:
    """Monospaced receipt: centred header, item rows with prices far right, long 60-character lines."""
    size = 16
    font = ImageFont.truetype(MONO, size)
    cw = font.getlength("M")
    width = int(cw * 64) + 40
    items: list[tuple[float, float, str, str, int]] = []
    y = 20

    def centre(text: str, font_size: int = size, path: str = MONO) -> None:
        nonlocal y
        f = ImageFont.truetype(path, font_size)
        items.append(((width - f.getlength(text)) / 2, y, text, path, font_size))
        y += int(font_size * 1.6)

    centre("CORNER STATIONERY SHOP", 24, SERIF_BOLD)
    centre("NO. 31G, JALAN SETIA INDAH 7, 40170 SHAH ALAM")
    centre("TEL: +603-3362 4137")
    y += 10
    rows = [("1 X PAPER A4 80GSM 500 SHEETS", "12.50"), ("2 X BALL PEN BLUE 0.7MM", "3.80"),
            ("1 X NOTEBOOK RULED 120 PAGES HARD COVER", "8.90"), ("TOTAL INCL. GST @6%", "25.20")]
    for desc, price in rows:
        items.append((20, y, desc, MONO, size))
        items.append((20 + cw * 64 - font.getlength(price), y, price, MONO, size))
        y += int(size * 1.6)
    y += 10
    long_lines = [
        "GOODS SOLD ARE NOT RETURNABLE OR REFUNDABLE AFTER THIRTY DAYS",
        "PLEASE KEEP THIS RECEIPT AS PROOF OF PURCHASE FOR THE WARRANTY",
    ]
    for t in long_lines:
        assert len(t) >= 60
        items.append((20, y, t, MONO, size))
        y += int(size * 1.6)
    page = render(items, (width, y + 30))
    # A dashed separator (not text) between the header and the items.
    img = page.image.copy()
    sep_y = items[2][1] + int(size * 1.6) + 2
    for x in range(20, width - 20, 12):
        img[sep_y:sep_y + 2, x:x + 7] = 0
    return Page(img, page.boxes, page.texts)


def banner() -> Page:
    """A light page with a dark title banner holding white text (a screenshot's header bar)."""
    items = [(30, 22, "Settings and Account", SANS, 26)]
    font = ImageFont.truetype(SANS, 18)
    lines = wrap(PROSE[:30], font, 540)
    items += [(30, 100 + 30 * i, t, SANS, 18) for i, t in enumerate(lines)]
    size = (620, 130 + 30 * len(lines))
    img = Image.new("L", size, 250)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, size[0], 72], fill=40)
    boxes = []
    for k, (x, y, text, path, fs) in enumerate(items):
        f = ImageFont.truetype(path, fs)
        draw.text((x, y), text, font=f, fill=240 if k == 0 else 20)
        boxes.append(tuple(map(int, draw.textbbox((x, y), text, font=f))))
    return Page(np.asarray(img), boxes, [it[2] for it in items])


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def match(found, truth, threshold: float = 0.5) -> list[int]:
    """For each true box, the index of the found box it best matches at IoU >= threshold, or -1."""
    out = []
    for t in truth:
        scores = [iou(f, t) for f in found]
        best = int(np.argmax(scores)) if scores else -1
        out.append(best if best >= 0 and scores[best] >= threshold else -1)
    return out


# ---------------------------------------------------------------------------------------------------------
# Bar text: letter k of BAR_ALPHABET is a bar BAR_W wide and 14 + 3k pixels high, standing on the baseline.

BAR_ALPHABET = "abcdefgh"
BAR_W, BAR_GAP, WORD_GAP = 5, 4, 16


def bar_height(ch: str) -> int:
    return 14 + 3 * BAR_ALPHABET.index(ch)


def draw_bars(img: np.ndarray, x: int, baseline: int, text: str, ink: int = 0) -> list[tuple[int, int, int, int]]:
    """Draw bar text into img; returns the box (x0, y0, x1, y1) of every word."""
    boxes = []
    for word in text.split(" "):
        x_start = x
        for ch in word:
            img[baseline - bar_height(ch):baseline, x:x + BAR_W] = ink
            x += BAR_W + BAR_GAP
        boxes.append((x_start, baseline - max(bar_height(c) for c in word), x - BAR_GAP, baseline))
        x += WORD_GAP - BAR_GAP
    return boxes


def bar_words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice(BAR_ALPHABET) for _ in range(rng.randint(2, 7))) for _ in range(n))


class BarReader(TextRecognizer):
    """A deterministic recogniser of bar text. A bar within 5 pixels of the left or right edge of its image (cut
    by a chunk boundary, or without context) reads as '?', as a real CRNN misreads a cut glyph; gaps wider than 10
    pixels read as spaces.
    Characters carry their pixel positions like `TextRecognizer.recognize_arrays` places them."""

    def __init__(self, channels: int = 1):
        super().__init__(forward=None, cfg=ModelConfig(height=32, channels=channels), vocab=Vocab(BAR_ALPHABET + "? "))
        self.calls: list[list[tuple[int, ...]]] = []
        self.raw: list[Prediction] = []

    def recognize_arrays(self, arrays):
        self.calls.append([a.shape for a in arrays])
        predictions = [self._read(np.asarray(a)) for a in arrays]
        self.raw.extend(predictions)
        return predictions

    @staticmethod
    def _read(a: np.ndarray) -> Prediction:
        gray = a if a.ndim == 2 else a.mean(axis=2)
        dark = gray < 128
        cols = np.concatenate([[False], dark.any(axis=0), [False]])
        edges = np.flatnonzero(cols[1:] != cols[:-1])
        chars: list[CharInfo] = []
        previous_end = None
        for s, e in zip(edges[::2], edges[1::2]):
            if previous_end is not None and s - previous_end > 10:
                chars.append(CharInfo(" ", 0.8, 0, 0, float(previous_end), float(s)))
            rows = np.flatnonzero(dark[:, s:e].any(axis=1))
            k = round((rows[-1] - rows[0] + 1 - 14) / 3)
            cut = s < 5 or e > dark.shape[1] - 5 or e - s > BAR_W + 2 or not 0 <= k < len(BAR_ALPHABET)
            chars.append(CharInfo("?" if cut else BAR_ALPHABET[k], 0.3 if cut else 0.95, 0, 0, float(s), float(e)))
            previous_end = e
        confidence = float(np.exp(np.mean(np.log([c.confidence for c in chars])))) if chars else 0.0
        return Prediction("".join(c.char for c in chars), confidence, chars, dark.shape[1])


@dataclass
class BarPage:
    image: np.ndarray
    lines: list[str]  # texts in reading order
    boxes: list[tuple[int, int, int, int]]  # line boxes in reading order
    rows: list[int]  # reading-order row of each line


def bar_page(kind: str, seed: int = 0) -> BarPage:
    """'columns': a heading, two columns, a footer. 'receipt': rows of an item and a price far right.
    'inverted': white bars on black."""
    rng = random.Random(seed)
    img = np.full((560, 900), 255, np.uint8)
    items: list[tuple[int, int, str, int]] = []  # x, baseline, text, row
    if kind == "columns":
        items.append((40, 60, bar_words(rng, 6), 0))
        for i in range(6):
            items.append((40, 130 + 50 * i, bar_words(rng, 5), 1 + i))
        for i in range(6):
            items.append((480, 130 + 50 * i, bar_words(rng, 5), 7 + i))
        items.append((40, 470, bar_words(rng, 7), 13))
    else:
        for i in range(8):
            items.append((40, 60 + 55 * i, bar_words(rng, 4), i))
            if i % 2 == 0:
                items.append((700, 60 + 55 * i, bar_words(rng, 1), i))
    ink = 255 if kind == "inverted" else 0
    if kind == "inverted":
        img[:] = 0
    boxes = []
    for x, baseline, text, _ in items:
        word_boxes = draw_bars(img, x, baseline, text, ink)
        boxes.append((word_boxes[0][0], min(b[1] for b in word_boxes), word_boxes[-1][2], baseline))
    return BarPage(img, [t for *_, t, _ in items], boxes, [r for *_, r in items])


def long_bar_line(seed: int = 1, words: int = 34) -> tuple[np.ndarray, str, list[tuple[int, int, int, int]]]:
    text = bar_words(random.Random(seed), words)
    width = sum(len(w) * (BAR_W + BAR_GAP) - BAR_GAP + WORD_GAP for w in text.split()) + 40
    img = np.full((60, width), 255, np.uint8)
    return img, text, draw_bars(img, 20, 48, text)


# ---------------------------------------------------------------------------------------------------------
# Line finding on rendered text pages.


def assert_lines_found(page: Page, lines) -> None:
    found = [line.box for line in lines]
    matched = match(found, page.boxes)
    missed = [page.texts[i] for i, j in enumerate(matched) if j < 0]
    assert not missed, f"lines not found: {missed}; found boxes {found}"
    assert matched == list(range(len(page.boxes))), f"reading order {matched}"
    assert len(found) == len(page.boxes), f"extra lines: {[found[j] for j in set(range(len(found))) - set(matched)]}"


@pytest.mark.parametrize("make", [two_columns, white_on_black, receipt, banner])
def test_find_lines_on_rendered_pages(make):
    assert_lines_found(make(), find_lines(make().image))


@pytest.mark.parametrize("angle", [3.0, -2.5])
def test_find_lines_on_rotated_page(angle):
    page = rotated(angle)
    lines = find_lines(page.image)
    assert_lines_found(page, lines)
    assert all(abs(line.angle - angle) <= 0.3 for line in lines)
    # The quads follow the text: the top edge rises (for a positive angle) by about tan(angle) per pixel.
    (ax, ay), (bx, by) = lines[0].quad[0], lines[0].quad[1]
    assert math.degrees(math.atan2(ay - by, bx - ax)) == pytest.approx(angle, abs=0.3)


def test_columns_are_read_column_by_column_and_receipt_rows_left_to_right():
    lines = find_lines(two_columns().image)
    blocks = [line.block for line in lines]
    assert blocks == sorted(blocks) and len(set(blocks)) == 4  # heading, left column, right column, footer
    rows = [line.row for line in find_lines(receipt().image)]
    # Item and price of one receipt row share a row number; rows go top to bottom.
    assert rows == sorted(rows) and len(set(rows)) == len(rows) - 4


@pytest.mark.parametrize("image", [
    np.zeros((0, 0), np.uint8), np.zeros((0, 40), np.uint8), np.zeros((1, 1), np.uint8),
    np.full((3, 3), 255, np.uint8), np.full((300, 400), 255, np.uint8), np.zeros((300, 400), np.uint8),
    np.full((300, 400, 3), 128, np.uint8),
], ids=["0x0", "0x40", "1x1", "3x3", "white", "black", "gray-rgb"])
def test_empty_and_blank_images_have_no_lines(image):
    assert find_lines(image) == []


def test_sparse_noise_is_not_text():
    rng = np.random.default_rng(0)
    img = np.full((400, 600), 255, np.uint8)
    ys, xs = rng.integers(0, 400, 300), rng.integers(0, 600, 300)
    img[ys, xs] = 0  # salt-and-pepper specks
    assert find_lines(img) == []


def test_text_filter_drops_rejected_lines():
    page = two_columns()
    widths = []

    def only_narrow(crops):
        widths.extend(c.shape[1] for c in crops)
        return [c.shape[1] < 400 for c in crops]

    all_lines = find_lines(page.image)
    kept = find_lines(page.image, text_filter=only_narrow)
    assert len(widths) == len(all_lines)
    assert 0 < len(kept) < len(all_lines)
    assert all(line.x1 - line.x0 < 400 for line in kept)
    with pytest.raises(ValueError):
        find_lines(page.image, text_filter=lambda crops: [True])


def test_is_single_line():
    img, _, _ = long_bar_line()
    assert is_single_line(img)
    word = Image.new("L", (220, 60), 255)
    ImageDraw.Draw(word).text((10, 8), "Receipt", font=ImageFont.truetype(SANS, 40), fill=0)
    assert is_single_line(np.asarray(word))
    assert not is_single_line(two_columns().image)
    assert not is_single_line(np.full((200, 300), 255, np.uint8))
    assert not is_single_line(np.zeros((0, 0), np.uint8))


def stacked_snippet(rows: int = 2, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A crop-sized image holding `rows` short lines of bar text, 31 pixels apart (as two receipt lines cut out)."""
    rng = random.Random(seed)
    texts = [" ".join("".join(rng.choice("cde") for _ in range(rng.randint(3, 6))) for _ in range(3)) for _ in range(rows)]
    img = np.full((31 * rows + 2, 300), 255, np.uint8)
    for k, text in enumerate(texts):
        draw_bars(img, 12, 30 + 31 * k, text)
    return img, texts


def test_a_few_stacked_lines_in_a_small_image_are_read_line_by_line():
    img, texts = stacked_snippet(2)
    assert img.shape[0] <= 64 and is_single_line(img)  # small enough to pass for one line
    assert is_stack_of_lines(*img.shape, find_lines(img))
    result = read_page(BarReader(), img)
    assert result.layout == "page"
    assert [line.text for line in result.lines] == texts
    three, texts = stacked_snippet(3, seed=1)
    assert [line.text for line in read_page(BarReader(), three).lines] == texts


def test_a_word_with_clutter_is_not_a_stack_of_lines():
    img, text, _ = long_bar_line(words=4)
    cluttered = np.vstack([np.full((12, img.shape[1]), 255, np.uint8), img])
    cluttered[2:10, 20:60] = 0  # a narrow stripe above the word
    lines = find_lines(cluttered)
    assert not is_stack_of_lines(*cluttered.shape, lines)
    assert [line.text for line in read_page(BarReader(), cluttered).lines] == [text]
    assert not is_stack_of_lines(*two_columns().image.shape, [])


class ShapeReader(BarReader):
    """Reads the image it is given whole (as tall as the input) as `whole`, any smaller crop as `part`, both at
    fixed confidences: a page reading and a whole-image reading of one small image with known outcomes."""

    def __init__(self, height: int, whole: tuple[str, float], part: tuple[str, float]):
        super().__init__()
        self.height, self.whole, self.part = height, whole, part

    def recognize_arrays(self, arrays):
        out = []
        for a in arrays:
            text, confidence = self.whole if a.shape[0] == self.height else self.part
            step = a.shape[1] / max(1, len(text))
            chars = [CharInfo(c, confidence, k, k + 1, k * step, (k + 1) * step) for k, c in enumerate(text)]
            out.append(Prediction(text, confidence, chars, len(text)))
        return out


@pytest.mark.parametrize("part, expected", [(("ab", 0.99), "abcdefgh"),      # a surer fragment: the whole wins
                                            (("abcdefgh", 0.99), "abcdefgh abcdefgh")])  # a surer, fuller page
def test_a_small_image_read_as_a_page_keeps_the_whole_reading_when_the_page_reads_less(part, expected):
    img, _ = stacked_snippet(2)
    img = np.vstack([img, np.full((40, img.shape[1]), 255, np.uint8)])  # taller than 64 px: not a line by size
    reader = ShapeReader(img.shape[0], whole=("abcdefgh", 0.9), part=part)
    result = read_page(reader, img)
    assert " ".join(line.text for line in result.lines) == expected


# ---------------------------------------------------------------------------------------------------------
# Reading: chunks, merging, order, words, formats.


def test_plan_chunks_cover_the_line_with_overlap():
    chunks = plan_chunks(3000, 48, 32, 400, 64)
    assert chunks[0][0] == 0 and chunks[-1][1] == 3000
    assert all(e - s == 600 for s, e in chunks)  # 400 model px at 32/48 scale
    assert all(a_end - b_start >= 96 for (_, a_end), (b_start, _) in zip(chunks, chunks[1:]))  # >= 64 model px
    assert plan_chunks(3000, 48, 32, None) == [(0, 3000)]


def test_merge_chunks_drops_edge_garbage_and_duplicates():
    ink = np.ones(200, np.int64)
    ink[[30, 31, 32, 33, 34, 35, 36, 37, 38, 39]] = 0  # blank in 30..40 is outside both overlaps' middles
    ink[100:120] = 0  # a word gap in the overlap [80, 140)
    left = Prediction("abc d?", 0.5, [CharInfo("a", .9, 0, 0, 0, 10), CharInfo("b", .9, 0, 0, 12, 22),
                                      CharInfo("c", .9, 0, 0, 60, 70), CharInfo(" ", .9, 0, 0, 70, 100),
                                      CharInfo("d", .9, 0, 0, 122, 130), CharInfo("?", .2, 0, 0, 132, 140)], 140)
    right = Prediction("?d ef", 0.5, [CharInfo("?", .2, 0, 0, 0, 8), CharInfo("d", .9, 0, 0, 42, 50),
                                      CharInfo("e", .9, 0, 0, 60, 70), CharInfo("f", .9, 0, 0, 100, 110)], 120)
    merged = merge_chunks([(0, 140, left), (80, 200, right)], ink, space_width=8)
    assert "".join(c.char for c in merged) == "abc def"
    assert [c.x0 for c in merged if c.char == "e"] == [140]  # positions in line pixels


def test_long_line_is_read_in_chunks_and_merged():
    img, text, word_boxes = long_bar_line()
    assert len(text) >= 150
    reader = BarReader()
    page = read_page(reader, img, layout="line", chunk_width=400)
    assert len(reader.calls) == 1 and len(reader.calls[0]) >= 3
    assert all(shape[1] < img.shape[1] for shape in reader.calls[0])
    assert any("?" in p.text for p in reader.raw)  # chunk edges were misread ...
    assert page.layout == "line" and len(page.lines) == 1
    assert page.lines[0].text == text  # ... and the merge dropped them
    words = page.lines[0].words
    assert [w.text for w in words] == text.split()
    from crnn_ocr.page.reading import WORD_BOX_MARGIN

    for w, (x0, y0, x1, y1) in zip(words, word_boxes):  # the ink's box and a margin of a tenth of its height
        m = WORD_BOX_MARGIN * (y1 - y0)
        assert np.allclose(w.box, (x0 - m, y0 - m, x1 + m, y1 + m), atol=1.5), (w.text, w.box, (x0, y0, x1, y1))
    assert [c.char for c in page.lines[0].chars] == [c for c in text if c != " "]
    # Read whole (no chunks) it gives the same text.
    assert read_page(BarReader(), img, layout="line", chunk_width=0).lines[0].text == text
    assert read_page(BarReader(), img, layout="auto").lines[0].text == text


def test_word_rows_leave_out_rules_and_the_neighbouring_lines_ink():
    from crnn_ocr.page.reading import word_rows

    dark = np.zeros((40, 60), bool)
    dark[12:26, 5:55:3] = True  # the word's letters, rows 12-25
    dark[10, 20] = True  # an i's dot, one row above them
    dark[4:7, 30:33] = True  # a descender of the line above, reaching into the band
    dark[28, :] = True  # the form's rule under the word
    assert word_rows(dark, (6, 29)) == (10, 26)
    assert word_rows(dark[:, :8], (6, 29)) == (12, 29)  # too narrow to tell a rule from a letter's bar
    assert word_rows(np.zeros((40, 60), bool), (6, 29)) == (6, 29)  # no ink: the band


@pytest.mark.parametrize("kind", ["columns", "receipt", "inverted"])
def test_read_page_in_reading_order(kind):
    page = bar_page(kind, seed=3)
    reader = BarReader()
    result = read_page(reader, page.image)
    assert result.layout == "page"
    assert [line.text for line in result.lines] == page.lines
    assert len(reader.calls) == 1  # every line of the page in one batch
    for line, box in zip(result.lines, page.boxes):
        assert match([line.box], [box]) == [0]
        for word in line.words:
            assert line.box[0] - 1 <= word.box[0] < word.box[2] <= line.box[2] + 1
    # Text output: one output line per row, a row's segments joined by a space.
    rows: dict[int, list[str]] = {}
    for text, row in zip(page.lines, page.rows):
        rows.setdefault(row, []).append(text)
    assert [ln for ln in result.to_text().split("\n") if ln] == [" ".join(v) for _, v in sorted(rows.items())]


@pytest.mark.parametrize("channels", [1, 3])
def test_rotated_page_is_read_upright(channels):
    page = bar_page("receipt", seed=5)
    rotated_img = np.asarray(Image.fromarray(page.image).rotate(3, resample=Image.BICUBIC, expand=True,
                                                                fillcolor=255))
    if channels == 3:
        rotated_img = np.repeat(rotated_img[..., None], 3, axis=2)
    reader = BarReader(channels)
    result = read_page(reader, rotated_img, layout="page")
    assert all(len(shape) == (3 if channels == 3 else 2) for shape in reader.calls[0])
    assert result.angle == pytest.approx(3, abs=0.3)
    assert [line.text for line in result.lines] == page.lines


def test_output_formats():
    page = bar_page("receipt", seed=7)
    result = read_page(BarReader(), page.image)
    words = [w for line in result.lines for w in line.words]
    assert words

    record = json.loads(result.to_json())
    assert record["text"] == result.to_text()
    assert [w["text"] for ln in record["lines"] for w in ln["words"]] == [w.text for w in words]
    assert record["lines"][0]["words"][0]["box"] == list(result.lines[0].words[0].box)
    assert 0 < record["confidence"] <= 1

    tsv = result.to_tsv().rstrip("\n").split("\n")
    assert tsv[0] == TSV_HEADER
    rows = [r.split("\t") for r in tsv[1:]]
    assert all(len(r) == 12 for r in rows)
    assert rows[0][:1] == ["1"] and rows[0][6:10] == ["0", "0", str(result.width), str(result.height)]
    word_rows = [r for r in rows if r[0] == "5"]
    assert [r[11] for r in word_rows] == [w.text for w in words]
    assert [tuple(int(v) for v in r[6:10]) for r in word_rows] == [
        (w.box[0], w.box[1], w.box[2] - w.box[0], w.box[3] - w.box[1]) for w in words]
    assert all(0 <= float(r[10]) <= 100 for r in word_rows)
    assert sum(r[0] == "4" for r in rows) == len(result.lines)

    root = ET.fromstring(result.to_hocr(title="receipt.png"))
    spans = [e for e in root.iter() if e.get("class") == "ocrx_word"]
    assert [e.text for e in spans] == [w.text for w in words]
    assert spans[0].get("title").startswith("bbox " + " ".join(map(str, words[0].box)))
    assert sum(e.get("class") == "ocr_line" for e in root.iter()) == len(result.lines)


@pytest.mark.parametrize("layout", ["auto", "page", "line", "word"])
def test_empty_and_blank_images_give_empty_results(layout):
    reader = BarReader()
    for image in (np.zeros((0, 0), np.uint8), np.full((300, 400), 255, np.uint8), np.zeros((40, 40), np.uint8)):
        result = read_page(reader, image, layout=layout)
        assert isinstance(result, PageResult) and result.lines == [] and result.to_text() == ""
        assert result.to_tsv().count("\n") == 2  # header and the page row
        ET.fromstring(result.to_hocr())
        json.loads(result.to_json())
    assert reader.calls == []  # nothing was sent to the recogniser


def test_recognize_page_cli_prints_every_format():
    page = bar_page("columns", seed=2)
    line_img, line_text, _ = long_bar_line(seed=4, words=6)
    inputs = [("page.png", page.image, None), ("bad.png", None, "bad.png: not an image"),
              ("line.png", line_img, None)]
    out: list[str] = []
    err: list[str] = []
    failures = recognize_page_cli(BarReader(), inputs, output="text", out=out.append, err=err.append,
                                  progress=False)
    assert failures == 1 and err == ["error: bad.png: not an image"]
    assert out[0].split("\n")[0] == f"page.png\t{page.lines[0]}"  # one row per line of the page, each with its name
    assert all(row.startswith("page.png\t") for row in out[0].split("\n")) and len(out[0].split("\n")) >= 2
    assert out[1] == f"line.png\t{line_text}"

    out.clear()
    recognize_page_cli(BarReader(), inputs, output="json", out=out.append, err=err.append, progress=False)
    records = [json.loads(o) for o in out]
    assert [r["path"] for r in records] == ["page.png", "line.png"]
    assert [r["layout"] for r in records] == ["page", "line"]

    out.clear()
    recognize_page_cli(BarReader(), inputs, output="tsv", out=out.append, err=err.append, progress=False)
    lines = "\n".join(out).split("\n")
    assert lines.count(TSV_HEADER) == 1
    assert {r.split("\t")[1] for r in lines[1:]} == {"1", "2"}

    out.clear()
    recognize_page_cli(BarReader(), inputs, output="hocr", out=out.append, err=err.append, progress=False)
    root = ET.fromstring("\n".join(out))
    assert sum(e.get("class") == "ocr_page" for e in root.iter()) == 2
    assert format_result("x.png", read_pages(BarReader(), [line_img])[0], "text", single=True) == line_text


def test_crop_line_is_upright_and_maps_back():
    page = bar_page("receipt", seed=9)
    rotated_img = np.asarray(Image.fromarray(page.image).rotate(-2, resample=Image.BICUBIC, expand=True,
                                                                fillcolor=255))
    line = find_lines(rotated_img)[0]
    crop, to_image = crop_line(rotated_img, line)
    dark_rows = np.flatnonzero((crop < 128).any(axis=1))
    # Upright: the ink spans about the tallest bar, not the tallest bar plus the drift of a tilted line.
    assert dark_rows[-1] - dark_rows[0] + 1 <= bar_height("h") + 3
    corners = np.array([[0, 0, 1], [crop.shape[1], crop.shape[0], 1]], float) @ to_image.T
    assert corners[0][0] <= line.x0 + 1 and corners[0][1] <= line.y0 + 1 + line.width * math.tan(math.radians(2))


def test_page_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, crnn_ocr.page; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_page_of_noise_is_given_up_with_a_warning_not_minutes_of_junk():
    from crnn_ocr.page.command import recognize_page_cli

    noise = np.where(np.random.default_rng(0).random((1000, 1000)) < 0.1, 0, 255).astype(np.uint8)
    result = read_page(BarReader(), noise, layout="page")
    assert result.lines == [] and "too noisy" in result.warnings[0] and result.to_dict()["warnings"]
    out, err = [], []
    assert recognize_page_cli(BarReader(), [("noise.png", noise, None)], out=out.append, err=err.append,
                              progress=False) == 0
    assert err == [f"warning: noise.png: {result.warnings[0]}"] and out == ["noise.png\t"]


def test_recognize_batches_are_bounded_by_decoded_pixels(monkeypatch):
    import crnn_ocr.page.command as command

    seen = []
    real = command.read_pages

    def spy(recognizer, arrays, *args, **kwargs):
        seen.append(sum(a.shape[0] * a.shape[1] for a in arrays))
        return real(recognizer, arrays, *args, **kwargs)

    monkeypatch.setattr(command, "read_pages", spy)
    crops = [(f"{i}.png", np.full((40, 2500), 255, np.uint8), None) for i in range(10)]  # 100,000 pixels each
    out = []
    assert command.recognize_page_cli(BarReader(), crops, layout="word", out=out.append, progress=False,
                                      batch_pixels=250_000) == 0
    assert len(out) == 10 and max(seen) <= 300_000 and len(seen) >= 4  # never more than the budget plus one image


def test_a_page_with_more_lines_than_the_limit_reads_the_first_ones_and_says_so():
    from crnn_ocr.page.limits import Limits

    page = bar_page("columns", seed=2)
    full = read_page(BarReader(), page.image, layout="page")
    capped = read_page(BarReader(), page.image, layout="page", limits=Limits(max_lines=2))
    assert len(full.lines) > 2 and [line.text for line in capped.lines] == [line.text for line in full.lines[:2]]
    assert capped.warnings == [f"{len(full.lines)} line candidates: read the first 2 in reading order"]


def test_grow_quad_moves_every_side_out_along_the_quads_own_axes():
    from crnn_ocr.page.reading import grow_quad

    assert np.allclose(grow_quad(((10, 20), (50, 20), (50, 30), (10, 30)), 2), ((8, 18), (52, 18), (52, 32), (8, 32)))
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    turned = np.array([[0, 0], [40 * c, 40 * s], [40 * c - 10 * s, 40 * s + 10 * c], [-10 * s, 10 * c]])
    grown = np.asarray(grow_quad(turned, 1.0))
    assert np.isclose(np.linalg.norm(grown[1] - grown[0]), 42) and np.isclose(np.linalg.norm(grown[3] - grown[0]), 12)
    assert np.allclose(grown.mean(axis=0), turned.mean(axis=0))


def test_scale_across_changes_a_quads_height_about_its_centre_line_and_keeps_its_length():
    from crnn_ocr.page.reading import scale_across

    assert np.allclose(scale_across(((10, 20), (50, 20), (50, 40), (10, 40)), 0.9), ((10, 21), (50, 21), (50, 39), (10, 39)))
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    turned = np.array([[0, 0], [40 * c, 40 * s], [40 * c - 10 * s, 40 * s + 10 * c], [-10 * s, 10 * c]])
    half = np.asarray(scale_across(turned, 0.5))
    assert np.isclose(np.linalg.norm(half[1] - half[0]), 40) and np.isclose(np.linalg.norm(half[3] - half[0]), 5)
    assert np.allclose(half.mean(axis=0), turned.mean(axis=0))
