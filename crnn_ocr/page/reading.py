"""Reading whole images: lines found by `find_lines`, each read by a CRNN, long ones in overlapping chunks.

`read_page(recognizer, image)` works with any `crnn_ocr.recognize.base.TextRecognizer` (torch or ONNX); nothing
here imports torch.

>>> # from crnn_ocr.recognize.torch_backend import TorchRecognizer
>>> # page = read_page(TorchRecognizer.from_checkpoint("weights/crnn_default.pt"), "receipt.jpg")
>>> # print(page.to_text()); page.to_json(); page.to_tsv(); page.to_hocr()
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from crnn_ocr.errors import TooComplexError
from crnn_ocr.image.io import ImageInput, read_image
from crnn_ocr.image.preprocess import to_gray
from crnn_ocr.page.detected import (
    choose_orientation,
    detect_large_text,
    detect_turned_upright,
    line_box,
    looks_like_document,
    plan_lines,
)
from crnn_ocr.page.limits import Clocks, Limits, recognize_within
from crnn_ocr.page.lines import LineBox, TextFilter, apply_filter, crop_line, find_lines, is_single_line, is_stack_of_lines
from crnn_ocr.text.vocab import CharInfo, Prediction

LAYOUTS = ("auto", "page", "photo", "line", "word")
CROP_AREA = 150_000  # pixels: 99% of the word crops of the IIIT5K, IC15 and SVT training splits are smaller
SMALL_PHOTO_MIN_SIDE = 160  # px: a small image (at most CROP_AREA) the line finder takes for a page goes to the
# detector when both its sides are this long and it does not look like a document (word crops rarely are) ...
LINE_PHOTO_MAX_ASPECT = 2.0  # ... and so does one it takes for a single line when it is at most this much wider than
# high (a thumbnail of a sign; a word crop that large is wider)
FLIP_MARGIN = 0.05  # a photo's line read turned round replaces the first reading when this much surer
QUAD_MIN_ANGLE = 3.0  # degrees: lines turned less than this give upright word boxes as their quads
PHOTO_MIN_CONFIDENCE = 0.4  # lines read from detected boxes below this are taken for non-text and dropped
PAGE_MIN_CONFIDENCE = 0.4  # the same for lines the line finder found on pages
SHORT_TEXT = 2  # characters: lines this short (a "1", an "I", a "|") must read surely to be kept on pages and photos
SHORT_MIN_CONFIDENCE = {"page": 0.5, "photo": 0.9}  # documents keep more: a receipt's "RM" or "X" is text
LARGE_TEXT_SIDE = 256  # where the detector finds nothing, it looks again at the image this small (text filling it)
LARGE_TEXT_MIN_CONFIDENCE = 0.8  # lines found only at that small size must read this surely (else clutter) ...
LARGE_TEXT_FILLS = 0.5  # ... or, where one covers this share of the image (a large crop of it), this surely:
FILLING_TEXT_MIN_CONFIDENCE = 0.7
CROP_COVER = 0.25  # a line whose box covers this share of the image makes the image a crop of it
FEW_LINES = 3  # a large image read as a photo or a page into at most this many lines may be a large crop of one
WHOLE_MAX_CANDIDATES = 8  # ... so it is read whole too when it held at most this many candidate lines before some
# were dropped as clutter
LONGER_MARGIN = 0.05  # the whole reading of a large image also wins when it reads more characters and is at most
# this much less sure (the detector's box over a large word often holds only part of it: "ORO" of "DOROT")
LONG_WHOLE_TEXT = 5  # characters, not all alike: where the detector finds nothing at its working size, a whole
LONG_WHOLE_MIN_CONFIDENCE = 0.5  # reading this long is a word too large for it, not a texture, from this confidence
WORD_BOX_MARGIN = 0.1  # word boxes (and page lines) reach this share of their height beyond the ink on every side, as
# annotators draw them (training images at IoU 0.5, tight -> 0.1: FUNSD words hmean 0.714 -> 0.766, SROIE lines 0.854 -> 0.870;
# benchmarks/results/clutter.md)
RULE_SHARE = 0.97  # a row inked across this share of a word's width is a rule through or under it, not its letters
RULE_MIN_WIDTH = 12  # pixels: narrower words (an "l", a "-") may be inked across any row
WORD_ROW_GAP = 0.08  # share of the text band: ink this far above or below a word's letters is still part of it
PHOTO_BOX_HEIGHT = 0.9  # a detected photo line, and its words, reported at this share of the height the detector gives
# (its boxes run taller than annotators draw them; training photos at IoU 0.5, 1.0 -> 0.9: MSRA-TD500 lines H 0.661 ->
# 0.678 on the first 200, 0.577 -> 0.597 on the next 100; Street View words recall 0.603 -> 0.615)
OUTPUT_FORMATS = ("text", "json", "tsv", "hocr", "alto")
TSV_HEADER = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"

Box = tuple[int, int, int, int]


@dataclass
class CharResult:
    """One character, placed on the image from its CTC frames (approximate: CTC marks where, not how wide)."""

    char: str
    confidence: float
    box: Box

    def to_dict(self) -> dict:
        return {"char": self.char, "confidence": round(self.confidence, 4), "box": list(self.box)}


Quad = tuple[tuple[float, float], ...]


@dataclass
class WordResult:
    """A run of characters between spaces; its box is snapped to the ink around its characters.

    `box` is axis-aligned (x0, y0, x1, y1); `quad` the word's own 4 corners (clockwise from the top-left of
    the text), which differ from the box on rotated or skewed lines.
    """

    text: str
    confidence: float
    box: Box
    quad: Quad | None = None

    def __post_init__(self) -> None:
        if self.quad is None:
            x0, y0, x1, y1 = self.box
            self.quad = ((float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)), (float(x0), float(y1)))

    def to_dict(self) -> dict:
        return {"text": self.text, "confidence": round(self.confidence, 4), "box": list(self.box),
                "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad]}


@dataclass
class LineResult:
    """One line read from the image. `box` is (x0, y0, x1, y1) in image pixels; `quad` the rotated rectangle."""

    text: str
    confidence: float
    box: Box
    quad: tuple[tuple[float, float], ...]
    words: list[WordResult] = field(default_factory=list)
    chars: list[CharResult] = field(default_factory=list)
    block: int = 0
    row: int = 0
    angle: float = 0.0
    inverted: bool = False

    def to_dict(self, chars: bool = True) -> dict:
        out = {"text": self.text, "confidence": round(self.confidence, 4), "box": list(self.box),
               "quad": [[round(x, 1), round(y, 1)] for x, y in self.quad], "block": self.block, "row": self.row,
               "angle": self.angle, "inverted": self.inverted, "words": [w.to_dict() for w in self.words]}
        if chars:
            out["chars"] = [c.to_dict() for c in self.chars]
        return out


@dataclass
class PageResult:
    """Everything read from one image, in reading order.

    `layout` is how the image was treated: "page" (lines found and read), "line" (the whole image is one line,
    read in chunks if long) or "word" (the whole image read at once).
    """

    width: int
    height: int
    layout: str
    lines: list[LineResult] = field(default_factory=list)
    angle: float = 0.0
    orientation: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.to_text()

    @property
    def confidence(self) -> float:
        """Mean line confidence weighted by line length (0 when nothing was read)."""
        weights = [len(line.text) for line in self.lines if line.text]
        if not weights:
            return 0.0
        return float(sum(len(ln.text) * ln.confidence for ln in self.lines if ln.text) / sum(weights))

    def to_text(self) -> str:
        """The text: one row per output line (a row's segments joined by a space), a blank line between blocks."""
        out: list[str] = []
        previous_block = None
        row_key = None
        for line in self.lines:
            if not line.text:
                continue
            if previous_block is not None and line.block != previous_block:
                out.append("")
            if (line.block, line.row) == row_key and out:
                out[-1] += " " + line.text
            else:
                out.append(line.text)
            previous_block, row_key = line.block, (line.block, line.row)
        return "\n".join(out)

    def to_dict(self, chars: bool = True) -> dict:
        return {"width": self.width, "height": self.height, "layout": self.layout, "angle": self.angle,
                "orientation": self.orientation, **({"warnings": self.warnings} if self.warnings else {}),
                "text": self.to_text(), "confidence": round(self.confidence, 4),
                "lines": [line.to_dict(chars) for line in self.lines]}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    def to_tsv(self, page_num: int = 1, header: bool = True) -> str:
        """Tesseract's TSV: level (1 page, 2 block, 3 paragraph, 4 line, 5 word), numbering, box, conf, text."""
        rows = [TSV_HEADER] if header else []

        def row(level, block, par, line, word, box, conf, text=""):
            x0, y0, x1, y1 = box
            rows.append(f"{level}\t{page_num}\t{block}\t{par}\t{line}\t{word}\t{x0}\t{y0}\t{x1 - x0}\t{y1 - y0}\t"
                        f"{conf}\t{text}")

        row(1, 0, 0, 0, 0, (0, 0, self.width, self.height), -1)
        for b, lines in enumerate(self._blocks(), 1):
            block_box = _union([ln.box for ln in lines])
            row(2, b, 0, 0, 0, block_box, -1)
            row(3, b, 1, 0, 0, block_box, -1)
            for n, line in enumerate(lines, 1):
                row(4, b, 1, n, 0, line.box, -1)
                for k, word in enumerate(line.words, 1):
                    text = word.text.replace("\t", " ").replace("\n", " ")
                    row(5, b, 1, n, k, word.box, f"{100 * word.confidence:.2f}", text)
        return "\n".join(rows) + "\n"

    def to_hocr(self, page_num: int = 1, title: str = "", standalone: bool = True) -> str:
        """hOCR (HTML with ocr_page, ocr_carea, ocr_par, ocr_line and ocrx_word elements, bbox and x_wconf)."""
        p = page_num
        name = html.escape(title, quote=True).replace("&#x27;", "'")
        out = [f'  <div class="ocr_page" id="page_{p}" title="image &quot;{name}&quot;; bbox 0 0 {self.width} '
               f'{self.height}; ppageno {p - 1}">']
        for b, lines in enumerate(self._blocks(), 1):
            bbox = " ".join(map(str, _union([ln.box for ln in lines])))
            out.append(f'   <div class="ocr_carea" id="block_{p}_{b}" title="bbox {bbox}">')
            out.append(f'    <p class="ocr_par" id="par_{p}_{b}" title="bbox {bbox}">')
            for n, line in enumerate(lines, 1):
                lb = " ".join(map(str, line.box))
                angle = f"; textangle {line.angle:g}" if line.angle else ""
                out.append(f'     <span class="ocr_line" id="line_{p}_{b}_{n}" title="bbox {lb}{angle}; '
                           f'x_wconf {round(100 * line.confidence)}">')
                for k, word in enumerate(line.words, 1):
                    wb = " ".join(map(str, word.box))
                    out.append(f'      <span class="ocrx_word" id="word_{p}_{b}_{n}_{k}" title="bbox {wb}; '
                               f'x_wconf {round(100 * word.confidence)}">{html.escape(word.text, quote=False)}</span>')
                out.append("     </span>")
            out.append("    </p>")
            out.append("   </div>")
        out.append("  </div>")
        body = "\n".join(out)
        return hocr_document([body]) if standalone else body

    def to_alto(self, name: str = "") -> str:
        """This page as a complete ALTO v4 document (`crnn_ocr.page.alto`)."""
        from crnn_ocr.page.alto import alto_document

        return alto_document([(name, self)])

    def _blocks(self) -> list[list[LineResult]]:
        blocks: list[list[LineResult]] = []
        previous = None
        for line in self.lines:
            if not line.text:
                continue
            if line.block != previous or not blocks:
                blocks.append([])
            blocks[-1].append(line)
            previous = line.block
        return blocks


def hocr_document(pages: Sequence[str]) -> str:
    """Wrap the `to_hocr(standalone=False)` bodies of one or more pages into one hOCR document."""
    from crnn_ocr import __version__

    head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
            '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title></title>\n'
            '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>\n'
            f'  <meta name="ocr-system" content="crnn_ocr {__version__}"/>\n'
            '  <meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"/>\n'
            ' </head>\n <body>\n')
    return head + "\n".join(pages) + "\n </body>\n</html>\n"


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


