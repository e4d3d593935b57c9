"""`ocr recognize`: read the text in images (crops, pages, receipts, screenshots)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from crnn_ocr.cli.common import DICTIONARY_OPTION, dictionary_for, fail, handles_errors
from crnn_ocr.page.inputs import expand_inputs, read_inputs
from crnn_ocr.page.limits import DEFAULT_MAX_LINES, DEFAULT_SECONDS, Limits, parse_size


def load_recognizer(model: str | None, backend: str, threads: int, batch_size: int):
    """The library's loader (`crnn_ocr.reader.load_recognizer`): the CLI and `crnn_ocr.load()` share defaults."""
    from crnn_ocr.reader import load_recognizer as load

    return load(model, backend, threads, batch_size)


def _size(ctx, param, value: str) -> int:
    try:
        return parse_size(value, binary=param.name == "max_bytes")
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command()
@click.argument("images", nargs=-1, required=True)
@click.option("--model", "-m", help="Model file (.onnx or .pt). Default: the shipped model.")
@click.option("--backend", type=click.Choice(["auto", "onnx", "torch"]), default="auto", show_default=True)
@click.option("--layout", type=click.Choice(["auto", "page", "photo", "line", "word"]), default="auto", show_default=True,
              help="page: a document, lines found by the line finder; photo: lines found by the text detector; "
                   "line/word: the image is one line/word; auto: decide per image.")
@click.option("--detector", type=click.Path(dir_okay=False, exists=True),
              help="Text detector (.onnx) for photos. Default: the shipped weights/text_detector.int8.onnx, if any.")
@click.option("--no-detector", is_flag=True, help="Read photos with the document line finder.")
@click.option("--format", "output", type=click.Choice(["text", "json", "tsv", "hocr", "alto", "pdf"]),
              help="Output format (default text; --json is --format json; pdf: a searchable PDF, needs --out).")
@click.option("--out", "-o", "out_path", type=click.Path(dir_okay=False),
              help="Write the output to this file instead of stdout (written whole at the end, or not at all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON record per image (text, confidence, characters, lines).")
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--beam-width", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--lexicon", type=click.Path(dir_okay=False), help="Word list: output only words from it.")
@DICTIONARY_OPTION
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="CPU threads (0: library default).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--verifier", type=click.Path(dir_okay=False, exists=True),
              help="Text / non-text verifier (.onnx or .pt) that drops false line candidates on pages. "
                   "Default: the shipped weights/*verifier*.onnx.")
@click.option("--no-verifier", is_flag=True, help="Keep every line candidate found on pages.")
@click.option("--pages", metavar="RANGES", help="PDF pages to read, e.g. 1-3,7 (default: all).")
@click.option("--pdf-text", type=click.Choice(["auto", "ocr", "layer"]), default="auto", show_default=True,
              help="PDF pages with their own text: auto uses it where present, ocr always reads the image, layer only "
                   "the text.")
@click.option("--dpi", type=click.FloatRange(36, 1200), help="Render PDF pages at this resolution (default: chosen "
                                                              "per page for its text height).")
@click.option("--workers", type=click.IntRange(0, 512), default=0,
              help="Processes reading in parallel, each with its own models and one thread; results keep the input "
                   "order. 0 (default): the cores this process may use, when there are at least 4 inputs per core.")
@click.option("--max-bytes", default="256M", show_default=True, metavar="SIZE", callback=_size,
              help="Refuse an input file (or stdin) larger than this, before reading it (e.g. 50M, 1G; 1M = 1024 KiB).")
@click.option("--max-pixels", default="120M", show_default=True, metavar="SIZE", callback=_size,
              help="Refuse an image of more decoded pixels than this (1M = a million), checked from its header; PDF "
                   "pages are rendered at a lower resolution instead.")
@click.option("--batch-pixels", default="64M", show_default=True, metavar="SIZE", callback=_size,
              help="Decoded pixels held at once: images are read together until about this many (memory stays "
                   "bounded by it, results do not change).")
@click.option("--max-lines", type=click.IntRange(0), default=DEFAULT_MAX_LINES, show_default=True,
              help="Read at most this many lines of one image or page, the first in reading order (0: no limit).")
