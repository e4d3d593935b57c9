"""Dataset readers and writers: LMDB (CRNN layout), folders, .gt.txt pairs, synthesis, augmentation, batching."""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest

from crnn_ocr.datasets.lmdb_writer import LmdbWriter
from crnn_ocr.datasets.sources import (
    SIZES_KEY,
    ConcatSource,
    FileListSource,
    LmdbSource,
    open_source,
    open_sources,
    release_env,
)
from crnn_ocr.errors import DatasetError, ImageError
from crnn_ocr.image.io import read_image


def encoded(width: int, height: int, fmt: str = ".png", value: int = 0) -> bytes:
    """A white image with a dark bar whose length depends on `value` (so different images differ)."""
    image = np.full((height, width), 255, np.uint8)
    image[height // 4 : 3 * height // 4, 1 : 2 + (value % max(1, width - 2))] = 20
    ok, buf = cv2.imencode(fmt, image)
    assert ok
    return buf.tobytes()


def raw_env(path: Path) -> lmdb.Environment:
    """The LMDB opened directly (py-lmdb allows one environment per path and process: drop the cached one)."""
    release_env(path)
    return lmdb.open(str(path), readonly=True, lock=False)


def write_reference_lmdb(path: Path, items: dict[str, bytes]) -> None:
    """Write an LMDB by hand the way deep-text-recognition-benchmark's create_lmdb_dataset.py does."""
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, value in items.items():
            txn.put(key.encode(), value)
    env.close()


SAMPLES = [
    (encoded(40, 20, value=1), "hello"),
    (encoded(17, 31, ".jpg", value=2), "Grüße €5"),
    (encoded(120, 32, value=3), "two words"),
    (encoded(64, 16, ".bmp", value=4), "a\tb"),
    (encoded(9, 9, value=5), "日本"),
]


# ---------------------------------------------------------------- LMDB


def test_lmdb_round_trip_is_byte_equal(tmp_path):
    out = tmp_path / "rt.lmdb"
    with LmdbWriter(out, commit_every=2) as writer:  # several commits
        for data, label in SAMPLES:
            writer.add(data, label)
    source = open_source(out)
    assert isinstance(source, LmdbSource)
    assert len(source) == len(SAMPLES)
    for i, (data, label) in enumerate(SAMPLES):
        assert source.image_bytes(i) == data
        assert source.label(i) == label
    expected_sizes = [read_image(d).shape[::-1] for d, _ in SAMPLES]
    assert source.sizes().tolist() == [list(s) for s in expected_sizes]
    # the raw layout: ASCII count, 1-based contiguous keys, UTF-8 labels
    env = raw_env(out)
    with env.begin() as txn:
        assert txn.get(b"num-samples") == b"5"
        assert txn.get(b"image-000000000") is None and txn.get(b"image-000000006") is None
        assert txn.get(b"label-000000002") == "Grüße €5".encode()
        assert txn.get(b"image-000000003") == SAMPLES[2][0]
    env.close()


def test_reference_layout_written_by_hand(tmp_path):
    path = tmp_path / "ref"
    items = {"num-samples": b"3"}
    for k, (data, label) in enumerate(SAMPLES[:3], 1):
        items[f"image-{k:09d}"] = data
        items[f"label-{k:09d}"] = label.encode("utf-8")
    write_reference_lmdb(path, items)
    source = open_source(path)
    assert len(source) == 3
    assert source.labels() == [label for _, label in SAMPLES[:3]]
    assert [source.image_bytes(i) for i in range(3)] == [d for d, _ in SAMPLES[:3]]
    # no crnn_ocr-sizes key: sizes come from the image headers
    assert source.sizes().tolist() == [list(read_image(d).shape[::-1]) for d, _ in SAMPLES[:3]]
    assert open_source(path / "data.mdb").labels() == source.labels()


def test_reference_labels_are_nfc(tmp_path):
    path = tmp_path / "nfd"
    write_reference_lmdb(path, {"num-samples": b"1", "image-000000001": SAMPLES[0][0],
                                "label-000000001": unicodedata.normalize("NFD", "Grüße").encode()})
    assert open_source(path).label(0) == unicodedata.normalize("NFC", "Grüße")


def _first_image_shape(source, queue) -> None:
    try:
        queue.put(source.load(0, 1)[0].shape)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        queue.put(f"{type(e).__name__}: {e}")


def test_an_lmdb_read_before_a_fork_reads_in_the_forked_child(tmp_path):
    """Training's loader workers are forked after the trainer has read the LMDB; lmdb >= 3 refuses to open a path
    twice in one process, so the child must drop the copy of the environment it inherited."""
    import multiprocessing

    path = tmp_path / "fork.lmdb"
    with LmdbWriter(path) as w:
        for image, label in SAMPLES:
            w.add(image, label)
    source = open_source(path)
    parent_shape = source.load(0, 1)[0].shape
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_first_image_shape, args=(source, queue))
    child.start()
    child_result = queue.get(timeout=60)
    child.join(60)
    assert child_result == parent_shape == (20, 40)
    assert source.load(1, 1)[1] == "Grüße €5"  # and the parent still reads


