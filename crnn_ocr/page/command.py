"""What `ocr recognize` calls for whole images: read many inputs in batches and print them in one format.

Kept out of `crnn_ocr.cli` so the command stays a thin wrapper; no click and no torch here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TextIO

import numpy as np

from crnn_ocr.page.lines import TextFilter
from crnn_ocr.page.reading import OUTPUT_FORMATS, TSV_HEADER, PageResult, hocr_document, read_pages

# (name, image to read or a result already made (a PDF's text layer) or None, error or None[, PDF page number])
InputItem = tuple


def display_name(name: str) -> str:
    """A file name as printable, valid UTF-8 text on one line: undecodable bytes and control characters escaped."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_result(name: str, result: PageResult, output: str, *, index: int = 1, single: bool = False,
                  chars: bool = True, page: int | None = None) -> str:
    """One result in an output format (without the TSV header or the hOCR document around it).

    text: one row per line of text, `name<TAB>text`, whatever the image is (a crop gives one row, a page one
    per line in reading order; an image with no text one row with empty text), so `cut -f2` or a spreadsheet
    reads any mix; with `single`, just the text. json: one JSON object per image (JSON Lines) with its path
    (line and word layouts also keep the `characters` list of the crop record). tsv: Tesseract's TSV rows.
    hocr: one ocr_page element.
    """
    name = display_name(name)
    if output == "text":
        if page is not None:
            name = f"{name}:{page}"
        text = result.to_text()
        if single:
            return text
        rows = [row for row in text.split("\n") if row] or [""]
        return "\n".join(f"{name}\t{row}" for row in rows)
    if output == "json":
        import json

        record = {"path": name, **({"page": page} if page is not None else {}), **result.to_dict(chars)}
        if result.layout != "page":
            # The record `ocr recognize --json` wrote for crops before pages existed, kept for its readers.
            record["characters"] = [{"char": c.char, "confidence": round(c.confidence, 4), "x0": c.box[0],
                                     "x1": c.box[2]} for line in result.lines for c in line.chars]
        return json.dumps(record, ensure_ascii=False)
    if output == "tsv":
        return result.to_tsv(page_num=index, header=False).rstrip("\n")
    if output == "hocr":
        return result.to_hocr(page_num=index, title=name, standalone=False)
    if output == "alto":
        from crnn_ocr.page.alto import alto_page

        return alto_page(result, index)
    raise ValueError(f"unknown output format {output!r}: use one of {', '.join(OUTPUT_FORMATS)}")


def recognize_page_cli(
    recognizer,
    inputs: Iterable[InputItem],
    *,
    layout: str = "auto",
    output: str = "text",
    single: bool = False,
    text_filter: TextFilter | None = None,
    progress: bool | None = None,
    total: int | None = None,
    out: Callable[[str], None] | None = None,
    err: Callable[[str], None] | None = None,
    batch_lines: int = 256,
    batch_images: int = 64,
    batch_pixels: int = 64_000_000,
    pdf_out=None,
    **read_options,
) -> int:
    """Read every input image and print the results; returns how many inputs failed.

    Args:
        recognizer: any `TextRecognizer` (its decoder already set).
        inputs: (name, uint8 array, None[, PDF page number[, dpi]]) for a readable image, (name, PageResult,
            None, page) for a PDF page's own text, (name, None, message) for a failed one;
            `crnn_ocr.page.inputs.read_inputs` (and `crnn_ocr.page.parallel.read_in_workers`) yield exactly this.
        layout: auto | page | line | word (see `read_page`).
        output: text | json | tsv | hocr | alto | pdf (pages go to `pdf_out`, a `SearchablePdf`).
        single: one input, printed without its name (text output).
        progress: a progress bar on stderr (None: when stderr is a terminal and there is more than one input).
        total: number of inputs, for the progress bar.
        out, err: print functions for results and error lines (default: stdout, stderr).
        batch_lines, batch_images, batch_pixels: images are read together until about this many lines, images or
            decoded pixels (memory stays bounded however large the images are).
        read_options: chunk_width, overlap, pad for `read_pages`.
    """
    if output not in (*OUTPUT_FORMATS, "pdf"):
        raise ValueError(f"unknown output format {output!r}: use one of {', '.join(OUTPUT_FORMATS)}, pdf")
    if (output == "pdf") != (pdf_out is not None):
        raise ValueError("the pdf output needs pdf_out, and only it")
    out = out or _printer(sys.stdout)
    err = err or _printer(sys.stderr)
    if progress is None:
        progress = sys.stderr.isatty() and (total is None or total > 1)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True, leave=False)
    failures = 0
    index = 0
    pending: list[tuple[str, np.ndarray | PageResult, int | None, float]] = []
    pending_lines = 0
    pending_pixels = 0
    hocr_pages: list[str] = []
    alto_pages: list[tuple[str, PageResult]] = []
    if output == "tsv":
        out(TSV_HEADER)

    def flush() -> None:
        nonlocal index, pending_lines, pending_pixels
        if not pending:
            return
        arrays = [a for _, a, _, _ in pending if not isinstance(a, PageResult)]
        read = iter(read_pages(recognizer, arrays, layout, text_filter, **read_options) if arrays else [])
        for name, item, page, dpi in pending:
            result = item if isinstance(item, PageResult) else next(read)
            index += 1
            for warning in result.warnings:
                err(f"warning: {display_name(name)}: {warning}")
            if output == "pdf":
                pdf_out.add_page(item, result, dpi)
                if bar is not None:
                    bar.update(1)
                continue
            if output == "alto":  # one document: its header names the source when there is one
                alto_pages.append((name, result))
                if bar is not None:
                    bar.update(1)
                continue
            text = format_result(name, result, output, index=index, single=single, page=page)
            if output == "hocr":
                hocr_pages.append(text)
            else:
                out(text)
            if bar is not None:
                bar.update(1)
        pending.clear()
        pending_lines = 0
        pending_pixels = 0

    try:
        for name, array, error, *where in inputs:
            if error is not None or array is None:
                failures += 1
                err(f"error: {error or name + ': cannot read'}")
                if bar is not None:
                    bar.update(1)
                continue
            page, dpi = (where + [None, None])[:2]
            pending.append((name, array, page, dpi or 300.0))
            # A page holds tens of lines, a crop one: estimate by size so batches stay moderate.
            pending_lines += 40 if isinstance(array, PageResult) or min(array.shape[:2]) > 200 else 1
            pending_pixels += 0 if isinstance(array, PageResult) else array.shape[0] * array.shape[1]
            if pending_lines >= batch_lines or len(pending) >= batch_images or pending_pixels >= batch_pixels:
                flush()
        flush()
    finally:
        if bar is not None:
            bar.close()
    if output == "hocr":
        out(hocr_document(hocr_pages).rstrip("\n"))
    if output == "alto":
        from crnn_ocr.page.alto import alto_document

        out(alto_document(alto_pages).rstrip("\n"))
    return failures


def _printer(stream: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        print(text, file=stream)

    return write
