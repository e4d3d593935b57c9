"""Synthetic detection sets: deterministic, in the labels.jsonl layout, quads inside the image and tight, words
inside their lines, safe outputs. Rendered with the bundled fonts and a tiny photo set made here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from shapely.geometry import Polygon

from crnn_ocr.datasets.synth.fonts import BUNDLED_FONT_DIR
from crnn_ocr.detect import synth as synth_module
from crnn_ocr.detect.inpaint import MANIFEST, prepare_backgrounds
from crnn_ocr.detect.scoring import read_labels, score_dataset
from crnn_ocr.detect.synth import INK, compose_patch, synthesize_scenes
from crnn_ocr.errors import ConfigError, DatasetError

FONTS = [str(BUNDLED_FONT_DIR)]
COUNT = 3


def make_photos(folder: Path) -> Path:
    """Two 'photos' (gradient, a dark box as their text) in the labels.jsonl layout."""
    (folder / "images").mkdir(parents=True)
    lines = []
    for k in range(2):
        photo = np.zeros((180, 240, 3), np.uint8)
        photo[:] = np.linspace(60, 200, 240, dtype=np.uint8)[None, :, None]
        photo[80:100, 40 + 20 * k:160] = 10
        cv2.imwrite(str(folder / "images" / f"p{k}.jpg"), photo)
        quad = [[40 + 20 * k, 80], [160, 80], [160, 100], [40 + 20 * k, 100]]
        lines.append(json.dumps({"image": f"images/p{k}.jpg", "width": 240, "height": 180,
                                 "regions": [{"quad": quad, "text": None, "level": "line", "ignore": k == 1}]}))
    (folder / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("detect_synth")
    photos = make_photos(root / "photos")
    sets = {}
    for style in ("scene", "page"):
        for run in ("a", "b"):
            out = root / f"{style}_{run}"
            n = synthesize_scenes(out, COUNT, seed=5, style=style, font_dirs=FONTS, workers=1, progress=False,
                                  photos=photos, backgrounds_cache=root / "cache")
            assert n == COUNT
            sets[f"{style}_{run}"] = out
    return sets


def quads_of(record: dict, level: str) -> list[np.ndarray]:
    return [np.array(r["quad"]) for r in record["regions"] if r["level"] == level]


@pytest.mark.parametrize("style", ["scene", "page"])
def test_same_seed_same_images_and_labels(rendered, style):
    a, b = rendered[f"{style}_a"], rendered[f"{style}_b"]
    assert (a / "labels.jsonl").read_text() == (b / "labels.jsonl").read_text()
    for image in sorted((a / "images").iterdir()):
        assert image.read_bytes() == (b / "images" / image.name).read_bytes()


def test_worker_processes_render_the_same_set(tmp_path):
    for workers in (1, 2):
        synthesize_scenes(tmp_path / f"w{workers}", 3, seed=2, font_dirs=FONTS, workers=workers, progress=False, photos=None)
    assert (tmp_path / "w1" / "labels.jsonl").read_text() == (tmp_path / "w2" / "labels.jsonl").read_text()


@pytest.mark.parametrize("style", ["scene", "page"])
def test_layout_and_quads_inside_the_image(rendered, style):
    folder = rendered[f"{style}_a"]
    assert sorted(p.name for p in folder.iterdir()) == ["images", "labels.jsonl", "synth.json"]
    records = read_labels(folder)
    assert len(records) == COUNT
    for record in records:
        image = cv2.imread(str(folder / record["image"]))
        assert image.shape[:2] == (record["height"], record["width"])
        words = [r for r in record["regions"] if r["level"] == "word"]
        lines = [r for r in record["regions"] if r["level"] == "line"]
        assert words and lines
        assert all(isinstance(r["text"], str) and r["text"] and " " not in r["text"] for r in words)
        # the lines' words are the word regions, in order
        assert " ".join(r["text"] for r in lines).split() == [r["text"] for r in words]
        for region in record["regions"]:
            quad = np.array(region["quad"])
            assert quad.shape == (4, 2)
            assert (quad >= 0).all() and (quad[:, 0] <= record["width"]).all() and (quad[:, 1] <= record["height"]).all()
            x, y = quad[:, 0], quad[:, 1]
            assert np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) >= 0, "quads run clockwise"
        if style == "page":
            assert record["rotation"] in (0, 90, 180, 270)
            assert min(record["width"], record["height"]) >= 600 and max(record["width"], record["height"]) >= 1000
        else:
            assert 640 <= max(record["width"], record["height"]) <= 1280


@pytest.mark.parametrize("style", ["scene", "page"])
def test_word_quads_lie_inside_their_line_quads(rendered, style):
    inside = []
    for record in read_labels(rendered[f"{style}_a"]):
        words = iter(quads_of(record, "word"))
        for line in [r for r in record["regions"] if r["level"] == "line"]:
            line_poly = Polygon(line["quad"]).buffer(0.5)
            for _ in line["text"].split():
                word_poly = Polygon(next(words))
                inside.append(word_poly.intersection(line_poly).area / max(word_poly.area, 1e-6))
    assert min(inside) > 0.85  # curved words: rectangles of pixels, not of a shared frame
    assert np.median(inside) > 0.99


@pytest.mark.parametrize("style", ["scene", "page"])
def test_labels_score_perfectly_against_themselves(rendered, style):
    folder = rendered[f"{style}_a"]
    for level in ("word", "line"):
        predictions = {r["image"]: [(g["quad"], g["text"]) for g in r["regions"] if g["level"] == level and not g["ignore"]]
                       for r in read_labels(folder)}
        result = score_dataset(folder, predictions, level=level)
        assert (result["hmean"], result["e2e"]["hmean"], result["bow"]["f1"]) == (1.0, 1.0, 1.0)


def test_word_boxes_are_tight_on_the_canvas():
    from crnn_ocr.detect.synth import _font

    font = _font(str(BUNDLED_FONT_DIR / "DejaVuSans.ttf"), 24)
    patch = compose_patch(font, [["Hello,", "world"], ["again"]], outline=2)
    assert patch.words == ["Hello,", "world", "again"] and patch.lines == ["Hello, world", "again"]
    ink = patch.alpha > INK
    covered = np.zeros_like(ink)
    for x0, y0, x1, y1 in patch.word_boxes.astype(int):
        box = ink[y0:y1, x0:x1]
        assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()  # ink touches every side
        covered[y0:y1, x0:x1] = True
    assert not (ink & ~covered).any()
    assert patch.word_boxes[0, 2] <= patch.word_boxes[1, 0]  # words side by side, not overlapping


def test_ordered_quad_starts_at_the_texts_top_left():
    from crnn_ocr.detect.synth import _ordered_quad

    box = np.array([[10, 10], [50, 10], [50, 20], [10, 20]], float)
    assert _ordered_quad(box, np.array([1.0, 0.0]))[0].tolist() == [10, 10]
    assert _ordered_quad(box[::-1], np.array([-1.0, 0.0]))[0].tolist() == [50, 20]  # upside down
    assert _ordered_quad(box, np.array([0.0, 1.0]))[0].tolist() == [50, 10]  # reading downwards


def test_overwrite_replaces_only_our_own_output(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not"):
        synthesize_scenes(foreign, 1, style="scene", font_dirs=FONTS, workers=1, progress=False, overwrite=True, photos=None)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1

    ours = tmp_path / "ours"
    synthesize_scenes(ours, 1, style="scene", font_dirs=FONTS, workers=1, progress=False, photos=None)
    with pytest.raises(DatasetError, match="exists"):
        synthesize_scenes(ours, 1, style="scene", font_dirs=FONTS, workers=1, progress=False, photos=None)
    assert synthesize_scenes(ours, 2, seed=1, font_dirs=FONTS, workers=1, progress=False, overwrite=True, photos=None) == 2
    assert len(read_labels(ours)) == 2
    (ours / "images" / "extra.png").write_bytes(b"")  # no longer only what we wrote
    with pytest.raises(DatasetError):
        synthesize_scenes(ours, 1, font_dirs=FONTS, workers=1, progress=False, overwrite=True, photos=None)
    assert (ours / "images" / "extra.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "ours"]


def test_failed_run_leaves_no_output(tmp_path, monkeypatch):
    calls = []
    real = synth_module.SceneSynth.render

    def fail_on_second(self, rng):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("renderer broke")
        return real(self, rng)

    monkeypatch.setattr(synth_module.SceneSynth, "render", fail_on_second)
    with pytest.raises(RuntimeError, match="broke"):
        synthesize_scenes(tmp_path / "out", 3, font_dirs=FONTS, workers=1, progress=False, photos=None)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ConfigError):
        synthesize_scenes(tmp_path / "x", 1, style="poster", font_dirs=FONTS, workers=1, progress=False)
    with pytest.raises(ConfigError):
        synthesize_scenes(tmp_path / "x", -1, font_dirs=FONTS, workers=1, progress=False)
    with pytest.raises(DatasetError, match="no such folder"):
        synthesize_scenes(tmp_path / "x", 1, font_dirs=FONTS, workers=1, progress=False, photos=tmp_path / "none")
    assert list(tmp_path.iterdir()) == []


def test_background_cache_is_built_once_and_refuses_foreign_folders(tmp_path):
    photos = make_photos(tmp_path / "photos")
    cache = tmp_path / "cache"
    first = prepare_backgrounds(photos, cache)
    assert len(first) == 2 and (cache / MANIFEST).is_file()
    clean = cv2.imread(str(first[0]))
    assert clean[90, 100].min() > 40  # the dark "text" box is painted out
    stamp = first[0].stat().st_mtime_ns
    assert prepare_backgrounds(photos, cache) == first and first[0].stat().st_mtime_ns == stamp
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("x")
    with pytest.raises(DatasetError):
        prepare_backgrounds(photos, foreign)
    assert (foreign / "mine.txt").exists()
    evaluation = make_photos(tmp_path / "shared" / "eval" / "scenes")
    with pytest.raises(DatasetError, match="evaluation"):
        prepare_backgrounds(evaluation, tmp_path / "cache2")


@pytest.fixture(scope="module")
def cjk_fonts():
    from crnn_ocr.detect.cjk import discover_cjk_fonts

    pytest.importorskip("wordfreq", reason="CJK scene text takes its words from wordfreq (pip install wordfreq)")
    fonts = discover_cjk_fonts()
    if not fonts:
        pytest.skip("no font on this machine draws Chinese (apt-get install fonts-noto-cjk)")
    return fonts[:2]


def test_cjk_lines_use_only_characters_their_font_draws(cjk_fonts):
    import random

    from crnn_ocr.detect.cjk import CJKText, _cmap_chars, is_cjk

    text = CJKText(cjk_fonts)
    rng = random.Random(3)
    for _ in range(40):
        lines, font = text.sample(rng)
        chars = "".join("".join(words) for words in lines)
        assert chars and all(is_cjk(c) for c in chars)
        assert set(chars) <= _cmap_chars(font.path)
        assert all(len(word) <= 12 for words in lines for word in words)


def test_scenes_with_a_cjk_share_box_cjk_lines(tmp_path, cjk_fonts, monkeypatch):
    from crnn_ocr.detect import cjk

    monkeypatch.setattr(synth_module, "discover_cjk_fonts", lambda dirs=None: cjk_fonts)
    out = tmp_path / "cjk"
    synthesize_scenes(out, 4, seed=1, font_dirs=FONTS, workers=1, progress=False, photos=None, cjk_share=1.0)
    records = read_labels(out)
    lines = [r for rec in records for r in rec["regions"] if r["level"] == "line"]
    assert lines and all(all(cjk.is_cjk(c) or c == " " for c in r["text"]) for r in lines)
    assert json.loads((out / "synth.json").read_text())["cjk_share"] == 1.0
    predictions = {r["image"]: [(g["quad"], g["text"]) for g in r["regions"] if g["level"] == "line" and not g["ignore"]]
                   for r in records}
    assert score_dataset(out, predictions, level="line")["hmean"] == 1.0


def test_a_cjk_share_without_a_cjk_font_or_for_pages_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="scenes only"):
        synthesize_scenes(tmp_path / "x", 1, style="page", font_dirs=FONTS, workers=1, progress=False, cjk_share=0.5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        synthesize_scenes(tmp_path / "x", 1, font_dirs=FONTS, workers=1, progress=False, cjk_share=1.5)
    monkeypatch.setattr(synth_module, "discover_cjk_fonts", lambda dirs=None: [])
    with pytest.raises(DatasetError, match="fonts-noto-cjk"):
        synthesize_scenes(tmp_path / "x", 1, font_dirs=FONTS, workers=1, progress=False, photos=None, cjk_share=0.5)
    assert list(tmp_path.iterdir()) == []


def largest_lines(folder: Path) -> list[float]:
    """Per image, the area of its largest line over the image's."""
    return [max(Polygon(q).area for q in quads_of(record, "line")) / (record["width"] * record["height"])
            for record in read_labels(folder)]


