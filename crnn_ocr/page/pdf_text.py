"""A page's own text layer (born-digital PDFs) as a `PageResult`, so it prints like a page that was read."""

from __future__ import annotations

from crnn_ocr.image.pdf import PdfPage
from crnn_ocr.page.reading import LineResult, PageResult, WordResult

MIN_LAYER_CHARS = 20  # fewer characters than this (a page number, a stamp) does not make a usable text layer


def has_text_layer(page: PdfPage) -> bool:
    return sum(len(run.text) for run in page.text_layer) >= MIN_LAYER_CHARS


def page_from_text_layer(page: PdfPage) -> PageResult:
    """Lines from the PDF's text runs (top to bottom, then left to right), words boxed in proportion to their
    characters; confidence 1 (the text is the document's own)."""
    height, width = page.image.shape[:2]
    runs = sorted(page.text_layer, key=lambda r: (round(r.box[1] / max(1, r.box[3] - r.box[1])), r.box[0]))
    lines = []
    for row, run in enumerate(runs):
        x0, y0, x1, y1 = run.box
        per_char = (x1 - x0) / max(1, len(run.text))
        words, start = [], 0
        for token in run.text.split(" "):
            if token:
                words.append(WordResult(token, 1.0, (int(x0 + start * per_char), y0,
                                                     int(x0 + (start + len(token)) * per_char), y1)))
            start += len(token) + 1
        quad = ((float(x0), float(y0)), (float(x1), float(y0)), (float(x1), float(y1)), (float(x0), float(y1)))
        lines.append(LineResult(run.text, 1.0, run.box, quad, words, [], block=0, row=row))
    return PageResult(width, height, "pdf-text", lines)
