"""The one-call Python API: `crnn_ocr.load().read(x)` for any input kind, with the command line's defaults."""

from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import crnn_ocr
from crnn_ocr.reader import Document

REPO = Path(__file__).resolve().parents[1]
SIGN = REPO / "examples" / "sign.png"
EXPECTED = "Opening hours\nMonday to Friday 9:00 - 18:00"


@pytest.fixture(scope="module")
def reader():
    return crnn_ocr.load(threads=1)


def test_every_input_kind_reads_the_same(reader):
    array = np.asarray(Image.open(SIGN).convert("RGB"))
    for source in (SIGN, str(SIGN), SIGN.read_bytes(), array, Image.open(SIGN)):
        document = reader.read(source)
        assert isinstance(document, Document) and document.text == EXPECTED, type(source)


def test_a_document_holds_pages_lines_words_and_quads(reader):
    document = reader.read(SIGN)
    page = document.pages[0]
    assert page.layout == "page" and [line.text for line in document.lines] == EXPECTED.split("\n")
    word = document.words[0]
    assert word.text == "Opening" and len(word.quad) == 4 and 0 < word.confidence <= 1
    (x0, y0), (x1, _), (_, y2), _ = word.quad
    assert 30 <= x0 < x1 <= 400 and 30 <= y0 < y2 <= 110  # where the word was drawn
    record = json.loads(document.to_json())
    assert record["pages"][0]["lines"][0]["words"][0]["quad"][0] == [round(x0, 1), round(y0, 1)]
    ET.fromstring(document.to_hocr())
    ET.fromstring(document.to_alto())


def test_a_list_gives_a_list_and_read_iter_streams(reader):
    crop = Image.open(SIGN).crop((30, 110, 620, 170))
    documents = reader.read([SIGN, crop])
    assert documents[0].text == EXPECTED and documents[1].text.replace(" ", "") == "MondaytoFriday9:00-18:00"
    stream = reader.read_iter(path for path in [SIGN, "missing.png"])
    assert next(stream).text == EXPECTED
    with pytest.raises(crnn_ocr.OcrError, match="missing.png: no such file"):
        next(stream)


def test_the_library_defaults_are_the_command_line_defaults(reader):
    cli = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", str(SIGN)], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert cli.stdout.strip() == reader.read(SIGN).text
    assert reader.layout == "auto" and reader.text_filter is not None and reader.recognizer.decoder.dictionary is not None


def test_readme_python_example_runs(monkeypatch):
    """The README's Python quick tour is a doctest."""
    monkeypatch.chdir(REPO)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    examples = [b for b in blocks if ">>> " in b]
    assert examples, "README has no >>> example"
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for k, block in enumerate(examples):
        runner.run(parser.get_doctest(block, {}, f"README[{k}]", "README.md", 0))
    assert runner.failures == 0 and runner.tries > 0
