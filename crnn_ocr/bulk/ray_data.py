"""OCR over a Ray cluster with Ray Data: a callable class for `Dataset.map_batches` and a folder-to-Parquet helper.

Needs the `ray` extra (`pip install 'crnn_ocr[ray]'`); this module imports Ray only inside the functions that
use it, so `OcrPredictor` also runs (and is tested) without Ray, on a plain dict batch.

    import ray
    from ray.data import ActorPoolStrategy
    from crnn_ocr.bulk.ray_data import OcrPredictor

    ds = ray.data.read_binary_files("s3://bucket/scans/", include_paths=True)      # or read_images(...)
    ds = ds.map_batches(OcrPredictor, fn_constructor_kwargs={"layout": "auto"}, batch_size=16,
                        compute=ActorPoolStrategy(size=8), num_cpus=1)          # older Ray: concurrency=8
    ds.write_parquet("s3://bucket/ocr/")

Each actor loads the models once (`crnn_ocr.load`, one thread by default: give it one CPU, `num_cpus=1`, and as
many actors as cores) and turns each batch into one Arrow table, one row per input row (`SCHEMA`):

- `path` (string): the input's path as Ray gives it (`include_paths=True`), else its row number in the batch;
- `text` (string): the whole text in reading order, PDF pages separated by a form feed (`Document.text`);
- `confidence` (float64): mean line confidence weighted by line length (0 when nothing was read);
- `pages` (int32): pages read (1 for an image, the pages read for a PDF);
- `lines` (list of struct): each line's `page` (PDF page number from 1; null for an image), `text`,
  `confidence`, `box` [x0, y0, x1, y1] (int32 pixels), `quad` [[x, y] x 4] (float32, clockwise from the text's
  top-left), and its `words` (list of struct `text`, `confidence`, `box`, `quad`);
- `warnings` (list of string): what the page pipeline reported (a time limit reached, lines dropped);
- `error` (string): null when the row was read; else why it was not (a corrupt image, an unreadable PDF), and
  then `text`, `confidence` and `pages` are null and `lines` empty. A bad input never fails the batch or the job.

Nested structs rather than a JSON string: Parquet keeps their types, `pyarrow.parquet.read_table(...)
.to_pylist()` gives plain dicts, pandas gives lists of dicts, and DuckDB, Spark and Polars can unnest and filter
lines without parsing anything.

A PDF is one row (all its pages; `pages` counts them, each line carries its `page`), so the output has one row per
input file, as `read_binary_files` gives them. Images decoded by Ray (`read_images`) cannot carry a decode error
into a row: Ray fails a file it cannot decode before the batch reaches here. `read_binary_files` leaves decoding to
the actors, so every bad file becomes an `error` row: `read_folder_to_parquet` reads that way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.image.io import IMAGE_SUFFIXES

# what `read_folder_to_parquet` reads from a folder: every image kind `ocr recognize` reads, and PDFs
FILE_EXTENSIONS = [suffix.lstrip(".") for suffix in IMAGE_SUFFIXES] + ["pdf"]
BATCH_IMAGES = 64  # decoded images read together in one `read_pages` call (their lines share network batches)
BATCH_PIXELS = 64_000_000  # ... or until this many pixels are decoded, whichever comes first


def schema():
    """The Arrow schema of every table `OcrPredictor` returns (see the module's docstring)."""
    import pyarrow as pa

    quad = pa.list_(pa.list_(pa.float32()))
    box = pa.list_(pa.int32())
    word = pa.struct([("text", pa.string()), ("confidence", pa.float32()), ("box", box), ("quad", quad)])
    line = pa.struct([("page", pa.int32()), ("text", pa.string()), ("confidence", pa.float32()), ("box", box),
                      ("quad", quad), ("words", pa.list_(word))])
    return pa.schema([("path", pa.string()), ("text", pa.string()), ("confidence", pa.float64()),
                      ("pages", pa.int32()), ("lines", pa.list_(line)), ("warnings", pa.list_(pa.string())),
                      ("error", pa.string())])


def _columns(batch: Any) -> Mapping[str, Any]:
    """The batch's columns as a mapping, whichever `batch_format` Ray was asked for (numpy dict, pandas, pyarrow)."""
    if isinstance(batch, Mapping):
        return batch
    if hasattr(batch, "to_pydict"):  # a pyarrow Table
        return batch.to_pydict()
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # a pandas DataFrame
        return {name: batch[name].to_list() for name in batch.columns}
    raise TypeError(f"a batch is a dict of columns, a pandas DataFrame or a pyarrow Table, not {type(batch).__name__}")


def _quad(quad) -> list[list[float]]:
    return [[float(x), float(y)] for x, y in quad]


def _record(path: str, pages: Sequence, page_numbers: Sequence[int | None]) -> dict:
    """One output row from the PageResults of one input."""
    lines, weight, total, warnings = [], 0, 0.0, []
    for page, number in zip(pages, page_numbers):
        warnings.extend(page.warnings)
        for line in page.lines:
            if not line.text:
                continue
            weight += len(line.text)
            total += len(line.text) * line.confidence
            lines.append({"page": number, "text": line.text, "confidence": float(line.confidence),
                          "box": [int(v) for v in line.box], "quad": _quad(line.quad),
                          "words": [{"text": w.text, "confidence": float(w.confidence), "box": [int(v) for v in w.box],
                                     "quad": _quad(w.quad)} for w in line.words]})
    return {"path": path, "text": "\f".join(page.to_text() for page in pages),
            "confidence": total / weight if weight else 0.0, "pages": len(pages), "lines": lines,
            "warnings": warnings, "error": None}


def _failed(path: str, error: Exception) -> dict:
    """An error row: the library's own errors say what went wrong in their message; others get their type too."""
    from crnn_ocr.errors import OcrError

    message = str(error) if isinstance(error, OcrError) else f"{type(error).__name__}: {error}"
    return {"path": path, "text": None, "confidence": None, "pages": None, "lines": [], "warnings": [],
            "error": message}


class OcrPredictor:
    """A callable class for `ray.data.Dataset.map_batches`: each actor loads the models once, then reads batches.

    It takes the rows Ray's readers give: `read_binary_files(..., include_paths=True)` (columns `bytes`, `path`;
    images and PDFs) and `read_images(..., include_paths=True)` (columns `image`, an array per row, and `path`),
    and returns a `pyarrow.Table` of `schema()`, one row per input row, in order.

    Args (as `ocr recognize`'s options; give them through `fn_constructor_kwargs`):
        model: a recogniser `.onnx` (or `.pt` with torch installed on the workers); default the shipped one.
        layout: auto | page | photo | line | word.
        dictionary: a language code (crnn_ocr.defaults.WORD_LIST_LANGUAGES), a word-list file, or "none" / None for the raw reading.
        detector: True for the shipped text detector (photos), False for none, or a path to an exported `.onnx`.
        verifier: True for the shipped page verifier, False for none, or a path.
        threads: CPU threads per actor (default 1: scale with more actors, one per core).
        batch_size: crops per network forward pass.
        pages: PDF pages to read, e.g. "1-3,7" (default all).
        pdf_text: auto | ocr | layer, as `ocr recognize --pdf-text`.
        dpi: render PDF pages at this resolution (default: chosen per page).
    """

    def __init__(self, model: str | None = None, *, layout: str = "auto", dictionary: str | None = "en",
                 detector: bool | str = True, verifier: bool | str = True, threads: int = 1, batch_size: int = 32,
                 pages: str | None = None, pdf_text: str = "auto", dpi: float | None = None):
        import crnn_ocr

        if isinstance(dictionary, str) and dictionary.lower() == "none":
            dictionary = None
        if pdf_text not in ("auto", "ocr", "layer"):
            raise ValueError(f"pdf_text must be auto, ocr or layer, not {pdf_text!r}")
        self.reader = crnn_ocr.load(model, dictionary=dictionary, detector=detector, verifier=verifier,
                                    layout=layout, threads=threads, batch_size=batch_size)
        self.reader.pdf_text, self.reader.dpi = pdf_text, dpi
        self.pages = pages

    def __call__(self, batch: Any):
        """The batch read: a `pyarrow.Table` of `schema()`, one row per input row."""
        import pyarrow as pa

        return pa.Table.from_pylist(self.read_batch(batch), schema=schema())

    def read_batch(self, batch: Any) -> list[dict]:
        """The batch read as plain Python records (what `__call__` turns into an Arrow table); needs no pyarrow."""
        from crnn_ocr.image.io import read_image
        from crnn_ocr.image.pdf import is_pdf

        columns = _columns(batch)
        if "bytes" in columns:
            sources = columns["bytes"]
        elif "image" in columns:
            sources = columns["image"]
        else:
            raise KeyError(f"a batch needs a 'bytes' column (read_binary_files) or an 'image' column (read_images); "
                           f"this one has {sorted(columns)}")
        count = len(sources)
        paths = [str(p) for p in columns["path"]] if "path" in columns else [str(k) for k in range(count)]
        records: list[dict | None] = [None] * count
        reader = self.reader
        channels = 3 if reader.detector is not None else reader.recognizer.cfg.channels  # as Reader.read decides
        pending: list[tuple[int, np.ndarray]] = []
        pixels = 0
        for k, source in enumerate(sources):
            try:
                if isinstance(source, np.ndarray) and source.dtype != object:
                    # an image Ray decoded: checked and converted as `read_image` does, kept as it is when plain
                    image = read_image(source, channels=1 if source.ndim == 2 else 3)
                elif is_pdf(source):
                    document = reader.read(bytes(source), pages=self.pages)
                    records[k] = _record(paths[k], document.pages, document.page_numbers)
                    continue
                else:
                    image = read_image(bytes(source), channels=channels)
            except Exception as e:  # noqa: BLE001 - one bad input is one error row, never a failed batch
                records[k] = _failed(paths[k], e)
                continue
            pending.append((k, image))
            pixels += image.size
            if len(pending) >= BATCH_IMAGES or pixels >= BATCH_PIXELS:
                self._read_images(pending, paths, records)
                pending, pixels = [], 0
        self._read_images(pending, paths, records)
        return records  # type: ignore[return-value]

    def _read_images(self, pending: list[tuple[int, np.ndarray]], paths: list[str], records: list) -> None:
        """Decoded images read together (their lines share the network's batches); if that fails, one by one, so
        only the image at fault gets an error."""
        from crnn_ocr.page.reading import read_pages

        if not pending:
            return
        reader = self.reader

        def read(images):
            return read_pages(reader.recognizer, images, reader.layout, reader.text_filter, detector=reader.detector)

        try:
            results = read([image for _, image in pending])
        except Exception:  # noqa: BLE001
            results = None
        for n, (k, image) in enumerate(pending):
            try:
                page = results[n] if results is not None else read([image])[0]
                records[k] = _record(paths[k], [page], [None])
            except Exception as e:  # noqa: BLE001
                records[k] = _failed(paths[k], e)


def ocr_dataset(src: str | Path | Sequence[str], *, concurrency: int | None = None, batch_size: int = 16,
                file_extensions: Sequence[str] | None = tuple(FILE_EXTENSIONS), **options):
    """A lazy Ray Dataset of OCR results (rows of `schema()`) for the files under `src`: a folder, a file, a glob,
    a list of them, or any URI Ray reads (s3://, gs://, ...). `concurrency` actors (default: one per CPU of the
    cluster), each with one CPU; `batch_size` files per call; `options` go to `OcrPredictor`."""
    import ray
    from ray.data import ActorPoolStrategy

    if concurrency is None:
        concurrency = max(1, int(ray.cluster_resources().get("CPU", 1)))
    paths = [str(p) for p in src] if isinstance(src, (list, tuple)) else str(src)
    threads = int(options.get("threads", 1) or 1)
    # reading the files is I/O (the actors decode): its tasks take no CPU from the actors, which hold one each
    ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0,
                                    file_extensions=list(file_extensions) if file_extensions else None)
    return ds.map_batches(OcrPredictor, fn_constructor_kwargs=options, batch_size=batch_size, batch_format="numpy",
                          compute=ActorPoolStrategy(size=concurrency), num_cpus=threads)


