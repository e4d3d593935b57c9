"""PDF in: pages rendered one at a time at a resolution chosen for their text, page ranges, a text layer read
as text, and one clear error for an encrypted, corrupt or empty document while the other inputs go on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.errors import ImageError
from crnn_ocr.image.pdf import choose_dpi, iter_pdf_pages, parse_page_ranges, pdf_page_count

REPO = Path(__file__).resolve().parents[1]
FONT = REPO / "data" / "fonts" / "DejaVuSans.ttf"


def scanned_pdf(path: Path, lines: list[str], pages: int = 1, px: int = 42) -> Path:
    font = ImageFont.truetype(str(FONT), px)
    images = []
    for _ in range(pages):
        image = Image.new("RGB", (2480, 3508), "white")  # A4 at 300 dpi
        draw = ImageDraw.Draw(image)
        for i, text in enumerate(lines):
            draw.text((200, 300 + i * 2 * px), text, fill="black", font=font)
        images.append(image)
    images[0].save(path, save_all=True, append_images=images[1:], resolution=300)
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_page_ranges():
    assert parse_page_ranges("1-3,7", 10) == [0, 1, 2, 6]
    assert parse_page_ranges("9-", 10) == [8, 9] and parse_page_ranges(None, 3) == [0, 1, 2]
    assert parse_page_ranges("2,2,12", 5) == [1]
    for bad in ("0", "3-1", "a-b"):
        with pytest.raises(ValueError):
            parse_page_ranges(bad, 5)


def test_resolution_follows_the_text_height(tmp_path):
    import pypdfium2 as pdfium

    small = scanned_pdf(tmp_path / "small.pdf", ["small print on a page"] * 30, px=24)
    large = scanned_pdf(tmp_path / "large.pdf", ["LARGE PRINT"] * 10, px=90)
    dpis = []
    for path in (small, large):
        document = pdfium.PdfDocument(str(path))
        dpis.append(choose_dpi(document[0]))
        document.close()
    assert dpis[0] > dpis[1] and 150 <= dpis[1] and dpis[0] <= 400


def test_a_scanned_pdf_is_read_page_by_page(tmp_path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", ["Invoice number 4711", "Total amount due"], pages=3)
    result = run("recognize", pdf, "--pages", "2-3", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["path"], r["page"]) for r in records] == [(str(pdf), 2), (str(pdf), 3)]
    assert "Invoice number 4711" in records[0]["text"] and "Total amount due" in records[1]["text"]


def test_a_text_layer_is_used_where_present(tmp_path):
    pytest.importorskip("pikepdf")
    from crnn_ocr.page.pdf_text import has_text_layer

    born_digital = tmp_path / "digital.pdf"
    make_text_pdf(born_digital, ["Quarterly report of the board", "Revenue grew by seven percent"])
    page = next(iter_pdf_pages(born_digital))
    assert has_text_layer(page) and [r.text for r in page.text_layer][:2] == ["Quarterly report of the board",
                                                                             "Revenue grew by seven percent"]
    layer = run("recognize", born_digital, "--pdf-text", "layer", "--json")
    record = json.loads(layer.stdout)
    assert record["layout"] == "pdf-text" and record["text"].splitlines()[:2] == ["Quarterly report of the board",
                                                                                 "Revenue grew by seven percent"]
    ocr = json.loads(run("recognize", born_digital, "--pdf-text", "ocr", "--json").stdout)
    assert ocr["layout"] != "pdf-text" and "Quarterly" in ocr["text"]


def make_text_pdf(path: Path, lines: list[str]) -> None:
    """A born-digital PDF: Helvetica text objects on an A4 page (pikepdf writes the file)."""
    import pikepdf

    pdf = pikepdf.new()
    content = "BT /F1 18 Tf " + " ".join(f"1 0 0 1 72 {760 - 30 * i} Tm ({text}) Tj" for i, text in enumerate(lines)) + " ET"
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page = pikepdf.Page(pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                                           Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                                           Contents=pdf.make_stream(content.encode())))
    pdf.pages.append(page)
    pdf.save(path)


def test_broken_pdfs_give_one_line_each_and_the_rest_is_read(tmp_path):
    pikepdf = pytest.importorskip("pikepdf")
    good = scanned_pdf(tmp_path / "good.pdf", ["Readable text here"])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[:300])
    encrypted = tmp_path / "locked.pdf"
    with pikepdf.open(good) as pdf:
        pdf.save(encrypted, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    result = run("recognize", truncated, encrypted, empty, good, "--layout", "page")
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") for e in errors), errors
    assert "encrypted (password needed)" in errors[1]
    assert result.stdout.startswith(f"{good}:1\tReadable text here")


def test_a_long_pdf_is_streamed(tmp_path):
    pages = [Image.new("L", (100, 140), 255) for _ in range(2000)]
    pdf = tmp_path / "long.pdf"
    pages[0].save(pdf, save_all=True, append_images=pages[1:])
    assert pdf_page_count(pdf) == 2000
    seen = iter_pdf_pages(pdf, pages="1999-", dpi=72)
    first = next(seen)
    assert first.index == 1998 and first.image.shape[:2] == (140, 100)
    assert next(seen).index == 1999
    with pytest.raises(StopIteration):
        next(seen)


def test_a_page_that_cannot_render_is_an_error_in_its_place(tmp_path):
    pdf = scanned_pdf(tmp_path / "one.pdf", ["x"])
    with pytest.raises(ImageError, match="bad page range"):
        list(iter_pdf_pages(pdf, pages="0"))
    assert isinstance(next(iter_pdf_pages(pdf, dpi=1200, max_pixels=1_000_000)).image, np.ndarray)


def pdf_text(path: Path) -> str:
    """The text of every page as PDFium extracts it (what search and copy-paste see)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        return "\n".join(document[i].get_textpage().get_text_range() for i in range(len(document)))
    finally:
        document.close()


def test_searchable_pdf_out_keeps_the_pages_and_adds_their_words_in_reading_order(tmp_path):
    import shutil

    scan = scanned_pdf(tmp_path / "scan.pdf", ["Invoice number 4711", "Total amount due"], pages=2)
    photo = tmp_path / "note.png"
    image = Image.new("RGB", (1200, 300), (250, 245, 230))
    ImageDraw.Draw(image).text((40, 100), "Meeting at noon", fill=(20, 20, 120), font=ImageFont.truetype(str(FONT), 60))
    image.save(photo, dpi=(200, 200))
    out = tmp_path / "out" / "searchable.pdf"
    result = run("recognize", scan, photo, "--format", "pdf", "--out", out)
    assert result.returncode == 0, result.stderr
    assert pdf_page_count(out) == 3
    words = pdf_text(out).split()
    assert words[:6] == ["Invoice", "number", "4711", "Total", "amount", "due"] and words[-3:] == ["Meeting", "at", "noon"]
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(out))
    assert abs(document[2].get_width() - 1200 * 72 / 200) < 0.5  # the image's own resolution sets the page size
    document.close()
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout
        assert text.split()[:3] == ["Invoice", "number", "4711"] and "Meeting at noon" in text


def test_searchable_pdf_needs_out_and_leaves_nothing_when_every_input_fails(tmp_path):
    missing = run("recognize", tmp_path / "nothing.png", "--format", "pdf")
    assert missing.returncode == 1 and missing.stderr.strip() == "error: --format pdf writes a file: give --out FILE.pdf"
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 but nothing else")
    out = tmp_path / "out.pdf"
    result = run("recognize", broken, "--format", "pdf", "--out", out)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and not out.exists()
    assert list(tmp_path.glob("out.pdf*")) == []