@click.option("--timeout", type=click.FloatRange(0), default=DEFAULT_SECONDS, show_default=True, metavar="SECONDS",
              help="Time for one image or PDF page; past it the lines read so far are output with a warning "
                   "(0: no limit).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@handles_errors
def recognize(images, model, backend, layout, detector, no_detector, output, out_path, as_json, decoder, beam_width,
              lexicon, dictionary, threads, batch_size, verifier, no_verifier, pages, pdf_text, dpi, workers, max_bytes,
              max_pixels, batch_pixels, max_lines, timeout, quiet):
    """Read the text in IMAGES (image files, PDFs, folders, or - for stdin): word or line crops, pages, receipts,
    screenshots."""
    limits = Limits(max_bytes=max_bytes, max_pixels=max_pixels, max_lines=max_lines, seconds=timeout)
    rec = load_recognizer(model, backend, threads, batch_size)
    words = None
    if lexicon:
        from crnn_ocr.errors import ImageError
        from crnn_ocr.image.io import read_file_bounded

        try:  # bounded like any input: a device or a huge file is refused before it fills memory
            words = read_file_bounded(lexicon, max_bytes).decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError, ImageError) as e:
            fail(f"cannot read lexicon {lexicon}: {str(e).removeprefix(lexicon + ': ')}")
    rec.set_decoder(decoder, beam_width, words, dictionary=dictionary_for(rec.vocab, dictionary))
    from crnn_ocr.page import recognize_page_cli

    single = len(images) == 1 and images[0] != "-" and not Path(images[0]).is_dir()
    if verifier and no_verifier:
        fail("--verifier and --no-verifier exclude each other")
    text_filter = None if no_verifier else default_verifier(verifier, threads)
    items, total = expand_inputs(images, pages)
    single = single and total == 1
    output = output or ("json" if as_json else "text")
    if output == "pdf" and not out_path:
        fail("--format pdf writes a file: give --out FILE.pdf")
    results_on_terminal = out_path is None and sys.stdout.isatty() and output != "json"
    show_progress = not quiet and sys.stderr.isatty() and total > 1 and (out_path is not None or results_on_terminal)
    if detector and no_detector:
        fail("--detector and --no-detector exclude each other")
    from crnn_ocr.reader import default_detector

    text_detector = None if no_detector else default_detector(detector or True, threads)
    if layout == "photo" and text_detector is None:
        fail("--layout photo needs a text detector: none is shipped yet; give --detector FILE.onnx")
    # the PDF keeps the colours of the page, and the detector sees them
    channels = 3 if output == "pdf" or text_detector is not None else rec.cfg.channels
    from crnn_ocr.page.parallel import usable_cores

    processes = workers or min(usable_cores(), total // 4)
    if processes > 1 and output != "pdf" and all(name != "-" for name, _, _ in items):
        inputs = _in_workers(items, processes, model, backend, dictionary, decoder, beam_width, words, verifier,
                             no_verifier, text_detector, layout, batch_size, pages, pdf_text, dpi, rec, limits)
    else:
        inputs = read_inputs(items, channels, pages, "ocr" if output == "pdf" else pdf_text, dpi, limits)
    with _Output(out_path, output) as sink:
        failures = recognize_page_cli(rec, inputs, layout=layout, output=output, single=single, text_filter=text_filter,
                                      progress=show_progress, total=total, out=sink.write,
                                      err=lambda m: click.echo(m, err=True), pdf_out=sink.pdf,
                                      detector=text_detector, limits=limits, batch_pixels=batch_pixels)
        if failures == total:
            sink.discard()
    if failures:
        sys.exit(1)


def _in_workers(items, processes, model, backend, dictionary, decoder, beam_width, words, verifier, no_verifier,
                text_detector, layout, batch_size, pages, pdf_text, dpi, rec, limits):
    """The inputs read by worker processes, each set up as this command's own reader is."""
    from crnn_ocr.cli.common import load_verifier_file
    from crnn_ocr.defaults import find_verifier
    from crnn_ocr.page.parallel import ReaderSpec, read_in_workers

    verifier_path = None if no_verifier else (verifier or find_verifier(".onnx"))
    spec = ReaderSpec(model=model, backend=backend, dictionary=None if rec.decoder.dictionary is None else dictionary,
                      decoder=decoder, beam_width=beam_width, lexicon=words,
                      verifier=str(verifier_path) if verifier_path else None, verifier_loader=load_verifier_file,
                      detector=str(text_detector.path) if text_detector is not None else None, layout=layout,
                      batch_size=batch_size, pages=pages, pdf_text=pdf_text, dpi=dpi, limits=limits)
    return read_in_workers(items, spec, processes)


class _Output:
    """Where results go: stdout, or a file written under a temporary name and renamed when complete (a PDF
    for --format pdf). Nothing is left at --out when every input failed or the command was interrupted."""

    def __init__(self, path: str | None, output: str):
        self.path, self.pdf, self.file, self.keep = path, None, None, True
        if path is None:
            return
        if output == "pdf":
            from crnn_ocr.page.pdf_output import SearchablePdf

            self.pdf = SearchablePdf(path)
        else:
            import tempfile

            target = Path(path).resolve()
            fd, self.tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
            self.file = open(fd, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        if self.file is not None:
            self.file.write(text + "\n")
        else:
            click.echo(text)

    def discard(self) -> None:
        self.keep = False

    def __enter__(self) -> _Output:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        ok = exc_type is None and self.keep
        if self.pdf is not None:
            self.pdf.close() if ok else self.pdf.abort()
        if self.file is not None:
            import os

            self.file.close()
            if ok:
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
            else:
                os.unlink(self.tmp)


def default_verifier(path: str | None, threads: int):
    """--verifier PATH (an exported .onnx, or a .pt training checkpoint), else the shipped one, loaded lazily."""
    from crnn_ocr.cli.common import load_verifier_file
    from crnn_ocr.defaults import find_verifier
    from crnn_ocr.reader import LazyVerifier

    found = Path(path) if path else find_verifier(".onnx")
    return LazyVerifier(found, threads, load=load_verifier_file) if found is not None else None
