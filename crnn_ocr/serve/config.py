"""What `ocr serve` is set up with: the models (as `ocr recognize` takes them) and the limits of the service.

One `ServeConfig` per server; with several uvicorn workers it travels to each worker process as JSON in the
environment variable `CRNN_OCR_SERVE_CONFIG` (the worker's app factory reads it and loads its own models).

>>> ServeConfig.from_json(ServeConfig(max_pages=3).to_json()).max_pages
3
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from crnn_ocr.defaults import DEFAULT_DICTIONARY

ENV_VAR = "CRNN_OCR_SERVE_CONFIG"

# The limits' defaults (docs/serve.md, docs/limits.md): a phone photo or a 300 dpi A3 scan fits, one request
# cannot take the worker's memory, and a client learns at once when the worker is full.
DEFAULT_MAX_UPLOAD_BYTES = 20 << 20  # request body: the file and its multipart envelope
DEFAULT_MAX_PIXELS = 50_000_000  # decoded pixels of one image (checked from the header, before decoding)
DEFAULT_MAX_PAGES = 20  # PDF pages read in one request
DEFAULT_QUEUE = 8  # requests in flight per worker (being uploaded, waiting or being read); more get 503
DEFAULT_TIMEOUT = 60.0  # seconds for the upload, and again for the reading (waiting included)
MAX_BEAM_WIDTH = 100  # a request may ask for beam search, up to this width


@dataclass
class ServeConfig:
    """The models and limits of one server. Model fields mean what `ocr recognize`'s flags of the same name mean."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    model: str | None = None
    dictionary: str = DEFAULT_DICTIONARY  # a language code, a word-list file, or "none"
    decoder: str = "greedy"
    beam_width: int = 10
    lexicon: str | None = None  # a word-list file: answer only with its words
    verifier: str | bool = True  # True: the shipped one, False: none, or an exported .onnx
    detector: str | bool = True  # True: the shipped one, False: none, or an exported .onnx
    layout: str = "auto"
    pdf_text: str = "auto"
    threads: int = 1  # CPU threads of the networks in each worker
    batch_size: int = 32
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_pages: int = DEFAULT_MAX_PAGES
    queue: int = DEFAULT_QUEUE
    timeout: float = DEFAULT_TIMEOUT

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    @classmethod
    def from_env(cls) -> ServeConfig:
        """The config `ocr serve` left for its worker processes (the defaults when there is none)."""
        text = os.environ.get(ENV_VAR)
        return cls.from_json(text) if text else cls()