def test_several_lmdbs_at_once(tmp_path):
    for name, part in (("a.lmdb", SAMPLES[:2]), ("b.lmdb", SAMPLES[2:])):
        with LmdbWriter(tmp_path / "all" / name) as writer:
            for data, label in part:
                writer.add(data, label)
    both = open_sources([tmp_path / "all" / "a.lmdb", tmp_path / "all" / "b.lmdb"])
    assert isinstance(both, ConcatSource) and len(both) == 5
    assert both.labels() == [label for _, label in SAMPLES]
    assert both.image_bytes(3) == SAMPLES[3][0]
    assert both.sizes().shape == (5, 2)
    folder = open_source(tmp_path / "all")  # a folder of LMDBs
    assert folder.labels() == both.labels()
    with pytest.raises(IndexError):
        both.image_bytes(5)


def test_writer_grows_the_map_instead_of_reserving(tmp_path):
    out = tmp_path / "big.lmdb"
    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, 16_000, dtype=np.uint8).tobytes() for _ in range(60)]  # ~1 MB
    with LmdbWriter(out, initial_map_size=1 << 16, commit_every=7) as writer:
        for k, blob in enumerate(blobs):
            writer.add(blob, f"x{k}", size=(k + 1, 8))
    source = LmdbSource(out)
    assert [source.image_bytes(i) for i in range(60)] == blobs
    assert source.sizes()[:, 0].tolist() == list(range(1, 61))
    env = raw_env(out)
    map_size = env.info()["map_size"]
    env.close()
    assert (1 << 16) < map_size <= 64 << 20  # grew from 64 KiB, nothing like a terabyte
    assert (out / "data.mdb").stat().st_size < 8 << 20


def test_writer_refuses_existing_and_overwrite_is_seen_by_readers(tmp_path):
    out = tmp_path / "w.lmdb"
    with LmdbWriter(out) as writer:
        writer.add(SAMPLES[0][0], "first")
    assert open_source(out).labels() == ["first"]  # caches a read environment for this path
    with pytest.raises(DatasetError, match="already exists"):
        LmdbWriter(out)
    with LmdbWriter(out, overwrite=True) as writer:
        writer.add(SAMPLES[1][0], "second")
        writer.add(SAMPLES[2][0], "third")
    assert open_source(out).labels() == ["second", "third"]


