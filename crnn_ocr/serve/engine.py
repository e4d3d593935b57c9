"""The reading behind `POST /v1/read`, free of any web framework: options checked, bytes in, a reply out.

`Engine.read` turns the bytes of one image or PDF into exactly what `ocr recognize` writes for it (the same
models, the same `recognize_page_cli`), or raises `ServeError` with the HTTP status and a one-line message.
`Slots` bounds the requests a worker holds at once.

>>> ReadOptions.parse({"layout": "word", "format": "text"}, ServeConfig()).layout
'word'
>>> slots = Slots(1); slots.try_acquire(), slots.try_acquire()
(True, False)
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from crnn_ocr.errors import ImageError, ImageTooLargeError, OcrError
from crnn_ocr.serve.config import MAX_BEAM_WIDTH, ServeConfig

FORMATS = {  # format -> media type of the answer
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "text": "text/plain; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
    "hocr": "application/xhtml+xml; charset=utf-8",
    "alto": "application/xml; charset=utf-8",
}
DECODERS = ("greedy", "beam")


class ServeError(Exception):
    """A request that cannot be answered with a reading: its HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(one_line(message))
        self.status, self.message, self.headers = status, one_line(message), headers or {}


def one_line(message: str, limit: int = 500) -> str:
    """A message on one line, of bounded length (messages quote file names and library errors)."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ReadOptions:
    """What one request asks for; the same names and values as `ocr recognize`'s flags."""

    layout: str = "auto"
    dictionary: str = "en"
    pages: str | None = None
    pdf_text: str = "auto"
    dpi: float | None = None
    format: str = "json"
    decoder: str = "greedy"
    beam_width: int = 10

    NAMES = ("layout", "dictionary", "pages", "pdf_text", "dpi", "format", "decoder", "beam_width")

    @classmethod
    def parse(cls, params: dict[str, str], config: ServeConfig) -> ReadOptions:
        """Options from query or form parameters (`pdf-text` and `beam-width` are accepted for the dashes of
        the CLI); an unknown name or a bad value is a ServeError 400 that says what is allowed."""
        from crnn_ocr.image.pdf import PDF_TEXT_MODES, parse_page_ranges
        from crnn_ocr.page.reading import LAYOUTS

        values = {name.replace("-", "_"): value for name, value in params.items()}
        unknown = sorted(set(values) - set(cls.NAMES))
        if unknown:
            raise ServeError(400, f"unknown parameter {unknown[0]!r}: use {', '.join(cls.NAMES)}")

        def choice(name: str, allowed, default: str) -> str:
            value = values.get(name, default)
            if value not in allowed:
                raise ServeError(400, f"bad {name} {value!r}: use one of {', '.join(allowed)}")
            return value

        pages = values.get("pages") or None
        if pages is not None:
            if len(pages) > 200:
                raise ServeError(400, "bad pages: too long")
            try:
                parse_page_ranges(pages, 1 << 20)
            except ValueError as e:
                raise ServeError(400, str(e)) from None
        dpi = values.get("dpi") or None
        if dpi is not None:
            try:
                dpi = float(dpi)
            except ValueError:
                dpi = -1.0
            if not 36 <= dpi <= 1200:
                raise ServeError(400, f"bad dpi {values['dpi']!r}: use a number from 36 to 1200")
        beam = values.get("beam_width", str(config.beam_width))
        if not beam.isdigit() or not 1 <= int(beam) <= MAX_BEAM_WIDTH:
            raise ServeError(400, f"bad beam_width {beam!r}: use a whole number from 1 to {MAX_BEAM_WIDTH}")
        dictionary = values.get("dictionary", config.dictionary)
        if dictionary.lower() == "none":
            dictionary = "none"
        elif dictionary != config.dictionary:  # a request names a shipped list; only the operator names files
            from crnn_ocr.defaults import WORD_LIST_LANGUAGES, word_list

            if word_list(dictionary) is None:
                raise ServeError(400, f"bad dictionary {dictionary!r}: use a shipped language "
                                      f"({' '.join(WORD_LIST_LANGUAGES)}) or none")
        return cls(layout=choice("layout", LAYOUTS, config.layout), dictionary=dictionary, pages=pages,
                   pdf_text=choice("pdf_text", PDF_TEXT_MODES, config.pdf_text), dpi=dpi,
                   format=choice("format", tuple(FORMATS), "json"), decoder=choice("decoder", DECODERS, config.decoder),
                   beam_width=int(beam))


