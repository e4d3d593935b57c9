"""ALTO v4 XML (the Library of Congress layout format libraries and archives ingest) for read pages.

One document holds one `Page` per image or PDF page, each with text blocks, lines and words (`String` with the
word's box and confidence `WC`, `SP` between words), in reading order. Coordinates are pixels of the image read.
Validated against the ALTO 4.4 schema in the tests.

>>> # alto_document([("scan.png", page_result)])
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from crnn_ocr.page.reading import PageResult

ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"


def _geometry(box) -> str:
    x0, y0, x1, y1 = box
    return f'HPOS="{x0}" VPOS="{y0}" WIDTH="{max(0, x1 - x0)}" HEIGHT="{max(0, y1 - y0)}"'


def _text(value: str) -> str:
    """An attribute value: XML-quoted, without characters XML 1.0 cannot hold."""
    clean = "".join(c for c in value if c in "\t\n\r" or (ord(c) >= 0x20 and not 0xD800 <= ord(c) <= 0xDFFF
                                                           and ord(c) not in (0xFFFE, 0xFFFF)))
    return quoteattr(clean)


def alto_page(result: PageResult, number: int) -> str:
    """One `Page` element (`number` counts from 1 in the document)."""
    p = number
    out = [f'    <Page ID="page_{p}" PHYSICAL_IMG_NR="{p}" WIDTH="{result.width}" HEIGHT="{result.height}">',
           f'      <PrintSpace HPOS="0" VPOS="0" WIDTH="{result.width}" HEIGHT="{result.height}">']
    for b, lines in enumerate(result._blocks(), 1):
        box = (min(ln.box[0] for ln in lines), min(ln.box[1] for ln in lines),
               max(ln.box[2] for ln in lines), max(ln.box[3] for ln in lines))
        out.append(f'        <TextBlock ID="block_{p}_{b}" {_geometry(box)}>')
        for n, line in enumerate(lines, 1):
            out.append(f'          <TextLine ID="line_{p}_{b}_{n}" {_geometry(line.box)}>')
            words = [w for w in line.words if w.text] or []
            for k, word in enumerate(words, 1):
                if k > 1:
                    previous = words[k - 2].box
                    out.append(f'            <SP HPOS="{previous[2]}" VPOS="{previous[1]}" '
                               f'WIDTH="{max(0, word.box[0] - previous[2])}"/>')
                out.append(f'            <String ID="string_{p}_{b}_{n}_{k}" {_geometry(word.box)} '
                           f'CONTENT={_text(word.text)} WC="{min(1.0, max(0.0, word.confidence)):.3f}"/>')
            out.append("          </TextLine>")
        out.append("        </TextBlock>")
    out += ["      </PrintSpace>", "    </Page>"]
    return "\n".join(out)


def alto_document(pages: Sequence[tuple[str, PageResult]]) -> str:
    """A complete ALTO document for (source name, result) pairs; the file name is recorded for one source."""
    from crnn_ocr import __version__

    names = {name for name, _ in pages}
    source = (f"    <sourceImageInformation>\n      <fileName>{_text(next(iter(names)))[1:-1]}</fileName>\n"
              "    </sourceImageInformation>\n") if len(names) == 1 else ""
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<alto xmlns="{ALTO_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="{ALTO_NS} {SCHEMA}">\n'
            f"  <Description>\n    <MeasurementUnit>pixel</MeasurementUnit>\n{source}"
            f'    <Processing ID="ocr_1">\n      <processingSoftware>\n        <softwareName>crnn_ocr</softwareName>\n'
            f"        <softwareVersion>{__version__}</softwareVersion>\n      </processingSoftware>\n    </Processing>\n"
            "  </Description>\n  <Layout>\n")
    body = "\n".join(alto_page(result, i) for i, (_, result) in enumerate(pages, 1))
    return head + body + "\n  </Layout>\n</alto>\n"
