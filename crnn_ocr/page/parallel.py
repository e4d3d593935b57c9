"""Reading on all cores: worker processes, each with its own models and one thread, results in input order.

`read_in_workers(items, spec, workers)` yields what `ocr recognize` prints, as soon as each input (in order) is
done; at most `2 * workers` inputs are in flight, so memory is bounded by the worker count, not the input count.
Ctrl-C stops the workers and raises KeyboardInterrupt in the caller.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class ReaderSpec:
    """How each worker builds its reader: plain values, so the spec pickles to any start method."""

    model: str | None = None
    backend: str = "auto"
    dictionary: str | None = "en"
    decoder: str = "greedy"
    beam_width: int = 10
    lexicon: list[str] | None = None
    verifier: str | None = None  # a path; None: none
    verifier_loader: Any = None  # a module-level function (path, threads) -> verifier, e.g. the CLI's .pt/.onnx loader
    detector: str | None = None  # a path; None: none
    layout: str = "auto"
    batch_size: int = 32
    pages: str | None = None
    pdf_text: str = "auto"
    dpi: float | None = None
    read_options: dict[str, Any] = field(default_factory=dict)
    limits: Any = None  # crnn_ocr.page.limits.Limits; None: the defaults


_STATE: dict[str, Any] = {}


def _start(spec: ReaderSpec) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    from crnn_ocr.reader import LazyDetector, LazyVerifier, load_recognizer
    from crnn_ocr.text.dictionary import load_dictionary

    recognizer = load_recognizer(spec.model, spec.backend, threads=1, batch_size=spec.batch_size)
    words = load_dictionary(spec.dictionary, recognizer.vocab) if spec.dictionary else None
    recognizer.set_decoder(spec.decoder, spec.beam_width, spec.lexicon, dictionary=words)
    _STATE["recognizer"] = recognizer
    _STATE["verifier"] = LazyVerifier(spec.verifier, 1, load=spec.verifier_loader) if spec.verifier else None
    _STATE["detector"] = LazyDetector(spec.detector, 1) if spec.detector else None
    _STATE["spec"] = spec


def _read_one(item: tuple[str, str | None, str | None]) -> list[tuple]:
    """Everything one input yields: (name, PageResult or None, error or None, page or None, dpi or None) rows."""
    from crnn_ocr.page.inputs import read_inputs
    from crnn_ocr.page.reading import PageResult, read_pages

    spec: ReaderSpec = _STATE["spec"]
    recognizer, detector = _STATE["recognizer"], _STATE["detector"]
    name, path, error = item
    channels = 3 if detector is not None else recognizer.cfg.channels
    rows = []
    for row in read_inputs([(name, Path(path) if path else None, error)], channels, spec.pages, spec.pdf_text, spec.dpi,
                           spec.limits):
        name_, payload, error_, *where = row
        page, dpi = (list(where) + [None, None])[:2]
        if payload is not None and not isinstance(payload, PageResult):
            payload = read_pages(recognizer, [payload], spec.layout, _STATE["verifier"], detector=detector,
                                 limits=spec.limits, **spec.read_options)[0]
        rows.append((name_, payload, error_, page, dpi))
    return rows


def read_in_workers(items: Iterable[tuple[str, Path | None, str | None]], spec: ReaderSpec,
                    workers: int) -> Iterator[tuple]:
    """Rows as `recognize_page_cli` takes them, in input order, read by `workers` processes."""
    context = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    pool = context.Pool(workers, initializer=_start, initargs=(spec,))
    in_flight: deque = deque()
    try:
        for name, path, error in items:
            if name == "-":  # stdin belongs to this process
                raise ValueError("stdin ('-') cannot be read with --workers > 1")
            in_flight.append(pool.apply_async(_read_one, ((name, str(path) if path else None, error),)))
            if len(in_flight) >= 2 * workers:
                yield from in_flight.popleft().get()
        while in_flight:
            yield from in_flight.popleft().get()
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