# ---------------------------------------------------------------------------------------------------------
# Chunks: long lines are read in overlapping pieces and merged by character position.


def plan_chunks(width: int, height: int, model_height: int, chunk_width: int | None = 400, overlap: int = 64
                ) -> list[tuple[int, int]]:
    """Column ranges [start, end) of the chunks a line crop of (height, width) is read in.

    `chunk_width` and `overlap` are in model pixels (after scaling to `model_height`); chunks are spread evenly
    so neighbours overlap by at least `overlap`. One chunk when the line fits (or chunk_width is None).

    >>> plan_chunks(1000, 32, 32, 400, 64)
    [(0, 400), (300, 700), (600, 1000)]
    >>> plan_chunks(300, 32, 32)
    [(0, 300)]
    """
    if chunk_width is None or width * model_height / max(height, 1) <= chunk_width:
        return [(0, width)]
    if not 0 <= overlap < chunk_width:
        raise ValueError("overlap must be in [0, chunk_width)")
    scale = model_height / max(height, 1)
    size = min(width, max(1, int(round(chunk_width / scale))))
    step = (chunk_width - overlap) / scale
    n = int(math.ceil((width - size) / step)) + 1
    starts = np.linspace(0, width - size, n)
    return [(int(round(s)), int(round(s)) + size) for s in starts]


