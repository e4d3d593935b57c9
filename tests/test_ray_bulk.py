"""Bulk OCR through Ray Data (`crnn_ocr.bulk.ray_data`, examples/ray_bulk.py): words rendered here are read back
from the Parquet files, a corrupt file is an error row (not a failed job), and the Ray path reads as
`crnn_ocr.load().read()` does. The callable class is also tested without Ray, called on a plain dict batch."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import crnn_ocr

REPO = Path(__file__).resolve().parents[1]
FONT = REPO / "data" / "fonts" / "DejaVuSans.ttf"
WORDS = ["hello", "window", "garden", "number"]
PDF_WORDS = ["station", "morning"]


def render(word: str) -> Image.Image:
    """A clear word crop: black DejaVu Sans on white, 40 px, with a margin."""
    font = ImageFont.truetype(str(FONT), 40)
    image = Image.new("L", (40 + int(font.getlength(word)), 70), 255)
    ImageDraw.Draw(image).text((20, 10), word, font=font, fill=0)
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Word images, a two-page PDF (one word per page) and one corrupt image."""
    root = tmp_path_factory.mktemp("bulk_in")
    for word in WORDS:
        render(word).save(root / f"{word}.png")
    first, *rest = [render(word) for word in PDF_WORDS]
    first.save(root / "two_pages.pdf", save_all=True, append_images=rest, resolution=150)
    (root / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    return root


@pytest.fixture(scope="module")
def reader():
    return crnn_ocr.load(threads=1)


# --- without Ray: the callable class on a plain dict batch -----------------------------------------------------

def test_predictor_reads_a_dict_batch_as_the_reader_does(folder, reader):
    from crnn_ocr.bulk.ray_data import OcrPredictor

    predictor = OcrPredictor()
    paths = [folder / f"{word}.png" for word in WORDS] + [folder / "corrupt.png", folder / "two_pages.pdf"]
    batch = {"bytes": np.array([p.read_bytes() for p in paths], dtype=object), "path": np.array([str(p) for p in paths])}
    records = predictor.read_batch(batch)
    assert [r["path"] for r in records] == [str(p) for p in paths]
    for record, path, word in zip(records, paths, WORDS):
        assert record["error"] is None and record["text"] == word == reader.read(path).text
        line = record["lines"][0]
        assert record["pages"] == 1 and line["page"] is None and 0 < record["confidence"] <= 1
        x0, y0, x1, y1 = line["words"][0]["box"]
        width, height = Image.open(path).size
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height and len(line["quad"]) == 4
    corrupt, pdf = records[len(WORDS):]
    assert corrupt["text"] is None and corrupt["lines"] == [] and "corrupt" in corrupt["error"]
    assert pdf["error"] is None and pdf["pages"] == 2 and pdf["text"] == "\f".join(PDF_WORDS)
    assert [line["page"] for line in pdf["lines"]] == [1, 2]


def test_predictor_takes_arrays_as_read_images_gives_them(reader):
    """read_images gives (B, H, W, 3) arrays when the images share a size, else an object array of arrays."""
    from crnn_ocr.bulk.ray_data import OcrPredictor

    predictor = OcrPredictor()
    images = [np.asarray(render(word).convert("RGB").resize((220, 70))) for word in WORDS[:2]]
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.asarray(render(word).convert("RGB")) for word in WORDS[2:]]
    for batch, words, arrays in (({"image": np.stack(images)}, WORDS[:2], images), ({"image": ragged}, WORDS[2:], ragged)):
        records = predictor.read_batch(batch)
        assert [r["text"] for r in records] == [reader.read(a).text for a in arrays] == words
        assert [r["path"] for r in records] == ["0", "1"]  # no path column: the row in the batch
    bad = predictor.read_batch({"image": np.array([np.zeros((4, 4, 2), np.uint8)], dtype=object), "path": ["x"]})
    assert bad[0]["error"] and bad[0]["text"] is None


def test_predictor_returns_one_arrow_schema_even_for_a_batch_of_errors(folder):
    pytest.importorskip("pyarrow", reason="the Arrow output needs pyarrow (it comes with the `ray` extra)")
    from crnn_ocr.bulk.ray_data import OcrPredictor, schema

    predictor = OcrPredictor()
    good = predictor({"bytes": np.array([(folder / "hello.png").read_bytes()], dtype=object), "path": np.array(["h"])})
    bad = predictor({"bytes": np.array([b"junk", b""], dtype=object), "path": np.array(["j", "e"])})
    assert good.schema == bad.schema == schema()  # blocks of any batch concatenate and write to one Parquet schema
    assert good.column("text").to_pylist() == ["hello"] and bad.column("error").null_count == 0 and bad.num_rows == 2


def test_bulk_imports_and_reads_without_ray_or_torch(folder):
    """`import crnn_ocr.bulk` and the callable class work with ray (and torch) unimportable."""
    code = ("import sys; sys.modules['ray'] = None; sys.modules['torch'] = None\n"
            "import numpy as np, crnn_ocr.bulk\n"
            "from crnn_ocr.bulk.ray_data import OcrPredictor\n"
            "batch = {'bytes': np.array([open(sys.argv[1], 'rb').read()], dtype=object), 'path': np.array(['w'])}\n"
            "print(OcrPredictor().read_batch(batch)[0]['text'])\n")
    run = subprocess.run([sys.executable, "-c", code, str(folder / "window.png")], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "window"


# --- on a local Ray instance ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (the `ray` extra)")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def load_example():
    spec = importlib.util.spec_from_file_location("ray_bulk_example", REPO / "examples" / "ray_bulk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_example_writes_a_parquet_row_per_file(ray_local, folder, tmp_path):
    import pyarrow.parquet as pq

    from crnn_ocr.bulk.ray_data import schema

    out = tmp_path / "parquet"
    code = load_example().main([str(folder), str(out), "--concurrency", "2", "--batch-size", "2"])
    assert code == 1  # the corrupt file is reported in the exit code, and the job still wrote every row
    table = pq.read_table(out)
    assert table.schema.equals(schema(), check_metadata=False)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    assert table.num_rows == len(files)
    rows = {Path(row["path"]).name: row for row in table.to_pylist()}
    assert sorted(rows) == [p.name for p in files]
    for word in WORDS:
        row = rows[f"{word}.png"]
        assert row["error"] is None and row["text"] == word and row["lines"][0]["words"][0]["text"] == word
    assert rows["two_pages.pdf"]["pages"] == 2 and rows["two_pages.pdf"]["text"].split("\f") == PDF_WORDS
    corrupt = rows["corrupt.png"]
    assert corrupt["error"] and corrupt["text"] is None
    with pytest.raises(FileExistsError):  # a second run never mixes its files with the first one's
        load_example().main([str(folder), str(out)])


@pytest.mark.slow
def test_read_images_through_map_batches_reads_as_the_reader(ray_local, folder, reader):
    from ray.data import ActorPoolStrategy

    from crnn_ocr.bulk.ray_data import OcrPredictor

    paths = [str(folder / f"{word}.png") for word in WORDS]
    ds = ray_local.data.read_images(paths, include_paths=True, mode="RGB")
    rows = ds.map_batches(OcrPredictor, fn_constructor_kwargs={"layout": "auto"}, batch_size=4,
                          compute=ActorPoolStrategy(size=1), num_cpus=1).take_all()
    got = {Path(row["path"]).name: row["text"] for row in rows}
    assert got == {Path(p).name: reader.read(p).text for p in paths}
    assert sorted(got.values()) == sorted(WORDS)
