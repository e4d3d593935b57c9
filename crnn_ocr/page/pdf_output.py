"""Searchable PDF out: each page image with an invisible, selectable text layer over its lines.

The writer streams: a page is written (image as JPEG, text as one content stream) when it is added, so a
document of thousands of pages needs the memory of one. Each line is one run of text stretched over the line's
words (readers rebuild lines from glyph positions; word-by-word runs let them mix neighbouring lines). The
font draws nothing (text render mode 3, invisible); its codes are UTF-16 units mapped back to Unicode by a
ToUnicode table, so any text the recogniser reads is found by search and comes back from copy-paste and
`pdftotext` in reading order. The file is written under a temporary name and renamed when closed.

>>> # with SearchablePdf("scan.ocr.pdf") as pdf: pdf.add_page(image, page_result, dpi=300)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.errors import OcrError
from crnn_ocr.page.reading import PageResult

GLYPH_WIDTH = 500  # every code is half an em wide; words are stretched to their box with Tz
JPEG_QUALITY = 85

_TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""


class SearchablePdf:
    """A PDF written page by page: `add_page(image, result, dpi)`, then `close()` (or use it as a context)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        self.file = os.fdopen(fd, "wb")
        self.offsets: dict[int, int] = {}
        self.next_id = 7  # 1 catalog, 2 pages, 3-6 the font
        self.pages: list[int] = []
        self.file.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        self._write_font()

    def _object(self, number: int, body: bytes, stream: bytes | None = None) -> None:
        self.offsets[number] = self.file.tell()
        self.file.write(f"{number} 0 obj\n".encode())
        if stream is None:
            self.file.write(body + b"\nendobj\n")
        else:
            self.file.write(body[:-2] + f" /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream\nendobj\n")

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def _write_font(self) -> None:
        self._object(3, b"<< /Type /Font /Subtype /Type0 /BaseFont /GlyphLessFont /Encoding /Identity-H "
                        b"/DescendantFonts [4 0 R] /ToUnicode 6 0 R >>")
        self._object(4, b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /GlyphLessFont "
                        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                        b"/FontDescriptor 5 0 R /DW " + str(GLYPH_WIDTH).encode() + b" /CIDToGIDMap /Identity >>")
        self._object(5, b"<< /Type /FontDescriptor /FontName /GlyphLessFont /Flags 5 /FontBBox [0 0 500 1000] "
                        b"/ItalicAngle 0 /Ascent 1000 /Descent 0 /CapHeight 1000 /StemV 80 >>")
        self._object(6, b"<< >>", _TO_UNICODE)

    def add_page(self, image: np.ndarray, result: PageResult, dpi: float = 300.0) -> None:
        """Add one page: `image` (uint8 gray or RGB, the pixels `result` was read from) at `dpi`."""
        if image.ndim not in (2, 3) or image.size == 0:
            raise OcrError("searchable PDF: a page image must be a non-empty gray or RGB array")
        height_px, width_px = image.shape[:2]
        scale = 72.0 / dpi
        width_pt, height_pt = width_px * scale, height_px * scale
        gray = image.ndim == 2
        ok, jpeg = cv2.imencode(".jpg", image if gray else cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OcrError("searchable PDF: the page image could not be encoded")
        image_id, content_id, page_id = self._new_id(), self._new_id(), self._new_id()
        self._object(image_id, (f"<< /Type /XObject /Subtype /Image /Width {width_px} /Height {height_px} "
                                f"/ColorSpace /{'DeviceGray' if gray else 'DeviceRGB'} /BitsPerComponent 8 "
                                f"/Filter /DCTDecode >>").encode(), jpeg.tobytes())
        content = [f"q {width_pt:.3f} 0 0 {height_pt:.3f} 0 0 cm /Im0 Do Q", "BT 3 Tr"]
        for line in result.lines:
            words = [w for w in line.words if w.text]
            if not words:
                continue
            # One run per line, stretched from its first word to its last: readers that rebuild lines from
            # glyph positions (pdftotext, copy-paste) then keep the line whole and in order.
            box = (words[0].box[0], line.box[1], max(w.box[2] for w in words), line.box[3])
            content.append(_word_operators(" ".join(w.text for w in words), box, scale, height_pt))
        content.append("ET")
        self._object(content_id, b"<< >>", "\n".join(content).encode("ascii"))
        self._object(page_id, (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt:.3f} {height_pt:.3f}] "
                               f"/Resources << /XObject << /Im0 {image_id} 0 R >> /Font << /F1 3 0 R >> >> "
                               f"/Contents {content_id} 0 R >>").encode())
        self.pages.append(page_id)

    def close(self) -> None:
        """Finish the document and move it to its name (a document with no page is an error)."""
        if self.file.closed:
            return
        try:
            if not self.pages:
                raise OcrError(f"{self.path}: no page to write")
            kids = " ".join(f"{p} 0 R" for p in self.pages)
            self._object(2, f"<< /Type /Pages /Kids [{kids}] /Count {len(self.pages)} >>".encode())
            self._object(1, b"<< /Type /Catalog /Pages 2 0 R >>")
            xref = self.file.tell()
            count = self.next_id
            rows = [b"xref\n", f"0 {count}\n".encode(), b"0000000000 65535 f \n"]
            rows += [f"{self.offsets[i]:010d} 00000 n \n".encode() for i in range(1, count)]
            self.file.write(b"".join(rows))
            self.file.write(f"trailer\n<< /Size {count} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
            self.file.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> SearchablePdf:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _word_operators(text: str, box, scale: float, page_height_pt: float) -> str:
    """Place `text` so that it spans `box`: font size from the box height, horizontal scaling (Tz) to its width,
    baseline a fifth of the height above the box bottom (where descenders end)."""
    x0, y0, x1, y1 = box
    size = max(1.0, (y1 - y0) * scale)
    units = text.encode("utf-16-be")
    natural = len(units) // 2 * GLYPH_WIDTH / 1000.0 * size
    stretch = 100.0 * max(0.1, (x1 - x0) * scale) / max(natural, 1e-3)
    baseline = page_height_pt - y1 * scale + 0.2 * size
    return f"/F1 {size:.2f} Tf {stretch:.2f} Tz 1 0 0 1 {x0 * scale:.2f} {baseline:.2f} Tm <{units.hex().upper()}> Tj"