def ink_profile(crop: np.ndarray) -> np.ndarray:
    """Dark pixels per column of a dark-on-light crop (Otsu threshold), as int array of the crop's width."""
    gray = to_gray(crop)
    if gray.size == 0:
        return np.zeros(gray.shape[1] if gray.ndim == 2 else 0, np.int64)
    if int(gray.max()) - int(gray.min()) < 12:
        return np.zeros(gray.shape[1], np.int64)
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = gray <= t
    if dark.mean() > 0.5:  # light text on dark: ink is the minority
        dark = ~dark
    return dark.sum(axis=0).astype(np.int64)


def choose_cut(ink: np.ndarray, lo: float, hi: float) -> tuple[float, int]:
    """Where to switch from one chunk's characters to the next inside their overlap [lo, hi).

    The middle half of the overlap is searched for the widest blank (inkless) run of columns, so no glyph is
    split and both chunks saw the characters on either side with context; without one, the column with the
    least ink nearest the middle. Returns (cut x, width of the blank run there).
    """
    quarter = (hi - lo) / 4
    a, b = int(math.floor(lo + quarter)), int(math.ceil(hi - quarter))
    a, b = max(0, a), min(len(ink), max(b, a + 1))
    middle = (lo + hi) / 2
    if b <= a:
        return middle, 0
    segment = ink[a:b]
    blank = segment == 0
    if blank.any():
        # Runs of blank columns (extended beyond the window, to measure their full width).
        best, best_len = None, -1
        x = a
        while x < b:
            if ink[x] != 0:
                x += 1
                continue
            start = x
            while x < b and ink[x] == 0:
                x += 1
            run_start, run_end = start, x
            while run_start > 0 and ink[run_start - 1] == 0:
                run_start -= 1
            while run_end < len(ink) and ink[run_end] == 0:
                run_end += 1
            length = run_end - run_start
            if length > best_len or (length == best_len and best is not None
                                     and abs((start + x) / 2 - middle) < abs(best - middle)):
                best, best_len = (max(start, a) + min(x, b)) / 2, length
        return float(best), int(best_len)
    candidates = np.flatnonzero(segment == segment.min()) + a
    return float(candidates[np.argmin(np.abs(candidates + 0.5 - middle))] + 0.5), 0


def _char_span(c: CharInfo, prediction: Prediction, width: int) -> tuple[float, float]:
    if c.x0 is not None and c.x1 is not None:
        return float(c.x0), float(c.x1)
    per_frame = width / max(prediction.frames, 1)
    return c.start * per_frame, c.end * per_frame