def test_scenes_with_signs_hold_short_lines_larger_than_ordinary_scene_text(tmp_path):
    plain, signs = tmp_path / "plain", tmp_path / "signs"
    synthesize_scenes(plain, 6, seed=2, font_dirs=FONTS, workers=1, progress=False, photos=None)
    synthesize_scenes(signs, 6, seed=2, font_dirs=FONTS, workers=1, progress=False, photos=None, sign_share=1.0)
    assert np.median(largest_lines(signs)) > 1.5 * np.median(largest_lines(plain))
    largest = [max((r for r in rec["regions"] if r["level"] == "line"), key=lambda r: Polygon(r["quad"]).area)
               for rec in read_labels(signs)]
    assert sum(len(r["text"].split()) <= 2 for r in largest) >= 4
    assert json.loads((signs / "synth.json").read_text())["sign_share"] == 1.0
    assert "sign_share" not in json.loads((plain / "synth.json").read_text())


def test_a_sign_share_for_pages_or_outside_0_1_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="scenes only"):
        synthesize_scenes(tmp_path / "x", 1, style="page", font_dirs=FONTS, workers=1, progress=False, sign_share=0.5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        synthesize_scenes(tmp_path / "x", 1, font_dirs=FONTS, workers=1, progress=False, sign_share=-0.1)
    assert list(tmp_path.iterdir()) == []
