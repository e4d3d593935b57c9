"""`ocr serve`: read images and PDFs over HTTP (the `serve` extra: FastAPI, uvicorn, python-multipart)."""

from __future__ import annotations

import click

from crnn_ocr.cli.common import DICTIONARY_OPTION, fail, handles_errors
from crnn_ocr.serve.config import (
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT,
    ENV_VAR,
    ServeConfig,
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 listens on every interface (put a reverse proxy in front).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes, each with its own models, reading one upload at a time (about one per core).")
@click.option("--model", "-m", type=click.Path(dir_okay=False, exists=True),
              help="Recogniser (.onnx, or .pt with torch installed). Default: the shipped model.")
@click.option("--layout", type=click.Choice(["auto", "page", "photo", "line", "word"]), default="auto",
              show_default=True, help="Default layout; a request may ask for another (layout=).")
@click.option("--detector", type=click.Path(dir_okay=False, exists=True),
              help="Text detector (.onnx) for photos. Default: the shipped one, if any.")
@click.option("--no-detector", is_flag=True, help="Read photos with the document line finder.")
@DICTIONARY_OPTION
@click.option("--decoder", type=click.Choice(["greedy", "beam"]), default="greedy", show_default=True)
@click.option("--beam-width", type=click.IntRange(1, 100), default=10, show_default=True)
@click.option("--lexicon", type=click.Path(dir_okay=False, exists=True),
              help="Word list: every reading is a word from it.")
@click.option("--verifier", type=click.Path(dir_okay=False, exists=True),
              help="Text / non-text verifier (an exported .onnx). Default: the shipped one.")
@click.option("--no-verifier", is_flag=True, help="Keep every line candidate found on pages.")
@click.option("--pdf-text", type=click.Choice(["auto", "ocr", "layer"]), default="auto", show_default=True,
              help="Default for PDF pages with their own text; a request may ask for another (pdf_text=).")
@click.option("--threads", type=click.IntRange(0, 256), default=0,
              help="CPU threads of the networks in each worker (0: the usable cores shared among the workers).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 4096), default=DEFAULT_MAX_UPLOAD_BYTES / (1 << 20),
              show_default=True, help="Largest request body in MiB (413 past it).")
@click.option("--max-pixels", type=click.IntRange(1, 1 << 40), default=DEFAULT_MAX_PIXELS, show_default=True,
              help="Most decoded pixels of one image, checked from its header before decoding (413 past it); PDF "
                   "pages are rendered within it.")
@click.option("--max-pages", type=click.IntRange(1, 100_000), default=DEFAULT_MAX_PAGES, show_default=True,
              help="Most PDF pages read in one request (413 past it).")
@click.option("--queue", type=click.IntRange(1, 10_000), default=DEFAULT_QUEUE, show_default=True,
              help="Requests one worker holds at once, the one being read included (503 with Retry-After past it).")
@click.option("--timeout", type=click.FloatRange(0.01, 86_400), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds for an upload to arrive (408) and again for its reading, waiting included (504).")
@click.option("--root-path", default="", help="The path prefix a reverse proxy serves this under, e.g. /ocr.")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated, or *).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@handles_errors
def serve(host, port, workers, model, layout, detector, no_detector, dictionary, decoder, beam_width, lexicon,
          verifier, no_verifier, pdf_text, threads, batch_size, max_upload_mb, max_pixels, max_pages, queue, timeout,
          root_path, forwarded_allow_ips, log_level):
    """Serve OCR over HTTP: POST /v1/read (an image or a PDF; the JSON of `ocr recognize --json`), GET /healthz,
    and a web page at / that draws the boxes over the image. See docs/serve.md."""
    from crnn_ocr.serve import require_extra

    require_extra()  # before any model is loaded: a missing extra is one line and exit 2
    if detector and no_detector:
        fail("--detector and --no-detector exclude each other")
    if verifier and no_verifier:
        fail("--verifier and --no-verifier exclude each other")
    if verifier and not verifier.lower().endswith(".onnx"):
        fail("--verifier: the server reads with an exported .onnx verifier (`ocr dbn export`)")
    if not threads:
        from crnn_ocr.page.parallel import usable_cores

        threads = max(1, usable_cores() // workers)
    config = ServeConfig(host=host, port=port, workers=workers, model=model, dictionary=dictionary, decoder=decoder,
                         beam_width=beam_width, lexicon=lexicon, verifier=False if no_verifier else verifier or True,
                         detector=False if no_detector else detector or True, layout=layout, pdf_text=pdf_text,
                         threads=threads, batch_size=batch_size, max_upload_bytes=int(max_upload_mb * (1 << 20)),
                         max_pixels=max_pixels, max_pages=max_pages, queue=queue, timeout=timeout)
    from crnn_ocr.serve.engine import Engine

    engine = Engine.load(config)  # here first: a bad model or dictionary is one line, not a crash in each worker
    if layout == "photo" and engine.detector is None:
        fail("--layout photo needs a text detector: none is shipped yet; give --detector FILE.onnx")
    _check_address(host, port)
    import uvicorn

    options = dict(host=host, port=port, log_level=log_level, root_path=root_path, proxy_headers=True,
                   forwarded_allow_ips=forwarded_allow_ips, server_header=False, timeout_graceful_shutdown=30)
    click.echo(f"ocr serve: http://{host if ':' not in host else f'[{host}]'}:{port}/ ({workers} worker(s), "
               f"{threads} thread(s) each; Ctrl-C stops)", err=True)
    if workers == 1:
        from crnn_ocr.serve import create_app

        uvicorn.run(create_app(config, engine=engine), **options)
        return
    import os

    del engine  # each worker process loads its own
    os.environ[ENV_VAR] = config.to_json()
    uvicorn.run("crnn_ocr.serve.app:app_from_env", factory=True, workers=workers, **options)


def _check_address(host: str, port: int) -> None:
    """Fail in one line when the address cannot be listened on (in use, not ours), before uvicorn tries."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        fail(f"--host {host}: {e.strerror}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as e:
            fail(f"cannot listen on {host}:{port}: {e.strerror}")