def read_folder_to_parquet(src: str | Path | Sequence[str], dst: str | Path, *, concurrency: int | None = None,
                           batch_size: int = 16, file_extensions: Sequence[str] | None = tuple(FILE_EXTENSIONS),
                           **options) -> dict:
    """Read every image and PDF under `src` and write the results as Parquet files into the folder `dst` (a local
    path on one machine; on a cluster a path every node shares, or s3:// gs:// ...).

    Calls `ray.init()` unless it was called (it joins RAY_ADDRESS if set, else starts a local instance). An
    existing, non-empty local `dst` is refused (Ray would add files beside the old ones). Returns {"rows",
    "errors"} counted from what was written, and "seconds": the job's time (actors started, files read, Parquet
    written).
    """
    import time

    import ray

    if "://" not in str(dst) and Path(dst).is_dir() and any(Path(dst).iterdir()):
        raise FileExistsError(f"{dst}: not empty; write into a new folder")
    if not ray.is_initialized():
        ray.init()
    start = time.perf_counter()
    ocr_dataset(src, concurrency=concurrency, batch_size=batch_size, file_extensions=file_extensions,
                **options).write_parquet(str(dst), ray_remote_args={"num_cpus": 0})  # I/O, beside the actors
    seconds = time.perf_counter() - start
    counts = ray.data.read_parquet(str(dst)).select_columns(["error"]).map_batches(_count_errors, batch_format="pyarrow")
    blocks = counts.take_all()  # one small row per block written
    rows, errors = sum(int(b["rows"]) for b in blocks), sum(int(b["errors"]) for b in blocks)
    return {"rows": rows, "errors": errors, "seconds": seconds}


def _count_errors(table) -> dict:
    return {"rows": np.array([table.num_rows]), "errors": np.array([table.num_rows - table["error"].null_count])}