def _one_line_error(path: Path) -> str:
    with pytest.raises(DatasetError) as info:
        LmdbSource(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_lmdb_without_num_samples(tmp_path):
    write_reference_lmdb(tmp_path / "x", {"image-000000001": SAMPLES[0][0], "label-000000001": b"a"})
    assert "num-samples" in _one_line_error(tmp_path / "x")


def test_lmdb_with_non_numeric_num_samples(tmp_path):
    write_reference_lmdb(tmp_path / "x", {"num-samples": b"lots", "image-000000001": SAMPLES[0][0]})
    assert "not a number" in _one_line_error(tmp_path / "x")


def test_lmdb_of_garbage_bytes(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.mdb").write_bytes(np.random.default_rng(1).integers(0, 256, 20_000, np.uint8).tobytes())
    assert "broken LMDB" in _one_line_error(tmp_path / "x")


def test_folder_without_data_mdb(tmp_path):
    (tmp_path / "x").mkdir()
    assert "no data.mdb" in _one_line_error(tmp_path / "x")


def test_num_samples_larger_than_the_keys(tmp_path):
    write_reference_lmdb(tmp_path / "x", {"num-samples": b"3", "image-000000001": SAMPLES[0][0], "label-000000001": b"a",
                                          "image-000000002": SAMPLES[1][0], "label-000000002": b"b"})
    source = open_source(tmp_path / "x")
    assert len(source) == 3
    assert source.label(1) == "b"
    with pytest.raises(DatasetError, match="missing image-000000003"):
        source.image_bytes(2)
    with pytest.raises(DatasetError, match="missing label-000000003"):
        source.label(2)
    assert source.sizes().tolist() == [[40, 20], [17, 31], [0, 0]]  # unknown, not invented


def test_corrupt_entries_are_counted_not_replaced(tmp_path):
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.text.vocab import Vocab
    from crnn_ocr.train.data import Collate, SourceEntry, TrainDataset

    good = SAMPLES[0][0]
    out = tmp_path / "c.lmdb"
    with LmdbWriter(out) as writer:
        writer.add(good, "hello")
        writer.add(b"definitely not an image", "world")
        writer.add(good[: len(good) // 2], "truncated")
    source = open_source(out)
    with pytest.raises(ImageError):
        read_image(source.image_bytes(1))
    with pytest.raises(ImageError):
        read_image(source.image_bytes(2))
    assert source.sizes()[1].tolist() == [0, 0]
    cfg = ModelConfig(height=32)
    entries = [SourceEntry(source, 1.0, np.arange(3), np.ones(3, np.float32))]
    dataset = TrainDataset(entries, cfg, Vocab("abcdefghijklmnopqrstuvwxyz"), augment_prob=0.0)
    samples = [dataset[(0, i, 0)] for i in range(3)]
    assert samples[0] is not None and samples[1] is None and samples[2] is None
    batch = Collate(cfg)(samples)
    assert batch["corrupt"] == 2
    assert batch["images"].shape[0] == 1
    assert batch["target_lengths"].tolist() == [5]


# ---------------------------------------------------------------- folders


def _image_file(path: Path, width: int = 30, height: int = 12, value: int = 0) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encoded(width, height, path.suffix, value)
    path.write_bytes(data)
    return data


def test_labels_tsv_reader(tmp_path):
    root = tmp_path / "set"
    a = _image_file(root / "img" / "a.png", value=1)
    b = _image_file(root / "b.jpg", value=2)
    c = _image_file(root / "img" / "deep" / "c.png", value=3)
    nfd = unicodedata.normalize("NFD", "café")
    text = f"\ufeffimg/a.png\thello world\r\n\nb.jpg\t{nfd}\nimg/deep/c.png\tx\ty\u2028z\n"
    (root / "labels.tsv").write_bytes(text.encode("utf-8"))
    source = open_source(root)
    assert isinstance(source, FileListSource)
    assert source.labels() == ["hello world", "café", "x\ty\u2028z"]
    assert [source.image_bytes(i) for i in range(3)] == [a, b, c]
    assert source.sizes().tolist() == [[30, 12]] * 3
    assert open_source(root / "labels.tsv").labels() == source.labels()


def test_other_tsv_file_names(tmp_path):
    _image_file(tmp_path / "a.png")
    (tmp_path / "train.tsv").write_text("a.png\tone\n", encoding="utf-8")
    source = open_source(tmp_path / "train.tsv")
    assert source.labels() == ["one"] and source.name == "train"


def test_labels_tsv_errors(tmp_path):
    _image_file(tmp_path / "a.png")
    (tmp_path / "labels.tsv").write_text("a.png\tok\nno-tab-here\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"labels.tsv:2: expected"):
        open_source(tmp_path)
    (tmp_path / "labels.tsv").write_text("a.png\tok\nmissing.png\tgone\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="missing.png"):
        open_source(tmp_path)


def test_gt_txt_pairs_reader(tmp_path):
    a = _image_file(tmp_path / "p1" / "line_001.png", value=1)
    b = _image_file(tmp_path / "p2" / "line_002.jpg", value=2)
    (tmp_path / "p1" / "line_001.gt.txt").write_text("First line\n", encoding="utf-8")
    (tmp_path / "p2" / "line_002.gt.txt").write_text(unicodedata.normalize("NFD", "Zweite Zeile: ü") + "\r\n",
                                                     encoding="utf-8")
    c = _image_file(tmp_path / "p2" / "IMG_3.JPG", value=3)
    (tmp_path / "p2" / "IMG_3.gt.txt").write_text("upper-case suffix", encoding="utf-8")
    source = open_source(tmp_path)
    assert isinstance(source, FileListSource)
    assert source.labels() == ["First line", "upper-case suffix", "Zweite Zeile: ü"]
    assert [source.image_bytes(i) for i in range(3)] == [a, c, b]
    (tmp_path / "p2" / "orphan.gt.txt").write_text("no image", encoding="utf-8")
    with pytest.raises(DatasetError, match="orphan.gt.txt: no image"):
        open_source(tmp_path)


def test_open_source_rejects_what_it_cannot_read(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        open_source(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no data.mdb, labels.tsv or .gt.txt"):
        open_source(tmp_path / "empty")
    (tmp_path / "x.png").write_bytes(SAMPLES[0][0])
    with pytest.raises(DatasetError):
        open_source(tmp_path / "x.png")


# ---------------------------------------------------------------- synthesis


def test_synth_is_deterministic_for_a_seed(bundled_fonts):
    from crnn_ocr.datasets.synth import render_chunks

    first = list(render_chunks(10, bundled_fonts, seed=7, workers=1))
    again = list(render_chunks(10, bundled_fonts, seed=7, workers=1))
    other = list(render_chunks(10, bundled_fonts, seed=8, workers=1))
    assert len(first) == 10
    assert first == again
    assert [t for _, t, _ in first] != [t for _, t, _ in other]
    for data, text, (w, h) in first:
        assert text.strip()
        assert read_image(data).shape == (h, w)


def test_synthesize_to_lmdb_is_reproducible(tmp_path, bundled_fonts):
    from crnn_ocr.datasets.synth import synthesize
    from crnn_ocr.datasets.synth.fonts import BUNDLED_FONT_DIR

    outs = [tmp_path / "a.lmdb", tmp_path / "b.lmdb"]
    for out in outs:
        assert synthesize(out, 6, seed=11, workers=1, font_dirs=[str(BUNDLED_FONT_DIR)], progress=False) == 6
    a, b = (open_source(o) for o in outs)
    assert a.labels() == b.labels()
    assert all(a.image_bytes(i) == b.image_bytes(i) for i in range(6))
    assert a.sizes().tolist() == b.sizes().tolist()


def _fake_font(name: str, chars: str):
    from crnn_ocr.datasets.synth.fonts import FontInfo

    return FontInfo(f"/nonexistent/{name}.ttf", name, frozenset(chars))


def test_pick_font_never_chooses_a_font_lacking_a_glyph():
    from crnn_ocr.datasets.synth.render import Renderer

    latin = "abcdefghijklmnopqrstuvwxyz0123456789"
    fonts = [_fake_font("Full", latin + "€℃"), _fake_font("NoEuro", latin + "℃"), _fake_font("NoDegree", latin + "€"),
             _fake_font("Plain", latin), _fake_font("Plain2", latin)]
    renderer = Renderer(fonts)
    picked = {}
    for text in ("abc", "a €5", "25℃", "€ ℃", "z"):
        chosen = {renderer.pick_font(text, random.Random(seed)).family for seed in range(300)}
        assert all(next(f for f in fonts if f.family == name).covers(text) for name in chosen)
        picked[text] = chosen
    assert picked["€ ℃"] == {"Full"}
    assert picked["a €5"] <= {"Full", "NoDegree"}
    assert len(picked["abc"]) == 5  # every font gets used for text they all cover
    assert renderer.pick_font("日本", random.Random(0)) is None
    assert renderer.render("日本", random.Random(0)) is None


def test_bundled_fonts_coverage_matches_their_glyphs(bundled_fonts):
    from fontTools.ttLib import TTFont

    from crnn_ocr.datasets.synth.render import Renderer

    assert len(bundled_fonts) == 3
    for font in bundled_fonts:
        cmap = TTFont(font.path, lazy=True).getBestCmap()
        assert all(ord(c) in cmap for c in font.coverage)
    lacking = {f.family for f in bundled_fonts if not f.covers("℃")}
    assert lacking  # DejaVu Sans Mono has no ℃
    renderer = Renderer(bundled_fonts)
    for seed in range(100):
        assert renderer.pick_font("25℃", random.Random(seed)).family not in lacking
    image = renderer.render("25℃", random.Random(0))
    assert image is not None and image.ndim == 2 and image.dtype == np.uint8


def test_rendered_samples_are_sane(rendered_lmdb, bundled_fonts):
    source = open_source(rendered_lmdb)
    assert len(source) == 300
    labels = source.labels()
    assert all(t.strip() for t in labels)
    assert all(any(f.covers(t) for f in bundled_fonts) for t in labels)
    assert any(" " in t for t in labels) and any(" " not in t for t in labels)  # lines and words
    sizes = source.sizes()
    assert (sizes[:, 1] <= 64).all() and (sizes > 0).all()
    for i in range(0, 300, 37):
        assert read_image(source.image_bytes(i)).shape == (sizes[i, 1], sizes[i, 0])


# ---------------------------------------------------------------- augmentation and batching


@pytest.mark.parametrize("shape", [(32, 100), (20, 60, 3)])
def test_augment_keeps_images_readable(shape):
    from crnn_ocr.datasets.augment import augment

    base = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    changed = 0
    for seed in range(60):
        out = augment(base.copy(), np.random.default_rng(seed))
        again = augment(base.copy(), np.random.default_rng(seed))
        assert np.array_equal(out, again)
        assert out.dtype == np.uint8 and out.ndim == base.ndim
        assert 0.8 * shape[0] <= out.shape[0] <= 1.2 * shape[0]
        assert 0.8 * shape[1] <= out.shape[1] <= 1.2 * shape[1]
        changed += out.shape != base.shape or not np.array_equal(out, base)
    assert changed > 30


def _padding_share(source, batch_size: int, chunks: int, steps: int) -> float:
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.image.preprocess import padded_width, target_width
    from crnn_ocr.train.data import SourceEntry, StepSampler

    cfg = ModelConfig(height=32)
    sizes = source.sizes()
    aspect = sizes[:, 0] / np.maximum(sizes[:, 1], 1)
    entries = [SourceEntry(source, 1.0, np.arange(len(source)), aspect.astype(np.float32))]
    sampler = StepSampler(entries, batch_size, seed=0, chunks=chunks).range(0, steps)
    used = padded = 0
    for batch in sampler:
        widths = [target_width(int(sizes[i, 1]), int(sizes[i, 0]), cfg) for _, i, _ in batch]
        used += sum(widths)
        padded += padded_width(widths, cfg) * len(widths)
    return 1 - used / padded


def test_bucketing_reduces_padding(rendered_lmdb):
    source = open_source(rendered_lmdb)
    flat = _padding_share(source, 16, chunks=1, steps=48)
    bucketed = _padding_share(source, 16, chunks=8, steps=48)
    assert 0 < bucketed < 0.6 * flat


def test_collate_pads_to_the_widest_image():
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.text.vocab import Vocab
    from crnn_ocr.train.data import Collate

    cfg = ModelConfig(height=32)
    vocab = Vocab("abc")
    samples = [(np.full((32, 37), 200, np.uint8), vocab.encode("ab")), (np.full((32, 90), 90, np.uint8), vocab.encode("cab")),
               (np.full((32, 16), 10, np.uint8), vocab.encode("aaaaaaaa"))]  # needs 15 frames, has 4: too long
    batch = Collate(cfg)(samples)
    assert batch["too_long"] == 1 and batch["corrupt"] == 0
    assert tuple(batch["images"].shape) == (2, 1, 32, 92)  # 90 rounded up to the width stride
    assert batch["input_lengths"].tolist() == [10, 23]
    assert batch["targets"].tolist() == [1, 2, 3, 1, 2]
    # padding repeats each image's own background level, not black
    assert np.allclose(batch["images"][0, 0, :, 37:].numpy(), (200 / 255 - 0.5) / 0.5)


# ---------------------------------------------------------------- tools


def test_tools_helpers():
    from crnn_ocr.datasets.tools import frames_needed, histogram, split_indices

    assert frames_needed("abc") == 3 and frames_needed("aab") == 4 and frames_needed("") == 0
    rows = histogram([1, 1, 2, 5, 9, 10], bins=5)
    assert rows == [(1, 2, 3), (3, 4, 0), (5, 6, 1), (7, 8, 0), (9, 10, 2)]
    assert histogram([], 3) == [] and histogram([4, 4], 3) == [(4, 4, 2)]
    train, val = split_indices(20, 0.25, seed=1)
    assert len(val) == 5 and len(train) == 15
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(20))
    assert np.array_equal(split_indices(20, 0.25, seed=1)[1], val)
    assert len(split_indices(20, 3, seed=0)[1]) == 3
    with pytest.raises(DatasetError):
        split_indices(1, 0.5, 0)


def test_sizes_key_is_written(tmp_path):
    out = tmp_path / "s.lmdb"
    with LmdbWriter(out) as writer:
        writer.add(SAMPLES[0][0], "x")
    env = raw_env(out)
    with env.begin() as txn:
        assert np.frombuffer(txn.get(SIZES_KEY), "<u2").tolist() == [40, 20]
    env.close()


def test_document_style_renders_dark_lines_of_running_text_on_light_paper(bundled_fonts):
    from crnn_ocr.datasets.synth import SynthGenerator

    gen = SynthGenerator(bundled_fonts, style="document")
    samples = [gen.sample(random.Random(seed)) for seed in range(40)]
    texts = [t for _, t in samples]
    assert sum(len(t.split(" ")) >= 3 for t in texts) >= 30
    assert sum(any(c.islower() for c in t) for t in texts) >= 35  # running text, not the headline look
    assert max(len(t) for t in texts) > 60
    for image, _ in samples:
        assert image.ndim == 2 and image.shape[0] <= 64
        assert np.median(image) > 150  # paper
        assert np.percentile(image, 2) < np.median(image) - 60  # ink darker than paper
    scene = SynthGenerator(bundled_fonts)
    dark_scene = sum(np.median(scene.sample(random.Random(s))[0]) < 100 for s in range(40))
    assert dark_scene > 0  # the default look keeps dark backgrounds; the document look has none


def test_unknown_synth_style_is_refused(bundled_fonts):
    from crnn_ocr.datasets.synth import SynthGenerator

    with pytest.raises(ValueError, match="style"):
        SynthGenerator(bundled_fonts, style="poster")


def test_keycap_and_symbol_fonts_are_not_text_fonts():
    from crnn_ocr.datasets.synth.fonts import _is_text_family

    assert not _is_text_family("Linux Biolinum Keyboard O")
    assert not _is_text_family("Noto Color Emoji")
    assert _is_text_family("Linux Biolinum O") and _is_text_family("DejaVu Serif")


def test_sroie_recase_takes_the_case_of_words_read_alike_and_keeps_the_rest():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "data" / "recipes" / "recase_sroie.py"
    spec = importlib.util.spec_from_file_location("recase_sroie", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.recase("TOTAL AMOUNT: 12.00", "Total Amount: 12.00") == "Total Amount: 12.00"
    assert module.recase("SR TOTAL", "sR Tota1") == "SR TOTAL"  # short word and misread word keep the label
    assert module.recase("THANK YOU PLEASE COME", "Thank you come") == "Thank you PLEASE come"


def test_low_resolution_and_jpeg_looks_keep_size_and_degrade_detail():
    from crnn_ocr.datasets.augment import _jpeg, _low_resolution

    stripes = np.zeros((48, 120), np.uint8)
    stripes[:, ::2] = 255
    for seed in range(5):
        low = _low_resolution(stripes, np.random.default_rng(seed))
        assert low.shape == stripes.shape and low.dtype == np.uint8
        assert low.std() < 0.5 * stripes.std()
    colour = np.random.default_rng(1).integers(0, 256, (30, 80, 3), dtype=np.uint8)
    compressed = _jpeg(colour, 20)
    assert compressed.shape == colour.shape and not np.array_equal(compressed, colour)
    tiny = np.full((12, 40), 200, np.uint8)
    assert np.array_equal(_low_resolution(tiny, np.random.default_rng(0)), tiny)


def test_a_new_dataset_format_is_one_registered_class(tmp_path):
    import json

    from crnn_ocr.datasets import sources as sources_module
    from crnn_ocr.datasets.sources import FileListSource, readers, register_reader

    class JsonListSource(FileListSource):
        @classmethod
        def detect(cls, path):
            return (path / "index.json").is_file()

        @classmethod
        def open(cls, path):
            items = json.loads((path / "index.json").read_text())
            return cls(path, [(path / name, text) for name, text in items], path.name)

    folder = tmp_path / "jsonset"
    folder.mkdir()
    (folder / "a.png").write_bytes(SAMPLES[0][0])
    (folder / "index.json").write_text(json.dumps([["a.png", "hello"]]))
    with pytest.raises(DatasetError, match="no data.mdb, labels.tsv or .gt.txt"):
        open_source(folder)
    try:
        register_reader("test-json-list")(JsonListSource)
        assert readers()[-1] == "test-json-list"
        source = open_source(folder)
        assert isinstance(source, JsonListSource) and source.labels() == ["hello"]
        assert source.sample_name(0) == "a.png" and source.load(0)[1] == "hello"
        with pytest.raises(DatasetError, match="already registered"):
            register_reader("test-json-list")(JsonListSource)
    finally:
        sources_module._READERS.pop("test-json-list", None)


def _lmdb_of(path: Path, n: int = 300) -> Path:
    with LmdbWriter(path) as writer:
        for i in range(n):
            writer.add(SAMPLES[i % len(SAMPLES)][0], f"word{i}")
    return path


@pytest.mark.slow
def test_a_truncated_lmdb_is_one_clear_error_in_every_command_not_a_sigbus(tmp_path):
    import os
    import subprocess
    import sys

    lmdb_path = _lmdb_of(tmp_path / "x.lmdb")
    data = lmdb_path / "data.mdb"
    os.truncate(data, data.stat().st_size // 3)  # an interrupted copy
    repo = Path(__file__).resolve().parents[1]
    for args in (["data", "inspect", lmdb_path], ["data", "create-lmdb", lmdb_path, "--out", tmp_path / "y.lmdb", "-q"],
                 ["eval", "--data", lmdb_path, "-q"],
                 ["train", "--train", lmdb_path, "--out", tmp_path / "run", "--steps", "1", "-q"]):
        run = subprocess.run([sys.executable, str(repo / "cli.py"), *map(str, args)], capture_output=True, text=True,
                             cwd=repo, timeout=120)
        assert run.returncode == 1, (args, run.returncode, run.stderr[-500:])
        assert run.stderr.strip().splitlines()[-1].startswith("error: ") and "truncated LMDB" in run.stderr, args


def test_a_damaged_page_is_reported_per_sample(tmp_path):
    lmdb_path = _lmdb_of(tmp_path / "x.lmdb")
    data = lmdb_path / "data.mdb"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 65536] = bytes(65536)  # a zeroed 64 KB stretch
    data.write_bytes(bytes(raw))
    source = open_source(lmdb_path)
    failures = 0
    for i in range(len(source)):
        try:
            source.image_bytes(i), source.label(i)
        except DatasetError as e:
            failures += 1
            assert "damaged LMDB" in str(e) or "missing" in str(e) or "UTF-8" in str(e)
    assert failures > 0
