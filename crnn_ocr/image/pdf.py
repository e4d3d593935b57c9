"""PDF pages as images (and their text layer, where they have one), one page at a time, with pypdfium2.

Pages are rendered at a resolution chosen for their text: a quick low-resolution render estimates the height of
the text, and the page is rendered so that lines are about `TARGET_TEXT_PX` pixels high (within
`MIN_DPI`..`MAX_DPI`). A document of thousands of pages is read with memory for one page.

>>> parse_page_ranges("1-3,7", 10)
[0, 1, 2, 6]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.errors import ImageError
from crnn_ocr.image.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, read_file_bounded

TARGET_TEXT_PX = 36  # a little above the recogniser's 32-pixel input: lines are cropped with a margin
PROBE_DPI = 72
MIN_DPI, MAX_DPI, DEFAULT_DPI = 150, 400, 300
PDF_TEXT_MODES = ("auto", "ocr", "layer")


def is_pdf(source) -> bool:
    """A path ending in .pdf, or bytes starting with the PDF signature."""
    if isinstance(source, (str, Path)):
        return str(source).lower().endswith(".pdf")
    return isinstance(source, (bytes, bytearray, memoryview)) and bytes(source[:5]) == b"%PDF-"


def parse_page_ranges(spec: str | None, count: int) -> list[int]:
    """0-based page indices from a 1-based list like "1-3,7" (None or "" is every page); pages past the end
    are dropped, a malformed spec raises ValueError."""
    if not spec:
        return list(range(count))
    pages: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            first = int(lo) if lo else 1
            last = (int(hi) if hi else count) if sep else first
        except ValueError:
            raise ValueError(f"bad page range {part!r}: use e.g. 1-3,7") from None
        if first < 1 or last < first:
            raise ValueError(f"bad page range {part!r}: pages count from 1")
        pages.extend(p - 1 for p in range(first, min(last, count) + 1) if p - 1 not in pages)
    return pages


@dataclass
class TextRun:
    """A run of text from the PDF's own text layer, with its box in the rendered image's pixels."""

    text: str
    box: tuple[int, int, int, int]


@dataclass
class PdfPage:
    """One rendered page: `image` RGB uint8, `index` 0-based, `dpi` used, and the page's text layer if any."""

    index: int
    image: np.ndarray
    dpi: float
    width_pt: float
    height_pt: float
    text_layer: list[TextRun] = field(default_factory=list)


def _open_document(source, max_bytes: int = DEFAULT_MAX_BYTES):
    import pypdfium2 as pdfium

    data = read_file_bounded(source, max_bytes) if isinstance(source, (str, Path)) else bytes(source)
    name = str(source) if isinstance(source, (str, Path)) else "PDF"
    try:
        return pdfium.PdfDocument(data), name
    except pdfium.PdfiumError as e:
        reason = str(e).split(".")[0]
        if "password" in str(e).lower():
            reason = "encrypted (password needed)"
        raise ImageError(f"{name}: cannot open the PDF: {reason}") from None


def pdf_page_count(source) -> int:
    document, _ = _open_document(source)
    try:
        return len(document)
    finally:
        document.close()


def _text_height(gray: np.ndarray) -> float | None:
    """Median height in pixels of letter-sized dark components, or None when there is hardly any ink."""
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    keep = (heights >= 3) & (heights <= gray.shape[0] // 8) & (widths <= 4 * heights)
    return float(np.median(heights[keep])) if keep.sum() >= 20 else None


def choose_dpi(page) -> float:
    """The resolution at which this page's text is about TARGET_TEXT_PX high."""
    probe = page.render(scale=PROBE_DPI / 72.0, grayscale=True).to_numpy()
    height = _text_height(np.ascontiguousarray(probe.reshape(probe.shape[0], probe.shape[1], -1)[..., 0]))
    if height is None:
        return DEFAULT_DPI
    # components are letters (x-height to cap height); a line with ascenders and descenders is ~1.6x that
    return float(np.clip(PROBE_DPI * TARGET_TEXT_PX / (1.6 * height), MIN_DPI, MAX_DPI))


def _text_layer(page, scale: float, height_pt: float) -> list[TextRun]:
    textpage = page.get_textpage()
    try:
        runs = []
        for i in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(i)
            text = textpage.get_text_bounded(left, bottom, right, top).strip()
            if text:
                box = (int(left * scale), int((height_pt - top) * scale), int(np.ceil(right * scale)),
                       int(np.ceil((height_pt - bottom) * scale)))
                runs.append(TextRun(" ".join(text.split()), box))
        return runs
    finally:
        textpage.close()


def iter_pdf_pages(source, pages: str | None = None, dpi: float | None = None, text_layer: bool = True,
                   max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES
                   ) -> Iterator[PdfPage | ImageError]:
    """Render the chosen pages one at a time. A page that cannot be rendered yields an ImageError in its place
    (the other pages go on); a document that cannot be opened raises ImageError.

    Args:
        source: path or bytes of a PDF.
        pages: 1-based ranges, e.g. "1-3,7" (default: all).
        dpi: fixed resolution; None chooses one per page for its text height.
        text_layer: also extract the page's own text with its boxes (for `--pdf-text layer|auto`).
        max_pixels: a page whose render would exceed this many pixels is rendered at a lower resolution.
        max_bytes: a PDF file larger than this is refused (ImageTooLargeError) before it is read.
    """
    document, name = _open_document(source, max_bytes)
    try:
        try:
            indices = parse_page_ranges(pages, len(document))
        except ValueError as e:
            raise ImageError(f"{name}: {e}") from None
        for index in indices:
            page = document[index]
            try:
                width_pt, height_pt = page.get_size()
                if width_pt <= 0 or height_pt <= 0:
                    yield ImageError(f"{name} page {index + 1}: page has no size ({width_pt}x{height_pt} pt)")
                    continue
                chosen = dpi or choose_dpi(page)
                pixels = (width_pt * chosen / 72.0) * (height_pt * chosen / 72.0)
                if pixels > max_pixels:
                    chosen *= (max_pixels / pixels) ** 0.5
                scale = chosen / 72.0
                bitmap = page.render(scale=scale)
                image = np.array(bitmap.to_numpy()[..., :3][..., ::-1])  # pdfium renders BGR(A)
                bitmap.close()
                runs = _text_layer(page, scale, height_pt) if text_layer else []
                yield PdfPage(index, image, chosen, width_pt, height_pt, runs)
            except Exception as e:  # noqa: BLE001  - pdfium fails in many ways on a broken page
                yield ImageError(f"{name} page {index + 1}: cannot render ({type(e).__name__}: {str(e)[:100]})")
            finally:
                page.close()
    finally:
        document.close()
