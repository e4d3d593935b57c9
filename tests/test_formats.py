"""Output formats of whole images: ALTO v4 validates against the official schema (offline copy in ../shared)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crnn_ocr.page.alto import alto_document
from crnn_ocr.page.reading import LineResult, PageResult, WordResult

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO.parent / "shared" / "schemas" / "alto-4-4.xsd"


def page() -> PageResult:
    words = [WordResult("Total", 0.98, (10, 20, 60, 40)), WordResult("12,50 €", 0.91, (70, 20, 140, 40))]
    odd = [WordResult('<&"\x07>', 0.5, (10, 60, 50, 80))]  # markup and a control character in a reading
    lines = [LineResult("Total 12,50 €", 0.95, (10, 20, 140, 40), ((10, 20), (140, 20), (140, 40), (10, 40)), words),
             LineResult('<&">', 0.5, (10, 60, 50, 80), ((10, 60), (50, 60), (50, 80), (10, 80)), odd, block=1)]
    return PageResult(200, 100, "page", lines)


def schema():
    etree = pytest.importorskip("lxml.etree")
    if not SCHEMA.is_file():
        pytest.skip(f"the ALTO schema is not here ({SCHEMA}): ../shared/schemas is absent")
    return etree, etree.XMLSchema(etree.parse(str(SCHEMA)))


def test_alto_is_valid_and_holds_words_in_reading_order():
    etree, alto_schema = schema()
    document = etree.fromstring(alto_document([("a.png", page()), ("a.png", PageResult(10, 10, "page"))]).encode())
    alto_schema.assertValid(document)
    ns = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    strings = document.findall(".//a:String", ns)
    assert [s.get("CONTENT") for s in strings] == ["Total", "12,50 €", '<&">']
    assert [s.get("WC") for s in strings] == ["0.980", "0.910", "0.500"]
    assert len(document.findall(".//a:Page", ns)) == 2 and len(document.findall(".//a:TextBlock", ns)) == 2
    assert document.find(".//a:fileName", ns).text == "a.png"


def test_ocr_recognize_format_alto(tmp_path):
    etree, alto_schema = schema()
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (900, 200), 255)
    font = ImageFont.truetype(str(REPO / "data" / "fonts" / "DejaVuSans.ttf"), 40)
    ImageDraw.Draw(image).text((30, 40), "Archive record seven", fill=0, font=font)
    image.save(tmp_path / "record.png")
    run = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", str(tmp_path / "record.png"),
                          str(tmp_path / "record.png"), "--format", "alto"], capture_output=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    document = etree.fromstring(run.stdout)
    alto_schema.assertValid(document)
    contents = [s.get("CONTENT") for s in document.iter("{http://www.loc.gov/standards/alto/ns-v4#}String")]
    assert contents[:3] == ["Archive", "record", "seven"] and len(contents) == 6


def test_ocr_eval_scores_the_pipeline_on_a_folder_of_whole_images(tmp_path):
    import json

    from PIL import Image, ImageDraw, ImageFont

    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    font = ImageFont.truetype(str(REPO / "data" / "fonts" / "DejaVuSans.ttf"), 36)
    records = []
    for n in range(2):
        image = Image.new("L", (900, 500), 250)
        draw = ImageDraw.Draw(image)
        regions = []
        for i, text in enumerate(["Quarterly report", "Revenue grew again"]):
            x0, y0, x1, y1 = draw.textbbox((60, 80 + 160 * i), text, font=font)
            draw.text((60, 80 + 160 * i), text, fill=0, font=font)
            regions.append({"quad": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "text": text, "level": "line",
                            "ignore": False})
        regions.append({"quad": [[700, 400], [800, 400], [800, 450], [700, 450]], "text": None, "level": "line",
                        "ignore": True})
        image.save(folder / "images" / f"{n}.png")
        records.append({"image": f"images/{n}.png", "width": 900, "height": 500, "regions": regions})
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    run = subprocess.run([sys.executable, str(REPO / "cli.py"), "eval", "--data", str(folder), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)[0]
    assert (result["images"], result["level"], result["tp"], result["fp"], result["fn"]) == (2, "line", 4, 0, 0)
    assert result["e2e"]["hmean"] == 1.0 and result["bow"]["f1"] == 1.0 and result["cpu_s_per_image"] > 0
    table = subprocess.run([sys.executable, str(REPO / "cli.py"), "eval", "--data", str(folder), "-q"],
                           capture_output=True, text=True, cwd=REPO, timeout=120).stdout
    assert table.splitlines()[1].split()[:7] == ["set", "line", "2", "1.000", "1.000", "1.000", "1.000"]
