"""What `ocr recognize` reads: files, folders, PDFs and stdin expanded into inputs, then decoded one at a time.

Every failure is a row with its message (the other inputs go on); nothing is decoded before its turn.
"""

from __future__ import annotations

import sys
from pathlib import Path


def expand_inputs(images: tuple[str, ...], pages: str | None = None) -> tuple[list[tuple[str, Path | None, str | None]], int]:
    """(name, path, None) for every image or PDF to read ('-' is stdin, path None), (name, None, error) for what
    cannot be listed; folders expand recursively (PDFs in them too). Also the number of images to read (a PDF
    counts its pages), so the progress bar knows its total."""
    from crnn_ocr.errors import ImageError
    from crnn_ocr.image.io import IMAGE_SUFFIXES, scan_images
    from crnn_ocr.image.pdf import is_pdf, parse_page_ranges, pdf_page_count

    out: list[tuple[str, Path | None, str | None]] = []
    total = 0
    for item in images:
        if item == "-":
            out.append(("-", None, None))
            total += 1
            continue
        found = scan_images([item], IMAGE_SUFFIXES + (".pdf",))
        if not found:
            out.append((item, None, f"{item}: no images in this folder"))
        for path, error in found:
            if path is None:
                out.append((error.split(": ", 1)[0], None, error))
                continue
            out.append((str(path), path, None))
            try:
                total += len(parse_page_ranges(pages, pdf_page_count(path))) if is_pdf(path) else 1
            except (ImageError, ValueError):
                total += 1  # reported when read
    return out, total


def image_dpi(path: Path | None) -> float | None:
    """The resolution an image file declares (PNG pHYs, JPEG JFIF/EXIF, TIFF), if plausible."""
    if path is None:
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            x = image.info.get("dpi", (0, 0))[0]
    except (OSError, ValueError, TypeError, IndexError):
        return None
    return float(x) if 50 <= float(x) <= 2400 else None


def read_inputs(items: list[tuple[str, Path | None, str | None]], channels: int, pages: str | None = None,
                 pdf_text: str = "auto", dpi: float | None = None, limits=None):
    """Yield (name, array or ready result or None, error[, page]) for every expanded input, one image or PDF page
    at a time (memory stays flat); `limits` (`crnn_ocr.page.limits.Limits`) bounds the bytes and pixels of each."""
    from crnn_ocr.errors import ImageError
    from crnn_ocr.image.io import read_image, read_stream_bounded
    from crnn_ocr.image.pdf import is_pdf
    from crnn_ocr.page.limits import Limits

    limits = limits or Limits()
    caps = {"max_pixels": limits.max_pixels, "max_bytes": limits.max_bytes}
    for name, path, error in items:
        if error is not None:
            yield name, None, error
            continue
        try:
            source = read_stream_bounded(sys.stdin.buffer, limits.max_bytes) if name == "-" else path
            if not is_pdf(source):
                yield name, read_image(source, channels=channels, **caps), None, None, image_dpi(path)
                continue
            yield from pdf_page_rows(source, name, channels, pages, pdf_text, dpi, limits)
        except ImageError as e:
            yield name, None, str(e) if name != "-" else f"stdin: {str(e).split(': ', 1)[-1]}"


def pdf_page_rows(source, name: str, channels: int, pages: str | None = None, pdf_text: str = "auto",
                  dpi: float | None = None, limits=None, page_name: str | None = None):
    """The rows `read_inputs` yields for one PDF (a path or bytes), one page at a time: a page's own text, its
    image, or its error. `page_name` replaces "PDF" in the errors of a PDF given as bytes ("PDF page 3: ...")."""
    from crnn_ocr.errors import ImageError
    from crnn_ocr.image.io import read_image
    from crnn_ocr.image.pdf import iter_pdf_pages
    from crnn_ocr.page.limits import Limits
    from crnn_ocr.page.pdf_text import has_text_layer, page_from_text_layer

    limits = limits or Limits()
    caps = {"max_pixels": limits.max_pixels, "max_bytes": limits.max_bytes}
    for page in iter_pdf_pages(source, pages, dpi, text_layer=pdf_text != "ocr", **caps):
        if isinstance(page, ImageError):
            message = str(page)
            yield name, None, message.replace("PDF page", f"{page_name} page", 1) if page_name else message
        elif pdf_text == "layer" or (pdf_text == "auto" and has_text_layer(page)):
            yield name, page_from_text_layer(page), None, page.index + 1
        else:
            yield name, read_image(page.image, channels=channels, **caps), None, page.index + 1, page.dpi