def merge_chunks(pieces: Sequence[tuple[int, int, Prediction]], ink: np.ndarray, space_width: float
                 ) -> list[CharInfo]:
    """Join the readings of overlapping chunks into one character list, positions in line-crop pixels.

    Between two chunks a cut is chosen in their overlap (`choose_cut`): characters centred left of it come
    from the left chunk, the others from the right one, so the unreliable ends of each chunk are dropped. A
    space is kept once, and added when the cut fell in a blank wider than `space_width` pixels.
    """
    cuts = [-math.inf]
    blanks = [0]
    for (_, end_a, _), (start_b, _, _) in zip(pieces, pieces[1:]):
        cut, blank = choose_cut(ink, start_b, end_a)
        cuts.append(cut)
        blanks.append(blank)
    cuts.append(math.inf)
    merged: list[CharInfo] = []
    for k, (start, end, prediction) in enumerate(pieces):
        taken = []
        for c in prediction.chars:
            x0, x1 = _char_span(c, prediction, end - start)
            centre = start + (x0 + x1) / 2
            if cuts[k] <= centre < cuts[k + 1]:
                taken.append(CharInfo(c.char, c.confidence, c.start, c.end, start + x0, start + x1))
        if k > 0 and blanks[k] >= space_width and taken and merged \
                and taken[0].char != " " and merged[-1].char != " ":
            merged.append(CharInfo(" ", min(merged[-1].confidence, taken[0].confidence), 0, 0, cuts[k], cuts[k]))
        for c in taken:
            if c.char == " " and (not merged or merged[-1].char == " "):
                continue  # no leading or doubled spaces at a junction
            merged.append(c)
    while merged and merged[-1].char == " ":
        merged.pop()
    return merged


def _geometric_mean(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    return float(np.exp(np.mean(np.log(np.maximum(values, 1e-12)))))


def _map_quad(to_image: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> Quad:
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x1, y1, 1], [x0, y1, 1]], dtype=np.float64)
    pts = corners @ to_image.T  # (4, 3) @ (3, 2) -> (4, 2) image pixels
    return tuple((float(x), float(y)) for x, y in pts)