@dataclass
class Reply:
    """A successful reading: the body and its media type, plus headers (page errors of a PDF)."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


class Slots:
    """At most `size` requests held at once. A request takes a slot when it arrives and gives it back when it
    is answered, or, when its reading goes on past the timeout, when the reading really ends."""

    def __init__(self, size: int):
        self.size, self.used = size, 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.used -= 1


class Engine:
    """The models of one worker (loaded once) and the reading of one upload at a time.

    Args:
        reader: a `crnn_ocr.reader.Reader` (`crnn_ocr.load()`): its recogniser, verifier and detector are used.
        config: the server's limits and defaults.
        lexicon: words the reading must come from (`--lexicon`), or None.
    """

    def __init__(self, reader, config: ServeConfig, lexicon: list[str] | None = None):
        self.reader, self.config, self.lexicon = reader, config, lexicon
        self.limits = limits_of(config)
        self.recognizer = reader.recognizer
        self.text_filter = reader.text_filter
        self.detector = reader.detector
        self._variants: OrderedDict[tuple, object] = OrderedDict()
        self._dictionaries: dict[str, object] = {}
        self._lock = threading.Lock()  # one reading at a time: decoders and lazily loaded models are not shared
        self.seconds = 1.0  # a running average of how long one reading takes (for Retry-After)

    @classmethod
    def load(cls, config: ServeConfig) -> Engine:
        """The models `ocr recognize` would load with the same flags (`crnn_ocr.load`), set up as the config says."""
        from pathlib import Path

        from crnn_ocr.reader import load

        lexicon = None
        if config.lexicon:
            try:
                lexicon = Path(config.lexicon).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as e:
                raise OcrError(f"cannot read lexicon {config.lexicon}: {e}") from e
        dictionary = None if config.dictionary.lower() == "none" else config.dictionary
        reader = load(config.model, dictionary=dictionary, verifier=config.verifier, detector=config.detector,
                      layout=config.layout, threads=config.threads, batch_size=config.batch_size,
                      limits=limits_of(config))
        engine = cls(reader, config, lexicon)
        if config.decoder != "greedy" or lexicon is not None:
            reader.recognizer.set_decoder(config.decoder, config.beam_width, lexicon,
                                          dictionary=reader.recognizer.decoder.dictionary)
        engine._variants[(config.dictionary, config.decoder, config.beam_width)] = reader.recognizer
        return engine

    @property
    def model_name(self) -> str:
        path = getattr(self.recognizer, "path", None)
        return path.name if path is not None else type(self.recognizer).__name__

    def recognizer_for(self, options: ReadOptions):
        """The recogniser with this request's decoder and dictionary: the shared network, its own decoder."""
        key = (options.dictionary, options.decoder, options.beam_width)
        found = self._variants.get(key)
        if found is not None:
            self._variants.move_to_end(key)
            return found
        variant = copy.copy(self.recognizer)  # the onnxruntime session is shared, the decoder is its own
        variant.set_decoder(options.decoder, options.beam_width, self.lexicon,
                            dictionary=self._dictionary(options.dictionary))
        self._variants[key] = variant
        while len(self._variants) > 32:
            self._variants.popitem(last=False)
        return variant

    def _dictionary(self, name: str):
        if name == "none":
            return None
        if name not in self._dictionaries:
            from crnn_ocr.errors import VocabError
            from crnn_ocr.text.dictionary import load_dictionary

            try:
                self._dictionaries[name] = load_dictionary(name, self.recognizer.vocab)
            except VocabError as e:
                if name != self.config.dictionary:
                    raise ServeError(400, f"dictionary {name}: {e}") from None
                self._dictionaries[name] = None  # the default is dropped for a model that cannot spell it, as the CLI does
        return self._dictionaries[name]

    def read(self, data: bytes, name: str, options: ReadOptions, pdf: bool | None = None) -> Reply:
        """The reading of one uploaded image or PDF in `options.format`, as `ocr recognize` writes it; `pdf`
        None tells a PDF by its signature. Raises ServeError (400 unreadable, 413 over a limit)."""
        started = time.monotonic()
        with self._lock:
            try:
                reply = self._read(data, name, options, pdf)
            except ImageTooLargeError as e:
                raise ServeError(413, _named(name, e)) from None
            except ImageError as e:
                raise ServeError(400, _named(name, e)) from None
            except OcrError as e:  # a model or dictionary problem of this request's options
                raise ServeError(400, str(e)) from None
        self.seconds = 0.8 * self.seconds + 0.2 * (time.monotonic() - started)
        return reply

    def _read(self, data: bytes, name: str, options: ReadOptions, pdf: bool | None) -> Reply:
        from crnn_ocr.image.io import read_image
        from crnn_ocr.image.pdf import is_pdf
        from crnn_ocr.page.command import recognize_page_cli

        if not data:
            raise ServeError(400, "empty upload: send an image or a PDF")
        if options.layout == "photo" and self.detector is None:
            raise ServeError(400, "layout photo needs a text detector: this server runs without one")
        recognizer = self.recognizer_for(options)
        channels = 3 if self.detector is not None else recognizer.cfg.channels  # the detector sees colour
        pdf = pdf or (pdf is None and is_pdf(data))
        if pdf:
            total = self._count_pages(data, options)
            items = self._pdf_items(data, name, options, channels)
        else:
            items = [(name, read_image(data, channels=channels, max_pixels=self.limits.max_pixels,
                                       max_bytes=self.limits.max_bytes), None)]
            total = 1
        output = "json" if options.format in ("json", "jsonl", "text") else options.format
        lines: list[str] = []
        errors: list[str] = []

        def error(message: str) -> None:
            if message.startswith("error: "):
                errors.append(one_line(message.removeprefix("error: ")))

        failures = recognize_page_cli(recognizer, items, layout=options.layout, output=output, single=total == 1,
                                      text_filter=self.text_filter, progress=False, total=total, out=lines.append,
                                      err=error, detector=self.detector, limits=self.limits)
        if failures == total:
            raise ServeError(400, errors[0] if errors else f"{name}: nothing could be read")
        headers = {"X-Page-Errors": str(failures)} if failures else {}
        if options.format in ("tsv", "jsonl"):
            return Reply(("\n".join(lines) + "\n").encode(), FORMATS[options.format], headers)
        if output != "json":  # hocr, alto: one document
            return Reply(lines[0].encode() + b"\n", FORMATS[options.format], headers)
        records = [json.loads(line) for line in lines]
        text = "\f".join(record["text"] for record in records)  # pages apart by a form feed, as pdftotext does
        if options.format == "text":
            return Reply((text + "\n").encode(), FORMATS["text"], headers)
        body = records[0] if not pdf else {"path": records[0]["path"], "text": text, "pages": records,
                                           **({"errors": errors} if errors else {})}
        return Reply(json.dumps(body, ensure_ascii=False).encode(), FORMATS["json"], headers)

    def _count_pages(self, data: bytes, options: ReadOptions) -> int:
        from crnn_ocr.image.pdf import parse_page_ranges, pdf_page_count

        count = pdf_page_count(data)
        chosen = len(parse_page_ranges(options.pages, count))
        if chosen == 0:
            raise ServeError(400, f"no pages to read: the PDF has {count} pages")
        if chosen > self.config.max_pages:
            raise ServeError(413, f"too many pages: {chosen} to read, limit {self.config.max_pages} per request "
                                  f"(ask for fewer, e.g. pages=1-{self.config.max_pages})")
        return chosen

    def _pdf_items(self, data: bytes, name: str, options: ReadOptions, channels: int):
        """The pages of a PDF as `crnn_ocr.page.inputs.read_inputs` yields them for a file, one at a time."""
        from crnn_ocr.page.inputs import pdf_page_rows

        return pdf_page_rows(data, name, channels, pages=options.pages, pdf_text=options.pdf_text, dpi=options.dpi,
                             limits=self.limits, page_name=name)


def limits_of(config: ServeConfig):
    """The per-input limits of `crnn_ocr.page.limits` for this server: its byte and pixel caps, and its timeout
    as the time one image or PDF page may take (so a reading past the timeout stops soon after, its slot freed)."""
    from crnn_ocr.page.limits import Limits

    return Limits(max_bytes=config.max_upload_bytes, max_pixels=config.max_pixels, seconds=config.timeout)


def _named(name: str, error: Exception) -> str:
    """A reader's message about the bytes ("123 bytes: not an image ...") told about the upload's name."""
    message = str(error)
    head, sep, rest = message.partition(": ")
    if sep and (head.endswith(" bytes") or head == "PDF"):
        return f"{name}: {rest}"
    return message
