"""One object, one call: `crnn_ocr.load()` gives a `Reader`, `reader.read(x)` a `Document`.

`x` is an image file, a PDF, bytes, a numpy array or a PIL image (or a list of them); word crops, lines, pages,
receipts and PDFs are handled alike, with the same defaults as `ocr recognize` (shipped model, English
dictionary correction, the page verifier, automatic layout).

>>> # import crnn_ocr
>>> # reader = crnn_ocr.load()
>>> # doc = reader.read("receipt.jpg")
>>> # doc.text, doc.pages[0].lines[0].words[0].quad, doc.to_json()
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crnn_ocr import defaults
from crnn_ocr.defaults import DEFAULT_DICTIONARY
from crnn_ocr.errors import CheckpointError
from crnn_ocr.image.io import ImageInput, read_image
from crnn_ocr.image.pdf import is_pdf, iter_pdf_pages
from crnn_ocr.page.alto import alto_document
from crnn_ocr.page.limits import Limits
from crnn_ocr.page.lines import TextFilter
from crnn_ocr.page.pdf_text import has_text_layer, page_from_text_layer
from crnn_ocr.page.reading import LAYOUTS, LineResult, PageResult, WordResult, hocr_document, read_pages


def load_recognizer(model: str | Path | None = None, backend: str = "auto", threads: int = 0, batch_size: int = 32):
    """A recogniser from a model file (`.onnx` runs on onnxruntime, `.pt` on torch), by default the shipped one,
    found inside the installed package (or `weights/` of a checkout)."""
    if model is None:
        found = defaults.default_model("torch" if backend == "torch" else "onnx") or defaults.default_model("torch")
        if found is None:
            raise CheckpointError("no shipped model found (crnn_ocr.weights); give a model path (.onnx or .pt)")
        model = found
    model = str(model)
    if backend == "auto":
        backend = "torch" if model.endswith(".pt") else "onnx"
    if backend == "torch" and model.lower().endswith(".onnx"):
        raise CheckpointError(f"{model}: an exported ONNX model runs on the onnx backend; --backend torch needs a .pt "
                              "checkpoint")
    if backend == "torch":
        import torch

        from crnn_ocr.recognize.torch_backend import TorchRecognizer

        if threads:
            torch.set_num_threads(threads)
        return TorchRecognizer.from_checkpoint(model, batch_size=batch_size)
    from crnn_ocr.recognize.onnx import OnnxRecognizer

    return OnnxRecognizer(model, threads=threads, batch_size=batch_size)


class LazyVerifier:
    """The page verifier (an exported `.onnx`), loaded on the first page: crops never pay for it."""

    def __init__(self, path: str | Path, threads: int = 1, load=None):
        self.path, self.threads, self.verifier = Path(path), threads or 1, None
        self._load = load

    def __call__(self, crops):
        if self.verifier is None:
            if self._load is not None:
                self.verifier = self._load(self.path, self.threads)
            else:
                from crnn_ocr.page.verifier import load_verifier

                self.verifier = load_verifier(self.path, self.threads)
        return self.verifier(crops)


class LazyDetector:
    """The text detector (an exported `.onnx`), loaded on the first photo: crops and documents never pay for it."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.path, self.threads, self.detector = Path(path), threads or 1, None

    def detect(self, image, levels=None):
        if self.detector is None:
            from crnn_ocr.detect.runtime import OnnxDetector

            self.detector = OnnxDetector(self.path, threads=self.threads)
        return self.detector.detect(image, levels)


def default_detector(detector: bool | str | Path | None, threads: int = 1):
    """True: the shipped detector if there is one; a path: that file; False or None: none."""
    if detector is True:
        found = defaults.find_detector()
        return LazyDetector(found, threads) if found is not None else None
    if isinstance(detector, (str, Path)):
        return LazyDetector(detector, threads)
    return detector or None