def _map_box(to_image: np.ndarray, x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box:
    return _bounds(_map_quad(to_image, x0, y0, x1, y1), width, height)


def grow_quad(quad, margin: float) -> tuple[tuple[float, float], ...]:
    """A quad (top-left, top-right, bottom-right, bottom-left) moved out by `margin` pixels on every side, along its
    own axes (a turned line grows along its baseline and across it)."""
    q = np.asarray(quad, np.float64)
    along = q[1] - q[0]
    across = q[3] - q[0]
    along /= max(np.linalg.norm(along), 1e-9)
    across /= max(np.linalg.norm(across), 1e-9)
    out = q + margin * np.array([-along - across, along - across, along + across, -along + across])
    return tuple((float(x), float(y)) for x, y in out)


def scale_across(quad, factor: float) -> tuple[tuple[float, float], ...]:
    """A quad (top-left, top-right, bottom-right, bottom-left) with its height, across its own baseline, scaled by
    `factor` about its centre; its length stays."""
    q = np.asarray(quad, np.float64)
    top, bottom = (q[0] + q[1]) / 2, (q[3] + q[2]) / 2
    shift = (bottom - top) * (factor - 1) / 2  # each edge moves this much away from (or towards) the centre line
    out = q + np.array([-shift, -shift, shift, shift])
    return tuple((float(x), float(y)) for x, y in out)


def _bounds(quad, width: int, height: int) -> Box:
    pts = np.asarray(quad)
    x0, y0 = np.floor(pts.min(axis=0))
    x1, y1 = np.ceil(pts.max(axis=0))
    return (int(np.clip(x0, 0, width)), int(np.clip(y0, 0, height)), int(np.clip(x1, 0, width)),
            int(np.clip(y1, 0, height)))


def _words(chars: list[CharInfo], dark: np.ndarray, text_band: tuple[int, int]
           ) -> list[tuple[str, float, float, float, float, float, list[CharInfo]]]:
    """Split characters on spaces; each word's box is the ink between the midpoints to its neighbours.

    Returns (text, confidence, x0, y0, x1, y1, chars) in crop pixels.
    """
    groups: list[list[CharInfo]] = []
    for c in chars:
        if c.char.isspace():
            if groups and groups[-1]:
                groups.append([])
            continue
        if not groups:
            groups.append([])
        groups[-1].append(c)
    groups = [g for g in groups if g]
    width = dark.shape[1]
    out = []
    for k, g in enumerate(groups):
        lo = 0.0 if k == 0 else (groups[k - 1][-1].x1 + g[0].x0) / 2
        hi = float(width) if k == len(groups) - 1 else (g[-1].x1 + groups[k + 1][0].x0) / 2
        a, b = int(max(0, math.floor(lo))), int(min(width, math.ceil(hi)))
        band = dark[text_band[0]:text_band[1], a:b]
        cols = np.flatnonzero(band.any(axis=0)) if band.size else np.zeros(0, int)
        if len(cols):
            x0, x1 = a + cols[0], a + cols[-1] + 1
            y0, y1 = word_rows(dark[:, x0:x1], text_band)
        else:
            x0, x1 = g[0].x0, g[-1].x1
            y0, y1 = text_band
        text = "".join(c.char for c in g)
        out.append((text, _geometric_mean([c.confidence for c in g]), float(x0), float(y0), float(x1), float(y1), g))
    return out


def word_rows(dark: np.ndarray, text_band: tuple[int, int]) -> tuple[int, int]:
    """The rows a word's ink spans within its line's text band (`dark`: the word's columns of the line crop).

    Rows a rule crosses (a form's ruling, an underline) do not count, and the word is the run of inked rows holding
    most ink together with the runs at most `WORD_ROW_GAP` of the band apart (an i's dot, an accent): ink of the
    neighbouring lines reaching into the band stays out of the box.
    """
    lo, hi = max(0, text_band[0] - 2), min(dark.shape[0], text_band[1] + 2)
    ink = dark[lo:hi].sum(axis=1)
    if dark.shape[1] >= RULE_MIN_WIDTH:
        ink[ink >= RULE_SHARE * dark.shape[1]] = 0
    rows = np.flatnonzero(ink)
    if not len(rows):
        return text_band
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    core = max(range(len(runs)), key=lambda k: ink[runs[k]].sum())
    gap = max(1.0, WORD_ROW_GAP * (hi - lo))
    first = last = core
    while first > 0 and runs[first][0] - runs[first - 1][-1] - 1 <= gap:
        first -= 1
    while last < len(runs) - 1 and runs[last + 1][0] - runs[last][-1] - 1 <= gap:
        last += 1
    return lo + int(runs[first][0]), lo + int(runs[last][-1]) + 1


@dataclass
class _Job:
    """One line to read: its crop, where the crop sits in the image, and the chunks it is read in."""

    line: LineBox
    crop: np.ndarray
    to_image: np.ndarray
    text_band: tuple[int, int]
    text_height: float
    chunks: list[tuple[int, int]]
    first: int = 0  # index of its first chunk in the batch


@dataclass
class _Plan:
    width: int
    height: int
    layout: str
    angle: float
    jobs: list[_Job]
    orientation: int = 0
    warnings: list[str] = field(default_factory=list)
    alternative: _Plan | None = None  # the image read whole as one line (a possible crop): the surer reading wins
    image: np.ndarray | None = None  # kept for photos: weak lines are read again turned round
    min_confidence: float = 0.0  # photos: lines read less surely than this (or PHOTO_MIN_CONFIDENCE) are dropped
    alternative_floor: float = 0.0  # the alternative wins only read at least this surely
    long_text_floor: float | None = None  # ... or this surely where it reads LONG_WHOLE_TEXT varied characters


def _line_jobs(recognizer, array: np.ndarray, lines: list[LineBox], chunk_width: int | None, overlap: int,
               pad: float) -> list[_Job]:
    jobs = []
    for line in lines:
        crop, to_image = crop_line(array, line, pad)
        quad = np.asarray(line.quad)
        top = float((cv2.invertAffineTransform(to_image) @ [*quad[0], 1])[1])  # line top in crop rows
        top = int(np.clip(round(top), 0, crop.shape[0] - 1))
        bottom = int(np.clip(round(top + np.linalg.norm(quad[3] - quad[0])), top + 1, crop.shape[0]))
        jobs.append(_Job(line, crop, to_image, (top, bottom), line.height,
                         plan_chunks(crop.shape[1], crop.shape[0], recognizer.cfg.height, chunk_width, overlap)))
    return jobs


def _plan(recognizer, image, layout: str, text_filter: TextFilter | None, chunk_width: int | None, overlap: int,
          pad: float, detector=None, limits: Limits | None = None) -> _Plan:
    limits = limits or Limits()
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
    if isinstance(image, np.ndarray) and image.size == 0:
        h = image.shape[0] if image.ndim >= 1 else 0
        w = image.shape[1] if image.ndim >= 2 else 0
        return _Plan(w, h, "page" if layout == "auto" else layout, 0.0, [])
    if detector is not None and layout in ("auto", "photo"):
        color = read_image(image, channels=3, max_pixels=limits.max_pixels, max_bytes=limits.max_bytes)
        array = color if recognizer.cfg.channels == 3 else to_gray(color)
    else:
        color = None
        array = read_image(image, channels=recognizer.cfg.channels, max_pixels=limits.max_pixels,
                           max_bytes=limits.max_bytes)
    gray = to_gray(array)
    if chunk_width is None:  # by default a line is cut only where the model stops reading in one piece
        chunk_width = recognizer.cfg.max_width
    elif chunk_width == 0:  # never cut
        chunk_width = None
    H, W = gray.shape
    lines: list[LineBox] | None = None
    auto = layout == "auto"
    read_whole_too = False
    if layout == "auto":
        if detector is not None and H > 64 and H * W > CROP_AREA and not looks_like_document(color):
            layout = "photo"
        else:
            lines = find_lines(gray)
            small = H * W <= CROP_AREA
            layout = "line" if is_single_line(gray, lines) and not (small and is_stack_of_lines(H, W, lines)) else "page"
            if (layout == "page" or W <= LINE_PHOTO_MAX_ASPECT * H) and small and detector is not None \
                    and min(H, W) >= SMALL_PHOTO_MIN_SIDE and not looks_like_document(color):
                layout = "photo"  # a small photo (a thumbnail): the line finder reads its textures as lines
            few = len(lines) <= WHOLE_MAX_CANDIDATES
            read_whole_too = layout == "page" and (small or few) and int(gray.max()) - int(gray.min()) >= 12
    if layout == "photo":
        if detector is None:
            raise ValueError("layout 'photo' needs a text detector")
        photo = color if color is not None else image
        quads = [d.quad for d in detector.detect(photo, levels=["line"])["line"]]
        found_at_working_size = bool(quads)
        min_confidence = 0.0
        if not quads and LARGE_TEXT_SIDE:
            quads = [q for q in detect_large_text(detector, photo, LARGE_TEXT_SIDE) if _cover(q, W, H) >= CROP_COVER]
            fills = any(_cover(q, W, H) >= LARGE_TEXT_FILLS for q in quads)
            min_confidence = FILLING_TEXT_MIN_CONFIDENCE if fills else LARGE_TEXT_MIN_CONFIDENCE
        orientation = choose_orientation(array, quads, recognizer.recognize_arrays, pad) if quads else 0
        if orientation in (90, 270) and found_at_working_size:
            quads = detect_turned_upright(detector, photo, orientation) or quads
        lines = plan_lines(array, quads, orientation)
        if text_filter is not None:
            lines = apply_filter(array, lines, text_filter)
        lines, warnings = _at_most(lines, limits.max_lines)
        plan = _Plan(W, H, layout, 0.0, _line_jobs(recognizer, array, lines, chunk_width, overlap, pad), orientation,
                     warnings, image=array, min_confidence=min_confidence)
        if auto and len(quads) <= WHOLE_MAX_CANDIDATES:  # perhaps a large crop of one word or line: read whole too
            plan.alternative = _plan(recognizer, array, "line", text_filter, chunk_width, overlap, pad, limits=limits)
            if not (len(quads) == 1 and _cover(quads[0], W, H) >= CROP_COVER):  # no line fills it: text must
                plan.alternative_floor = LARGE_TEXT_MIN_CONFIDENCE  # read surely across the whole image
            if not found_at_working_size:
                plan.long_text_floor = LONG_WHOLE_MIN_CONFIDENCE
        return plan
    if layout == "page":
        if lines is None:
            lines = find_lines(gray)
        if text_filter is not None:
            lines = apply_filter(array, lines, text_filter)
        lines, warnings = _at_most(lines, limits.max_lines)
        angle = lines[0].angle if lines else 0.0
        plan = _Plan(W, H, layout, angle, _line_jobs(recognizer, array, lines, chunk_width, overlap, pad),
                     warnings=warnings)
        if auto and read_whole_too:
            plan.alternative = _plan(recognizer, array, "line", text_filter, chunk_width, overlap, pad, limits=limits)
            if H * W > CROP_AREA:  # a large image with a line or two: a large crop of one, or a sparse document
                plan.alternative_floor = LARGE_TEXT_MIN_CONFIDENCE
        return plan
    if int(gray.max()) - int(gray.min()) < 12:  # blank: nothing to read
        return _Plan(W, H, layout, 0.0, [])
    whole = LineBox(0, 0, W, H, ((0.0, 0.0), (float(W), 0.0), (float(W), float(H)), (0.0, float(H))), height=H)
    chunks = plan_chunks(W, H, recognizer.cfg.height, chunk_width if layout == "line" else None, overlap)
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    return _Plan(W, H, layout, 0.0, [_Job(whole, array, identity, (0, H), 0.6 * H, chunks)])


def _cover(quad, width: int, height: int) -> float:
    """The share of the image that a quad's upright bounding box covers."""
    q = np.asarray(quad, np.float64)
    return float(np.ptp(q[:, 0]) * np.ptp(q[:, 1]) / max(1, width * height))


def _at_most(lines: list[LineBox], max_lines: int) -> tuple[list[LineBox], list[str]]:
    if max_lines and len(lines) > max_lines:
        return lines[:max_lines], [f"{len(lines)} line candidates: read the first {max_lines} in reading order"]
    return lines, []


def _assemble(plan: _Plan, predictions: Sequence[Prediction | None], drop_weak: bool = True,
              time_limit: float = 0.0) -> PageResult:
    lines_out = []
    unread = 0
    for job in plan.jobs:
        pieces = [(s, e, predictions[job.first + k]) for k, (s, e) in enumerate(job.chunks)]
        if any(p is None for _, _, p in pieces):  # its time ran out before this line was read
            unread += 1
            continue
        ink = ink_profile(job.crop)
        if len(pieces) == 1:
            s, e, p = pieces[0]
            chars = [CharInfo(c.char, c.confidence, c.start, c.end, *_char_span(c, p, e - s)) for c in p.chars]
        else:
            chars = merge_chunks(pieces, ink, 0.35 * job.text_height)
        while chars and chars[0].char == " ":
            chars.pop(0)
        while chars and chars[-1].char == " ":
            chars.pop()
        text = "".join(c.char for c in chars)
        if chars:
            confidence = _geometric_mean([c.confidence for c in chars])
        else:
            confidence = float(np.mean([p.confidence for _, _, p in pieces])) if pieces else 0.0
        gray = to_gray(job.crop)
        dark = _dark_mask(gray)
        words = []
        chars_out = []
        for wtext, wconf, x0, y0, x1, y1, wchars in _words(chars, dark, job.text_band):
            margin = WORD_BOX_MARGIN * (y1 - y0)
            outer = (x0 - margin, y0 - margin, x1 + margin, y1 + margin)
            if plan.layout == "photo":
                half = (outer[3] - outer[1]) * PHOTO_BOX_HEIGHT / 2
                outer = (outer[0], (y0 + y1) / 2 - half, outer[2], (y0 + y1) / 2 + half)
            box = _map_box(job.to_image, *outer, plan.width, plan.height)
            # a word's own quad where its line is turned; on a nearly level line the upright box fits it better
            # (FUNSD test words at IoU 0.5: hmean 0.717 with boxes, 0.685 with quads tilted by the page's skew)
            quad = _map_quad(job.to_image, *outer) if abs(job.line.angle) >= QUAD_MIN_ANGLE else None
            words.append(WordResult(wtext, wconf, box, quad))
            for c in wchars:
                chars_out.append(CharResult(c.char, c.confidence,
                                            _map_box(job.to_image, c.x0, y0, max(c.x1, c.x0 + 1), y1, plan.width,
                                                     plan.height)))
        line = job.line
        if drop_weak and plan.layout == "photo" and confidence < max(PHOTO_MIN_CONFIDENCE, plan.min_confidence):
            continue  # a detected box the recogniser cannot read as text: clutter, not a line
        box, quad = line.box, line.quad
        if plan.layout == "page":  # the line finder's boxes are tight to the ink; the detector's already have margins
            quad = grow_quad(quad, WORD_BOX_MARGIN * line.height)
            box = _bounds(quad, plan.width, plan.height)
        elif plan.layout == "photo":
            quad = scale_across(quad, PHOTO_BOX_HEIGHT)
            box = _bounds(quad, plan.width, plan.height)
        lines_out.append(LineResult(text, confidence, box, quad, words, chars_out, line.block, line.row,
                                    line.angle, line.inverted))
    warnings = list(plan.warnings)
    if unread:
        warnings.append(f"time limit of {time_limit:g} s reached: read {len(plan.jobs) - unread} of "
                        f"{len(plan.jobs)} lines")
    return PageResult(plan.width, plan.height, plan.layout, lines_out, plan.angle, plan.orientation, warnings)


def _dark_mask(gray: np.ndarray) -> np.ndarray:
    if gray.size == 0 or int(gray.max()) - int(gray.min()) < 12:
        return np.zeros(gray.shape, bool)
    t, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = gray <= t
    return ~dark if dark.mean() > 0.5 else dark


def read_pages(
    recognizer,
    images: Sequence[ImageInput],
    layout: str = "auto",
    text_filter: TextFilter | None = None,
    *,
    chunk_width: int | None = None,
    overlap: int = 64,
    pad: float = 0.2,
    detector=None,
    limits: Limits | None = None,
) -> list[PageResult]:
    """`read_page` for several images, with the lines of all of them recognised in shared batches; each image
    gets `limits.seconds` of its own (finding its lines, then its share of each batch)."""
    limits = limits or Limits()
    clocks = Clocks(len(images), limits.seconds)
    plans = [clocks.timed(k, lambda im=im: _plan_or_warn(recognizer, im, layout, text_filter, chunk_width, overlap,
                                                         pad, detector, limits))
             for k, im in enumerate(images)]
    arrays = []
    owners = []
    for k, plan in enumerate(plans):
        for candidate in (plan, plan.alternative):
            for job in candidate.jobs if candidate is not None else []:
                job.first = len(arrays)
                arrays.extend(np.ascontiguousarray(job.crop[:, s:e]) for s, e in job.chunks)
                owners.extend([k] * len(job.chunks))
    predictions = recognize_within(recognizer.recognize_arrays, arrays, owners, clocks)
    results = []
    for k, plan in enumerate(plans):
        if plan.layout == "photo" and plan.jobs and not clocks.over(k):
            result = clocks.timed(k, lambda plan=plan: _turn_lines(recognizer, plan, predictions, chunk_width,
                                                                  overlap, pad, limits.seconds))
        else:
            result = _assemble(plan, predictions, time_limit=limits.seconds)
        if plan.layout in ("page", "photo"):
            result.lines = [line for line in result.lines if not is_clutter(line, plan.layout)]
        if plan.layout == "photo":
            floor = max(PHOTO_MIN_CONFIDENCE, plan.min_confidence, plan.alternative_floor)
        else:
            floor = plan.alternative_floor
        small = plan.width * plan.height <= CROP_AREA
        results.append(_choose(result, plan.alternative, predictions, limits.seconds, floor,
                               keep_shorter_whole=plan.layout == "page" and small,
                               max_lines=None if small and plan.layout != "photo" else FEW_LINES,
                               long_text_floor=plan.long_text_floor))
    return results


def _turn_lines(recognizer, plan: _Plan, predictions: Sequence[Prediction | None], chunk_width, overlap, pad,
                time_limit: float = 0.0) -> PageResult:
    """Every line of a photo is read again turned round (a single upside-down sign on an upright page reads with
    a confidence of 0.7 the wrong way up; a line costs about 2 ms to read); the reading surer by FLIP_MARGIN is
    kept. Then lines too weak to be text are dropped."""
    result = _assemble(plan, predictions, drop_weak=False, time_limit=time_limit)
    if result.lines and len(result.lines) == len(plan.jobs):
        turned_lines = [line_box(np.roll(np.asarray(job.line.quad), -2, axis=0), plan.width, plan.height)
                        for job in plan.jobs]  # the same boxes, read from their other ends
        turned = _Plan(plan.width, plan.height, "photo", 0.0,
                       _line_jobs(recognizer, plan.image, turned_lines, chunk_width, overlap, pad))
        arrays = []
        for job in turned.jobs:
            job.first = len(arrays)
            arrays.extend(np.ascontiguousarray(job.crop[:, s:e]) for s, e in job.chunks)
        again = _assemble(turned, recognizer.recognize_arrays(arrays), drop_weak=False)
        for i, line in enumerate(again.lines):
            if line.confidence > result.lines[i].confidence + FLIP_MARGIN:
                line.block, line.row = result.lines[i].block, result.lines[i].row
                result.lines[i] = line
    result.lines = [line for line in result.lines if line.confidence >= max(PHOTO_MIN_CONFIDENCE, plan.min_confidence)]
    return result


def is_clutter(line: LineResult, layout: str = "page") -> bool:
    """A line of a page or photo too weakly read to print: under PAGE_MIN_CONFIDENCE, or a mark of at most
    SHORT_TEXT characters under SHORT_MIN_CONFIDENCE[layout]. Most such lines are edges, specks and textures read
    as "1", "I" or "|". Chosen on the first 100 images of three training splits of ../shared/train/scenes
    (`python benchmarks/bench_clutter.py --limit 100`, benchmarks/results/clutter.md): for photos the best hmean
    on MSRA-TD500 (precision 0.849 -> 0.879, recall 0.516 -> 0.506); for pages the strictest rule that kept
    receipt line recall within 0.001 (SROIE: precision 0.835 -> 0.877; FUNSD words 0.724 -> 0.748)."""
    text = line.text.strip()
    return line.confidence < PAGE_MIN_CONFIDENCE or (len(text) <= SHORT_TEXT
                                                    and line.confidence < SHORT_MIN_CONFIDENCE.get(layout, 0.0))


def _plan_or_warn(recognizer, image, layout, text_filter, chunk_width, overlap, pad, detector, limits) -> _Plan:
    """`_plan`, except that an image too noisy to hold lines gives an empty result that says why."""
    try:
        return _plan(recognizer, image, layout, text_filter, chunk_width, overlap, pad, detector, limits)
    except TooComplexError as e:
        h, w = (image.shape[:2] if isinstance(image, np.ndarray) else (0, 0))
        return _Plan(w, h, "page", 0.0, [], warnings=[str(e)])


def _characters(result: PageResult) -> int:
    return sum(len(line.text.replace(" ", "")) for line in result.lines)


def _choose(result: PageResult, alternative: _Plan | None, predictions: Sequence[Prediction | None],
            time_limit: float = 0.0, floor: float = 0.0, keep_shorter_whole: bool = False,
            max_lines: int | None = None, long_text_floor: float | None = None) -> PageResult:
    """The plan's result, or its alternative (the image read whole as one line: a small image the line finder took
    for a page, a large crop the detector found few lines in) where that is surer and at least `floor`.
    On the first 600 crops of the IIIT5K, IC15 and SVT training splits, 4-7% looked like pages to the line finder
    and most of those read wrong as pages; keeping the surer of the two readings brought `--layout auto` from
    92.3 / 80.8 / 91.4% to 96.7 / 82.5 / 97.7% exact (scene protocol), against 97.0 / 82.5 / 98.1% for
    `--layout line` (`python benchmarks/bench_layouts.py ../shared/train/{iiit5k,ic15,svt}_train --limit 600`;
    training crops the model has seen, so high absolute values). Large crops go to the detector, which found no line
    or only a fragment in 9 of the 2000 IIIT5K training crops; reading every photo with at most FEW_LINES lines
    whole too (kept only at LARGE_TEXT_MIN_CONFIDENCE or surer) took `auto` there from 97.40 / CER 1.05 to 97.80 /
    0.79 (`line`: 97.85 / 0.77), and of 300 photos with their text painted out one more printed a line (49).
    With `keep_shorter_whole` (small images read as pages) the whole reading also wins where the page reads fewer
    characters: a page reading of a word crop is often a sure fragment of it ("y" of "joy"), while the page
    reading of a few stacked lines reads more than the whole one. Of the 88 IIIT5K / IC15 / SVT training crops
    that `is_stack_of_lines` sends to the page path, the surer reading alone lost 6 words the whole reading had
    right and won 2; with this rule it loses 2 and wins 2 (`benchmarks/bench_snippets.py` for the snippets).
    Photos (small ones too) and large pages read into at most `max_lines` lines are weighed against their whole reading
    too, which also wins where it reads more characters nearly as surely (LONGER_MARGIN): on 300 training crops
    scaled up to 160,000-700,000 pixels (`benchmarks/bench_large_crops.py`) `auto` went from 61.33 / CER 38.01 to
    66.00 / 33.50 (`line` 70.00 / 22.04); the scene photos of the training sets read the same. Where the detector
    found nothing at its working size (`long_text_floor`), a whole reading of at least LONG_WHOLE_TEXT varied
    characters wins from that confidence: textures read that way give one to four characters."""
    if alternative is None or (max_lines is not None and len(result.lines) > max_lines):
        return result
    whole = _assemble(alternative, predictions, time_limit=time_limit)
    text = "".join(line.text.replace(" ", "") for line in whole.lines)
    if long_text_floor is not None and len(text) >= LONG_WHOLE_TEXT and len(set(text)) > 1:
        floor = min(floor, long_text_floor)
    if keep_shorter_whole and _characters(result) < _characters(whole):
        return whole
    if (max_lines is not None and _characters(result) < _characters(whole)
            and whole.confidence >= max(floor, result.confidence - LONGER_MARGIN)):
        return whole
    return whole if whole.confidence >= max(result.confidence, floor) else result


def read_page(
    recognizer,
    image: ImageInput,
    layout: str = "auto",
    text_filter: TextFilter | None = None,
    *,
    chunk_width: int | None = None,
    overlap: int = 64,
    pad: float = 0.2,
    detector=None,
    limits: Limits | None = None,
) -> PageResult:
    """Read all the text of an image: find its lines (unless it is one already) and read them in order.

    Args:
        recognizer: a `crnn_ocr.recognize.base.TextRecognizer` (torch `TorchRecognizer` or ONNX `OnnxRecognizer`).
        image: path, bytes, PIL image or uint8 array; an empty array gives an empty result.
        layout: "page" finds lines with the line finder (documents); "photo" with the text `detector` (any
            orientation); "line" reads the whole image as one line (in chunks when long); "word" reads it in one
            piece; "auto": crop-sized images that `is_single_line` accepts are read whole, other documents
            (`looks_like_document`) go to the line finder, photos to the detector when there is one.
        text_filter: optional verifier dropping false line candidates (see `TextFilter`).
        chunk_width: lines wider than this many model pixels (after scaling to the model height) are read in
            chunks of this width; None reads every line whole.
        overlap: model pixels shared by neighbouring chunks.
        pad: margin around each line crop, in text heights.
        detector: a text detector (`crnn_ocr.detect.OnnxDetector`) for photos; None keeps the line finder.
        limits: pixels, lines and seconds this image may cost (`crnn_ocr.page.limits.Limits`; default its defaults).

    Returns:
        PageResult with lines (text, confidence, box, words, characters) in reading order.
    """
    return read_pages(recognizer, [image], layout, text_filter, chunk_width=chunk_width, overlap=overlap,
                      pad=pad, detector=detector, limits=limits)[0]