@dataclass
class Document:
    """What `Reader.read` returns for one input: its pages (one for an image, one per PDF page read), each with
    lines in reading order, their words and characters, boxes, quads and confidences."""

    source: str
    pages: list[PageResult] = field(default_factory=list)
    page_numbers: list[int | None] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text of every page in reading order; pages separated by a form feed, as pdftotext does."""
        return "\f".join(page.to_text() for page in self.pages)

    @property
    def lines(self) -> list[LineResult]:
        return [line for page in self.pages for line in page.lines if line.text]

    @property
    def words(self) -> list[WordResult]:
        return [word for line in self.lines for word in line.words]

    def to_dict(self, chars: bool = True) -> dict:
        return {"source": self.source, "text": self.text,
                "pages": [{**({"page": n} if n is not None else {}), **page.to_dict(chars)}
                          for page, n in zip(self.pages, self.page_numbers)]}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    def to_hocr(self) -> str:
        return hocr_document([page.to_hocr(i, self.source, standalone=False) for i, page in enumerate(self.pages, 1)])

    def to_alto(self) -> str:
        return alto_document([(self.source, page) for page in self.pages])


class Reader:
    """Reads documents with one recogniser and the page pipeline. Make one with `crnn_ocr.load()`."""

    def __init__(self, recognizer, text_filter: TextFilter | None = None, layout: str = "auto",
                 pdf_text: str = "auto", dpi: float | None = None, detector=None, limits: Limits | None = None):
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}")
        self.recognizer = recognizer
        self.text_filter = text_filter
        self.layout = layout
        self.pdf_text = pdf_text
        self.dpi = dpi
        self.detector = detector
        self.limits = limits or Limits()

    def read(self, source: ImageInput | Sequence[ImageInput], *, layout: str | None = None,
             pages: str | None = None) -> Document | list[Document]:
        """Read one input (a Document) or a list of inputs (a list of Documents, in order).

        Args:
            source: a path (image or PDF), bytes, numpy array (H, W) or (H, W, 3), or PIL image; or a list.
            layout: auto (default) | page | line | word, as `ocr recognize --layout`.
            pages: PDF pages, e.g. "1-3,7" (default: all).
        """
        if isinstance(source, list | tuple):
            return list(self.read_iter(source, layout=layout, pages=pages))
        return self._read_one(source, layout or self.layout, pages)

    def read_iter(self, sources: Iterable[ImageInput], *, layout: str | None = None,
                  pages: str | None = None) -> Iterator[Document]:
        """Documents one by one, each decoded only when its turn comes (memory stays flat for long lists)."""
        for source in sources:
            yield self._read_one(source, layout or self.layout, pages)

    def _read_one(self, source: ImageInput, layout: str, pages: str | None) -> Document:
        name = str(source) if isinstance(source, (str, Path)) else type(source).__name__
        document = Document(name)
        if is_pdf(source):
            for page in iter_pdf_pages(source, pages, self.dpi, text_layer=self.pdf_text != "ocr",
                                       max_pixels=self.limits.max_pixels, max_bytes=self.limits.max_bytes):
                if isinstance(page, Exception):
                    raise page
                if self.pdf_text == "layer" or (self.pdf_text == "auto" and has_text_layer(page)):
                    document.pages.append(page_from_text_layer(page))
                    document.page_numbers.append(page.index + 1)
                    continue
                read = read_pages(self.recognizer, [page.image], layout, self.text_filter, detector=self.detector,
                                  limits=self.limits)[0]
                document.pages.append(read)
                document.page_numbers.append(page.index + 1)
            return document
        channels = 3 if self.detector is not None else self.recognizer.cfg.channels  # the detector sees colour
        array = source if isinstance(source, np.ndarray) else read_image(
            source, channels=channels, max_pixels=self.limits.max_pixels, max_bytes=self.limits.max_bytes)
        document.pages = read_pages(self.recognizer, [array], layout, self.text_filter, detector=self.detector,
                                    limits=self.limits)
        document.page_numbers = [None]
        return document


def load(model: str | Path | None = None, *, backend: str = "auto", dictionary: str | None = DEFAULT_DICTIONARY,
         verifier: bool | str | Path | TextFilter = True, detector: bool | str | Path = True, layout: str = "auto",
         threads: int = 0, batch_size: int = 32, limits: Limits | None = None) -> Reader:
    """A Reader with the shipped models (or `model`), set up as `ocr recognize` is by default.

    Args:
        model: a `.onnx` or `.pt` recogniser; default the shipped one (inside the installed package).
        backend: auto (by file type) | onnx | torch.
        dictionary: word-list correction: a language code (crnn_ocr.defaults.WORD_LIST_LANGUAGES), a word-list file, or None.
        verifier: True for the shipped page verifier, False for none, a path to an exported one, or any
            `TextFilter` callable.
        detector: True for the shipped text detector (photos), False for none, or a path to an exported one.
        layout: auto | page | photo | line | word.
        threads: CPU threads for the networks (0: the runtime's default).
        batch_size: crops per forward pass.
        limits: bytes, pixels, lines and seconds one input may cost (`crnn_ocr.Limits`; default its defaults).
    """
    recognizer = load_recognizer(model, backend, threads, batch_size)
    if dictionary is not None:
        from crnn_ocr.errors import VocabError
        from crnn_ocr.text.dictionary import load_dictionary

        try:
            recognizer.set_decoder(dictionary=load_dictionary(dictionary, recognizer.vocab))
        except VocabError:
            if dictionary != DEFAULT_DICTIONARY:
                raise  # a model that cannot spell the default language's words simply reads without it
    text_filter = None
    if verifier is True:
        found = defaults.find_verifier(".onnx")
        text_filter = LazyVerifier(found, threads) if found is not None else None
    elif isinstance(verifier, (str, Path)):
        text_filter = LazyVerifier(verifier, threads)
    elif verifier:
        text_filter = verifier
    return Reader(recognizer, text_filter, layout, detector=default_detector(detector, threads), limits=limits)
