"""`ocr data ...` driven through click's CliRunner: create-lmdb, inspect, charset, split, synth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from click.testing import CliRunner

from crnn_ocr.cli import main
from crnn_ocr.datasets.lmdb_writer import LmdbWriter
from crnn_ocr.datasets.sources import LmdbSource, open_source
from crnn_ocr.image.io import read_image

REPO = Path(__file__).resolve().parents[1]
FONTS = REPO / "data" / "fonts"

# (file, width, height, label); at height 32 a w x h image gives ceil(w * 32 / h / 4) CTC frames
ITEMS = [
    ("img/a.png", 64, 32, "cab"),
    ("img/b.png", 120, 30, "hello"),
    ("c.jpg", 80, 20, "Straße"),
    ("img/d.png", 16, 32, "aaaa"),  # 16 px wide: 4 frames, "aaaa" needs 7
    ("e.png", 200, 40, "x y z"),
    ("f.png", 40, 32, "abcdefghijk"),  # 10 frames, 11 needed
]


def run(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _png(path: Path, width: int, height: int, seed: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(100, 256, (height, width), dtype=np.uint8)
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(buf.tobytes())
    return buf.tobytes()


@pytest.fixture
def folder(tmp_path) -> Path:
    """A labels.tsv dataset of ITEMS plus one corrupt image (listed third)."""
    root = tmp_path / "crops"
    lines = []
    for k, (name, w, h, label) in enumerate(ITEMS):
        _png(root / name, w, h, k)
        lines.append(f"{name}\t{label}")
        if k == 1:
            (root / "img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
            lines.append("img/broken.png\tlost")
    (root / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_create_lmdb_from_labels_tsv_skips_and_reports_corrupt(folder, tmp_path):
    out = tmp_path / "out.lmdb"
    result = run("data", "create-lmdb", folder, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert f"wrote {len(ITEMS)} of {len(ITEMS) + 1} samples" in result.output
    assert "skipped 1: corrupt image 1" in result.output
    assert "img/broken.png" in result.output
    assert "labels too long for their image at height 32: 2" in result.output
    assert "img/d.png" in result.output and "f.png" in result.output
    source = open_source(out)
    assert isinstance(source, LmdbSource)
    assert source.labels() == [label for *_, label in ITEMS]
    for i, (name, w, h, _) in enumerate(ITEMS):
        assert source.image_bytes(i) == (folder / name).read_bytes()  # stored unchanged
        assert source.sizes()[i].tolist() == [w, h]


def test_create_lmdb_on_error_fail_writes_nothing(folder, tmp_path):
    out = tmp_path / "out.lmdb"
    result = run("data", "create-lmdb", folder, "--out", out, "--on-error", "fail", "-q")
    assert result.exit_code == 1
    assert "error:" in result.stderr and "img/broken.png" in result.stderr
    assert not out.exists()


def test_create_lmdb_refuses_to_overwrite(folder, tmp_path):
    out = tmp_path / "out.lmdb"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run("data", "create-lmdb", folder, "--out", out, "-q")
    assert result.exit_code == 1 and "already exists" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["source", "parent_of_source", "folder", "file"])
def test_create_lmdb_overwrite_never_deletes_what_it_did_not_write(folder, tmp_path, target):
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    (tmp_path / "plain.txt").write_text("a file")
    out = {"source": folder, "parent_of_source": tmp_path, "folder": other, "file": tmp_path / "plain.txt"}[target]
    before = _tree(tmp_path)
    result = run("data", "create-lmdb", folder, "--out", out, "--overwrite", "-q")
    assert result.exit_code == 1 and result.stderr.startswith("error:") and len(result.stderr.splitlines()) == 1
    assert ("input" if target in ("source", "parent_of_source") else "not an LMDB written by crnn_ocr") in result.stderr
    assert _tree(tmp_path) == before


def test_create_lmdb_overwrite_replaces_its_own_output_only_when_complete(folder, tmp_path):
    out = tmp_path / "out.lmdb"
    assert run("data", "create-lmdb", folder, "--out", out, "-q").exit_code == 0
    first = open_source(out).labels()
    (folder / "extra.png").write_bytes((folder / "e.png").read_bytes())
    with open(folder / "labels.tsv", "a", encoding="utf-8") as f:
        f.write("extra.png\tmore\n")
    result = run("data", "create-lmdb", folder, "--out", out, "--overwrite", "--on-error", "fail", "-q")
    assert result.exit_code == 1 and "broken.png" in result.stderr  # the corrupt image stops this run...
    assert open_source(out).labels() == first  # ...and the previous output is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    assert run("data", "create-lmdb", folder, "--out", out, "--overwrite", "-q").exit_code == 0
    assert open_source(out).labels() == first + ["more"]


def test_create_lmdb_from_gt_pairs_reports_vocab_and_drops(tmp_path):
    src = tmp_path / "lines"
    for k, (name, w, h, label) in enumerate(ITEMS):
        stem = Path(name).stem
        _png(src / f"{stem}.png", w, h, k)
        (src / f"{stem}.gt.txt").write_text(label + "\n", encoding="utf-8")
    out = tmp_path / "gt.lmdb"
    result = run("data", "create-lmdb", src, "-o", out, "--vocab", "abcdefghijklmnopqrstuvwxyz", "-q", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["written"] == len(ITEMS) and report["skipped"] == {}
    assert report["unknown_chars"] == {"S": 1, "ß": 1, " ": 1}
    assert report["unknown_samples"] == 2
    assert report["too_long"] == 2
    text = run("data", "create-lmdb", src, "-o", tmp_path / "t.lmdb", "--vocab", "abcdefghijklmnopqrstuvwxyz", "-q")
    assert "'ß' (1)" in text.output and "2 samples hold characters outside the vocabulary" in text.output
    vocab_file = tmp_path / "v.txt"
    vocab_file.write_text("abcdefghijklmnopqrstuvwxyz\n", encoding="utf-8")
    dropped = run("data", "create-lmdb", src, "-o", tmp_path / "d.lmdb", "--vocab-file", vocab_file,
                  "--drop-unknown", "--drop-too-long", "-q", "--json")
    assert dropped.exit_code == 0, dropped.output
    assert json.loads(dropped.output)["written"] == 2
    assert open_source(tmp_path / "d.lmdb").labels() == ["cab", "hello"]
    wide = run("data", "create-lmdb", src, "-o", tmp_path / "h64.lmdb", "--height", "64", "-q", "--json")
    assert json.loads(wide.output)["too_long"] == 0  # taller model input: more frames per image


def test_inspect_counts_histograms_and_grid(folder, tmp_path):
    lmdb_path = tmp_path / "all.lmdb"
    with LmdbWriter(lmdb_path) as writer:
        for name, *_, label in ITEMS:
            writer.add((folder / name).read_bytes(), label)
        writer.add(b"garbage", "bad")
    grid = tmp_path / "grid.png"
    result = run("data", "inspect", lmdb_path, "--json", "--grid", grid, "--grid-count", "5", "-q")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["samples"] == len(ITEMS) + 1
    assert info["checked"] == len(ITEMS) + 1
    assert info["corrupt"] == 1
    assert info["problems"]["corrupt image"]["examples"][0].startswith("all.lmdb:image-000000007")
    labels = [label for *_, label in ITEMS] + ["bad"]
    assert info["charset"] == "".join(sorted(set("".join(labels))))
    assert info["char_counts"]["a"] == sum(t.count("a") for t in labels)
    assert sum(c for *_, c in info["label_length"]["histogram"]) == len(labels)
    assert info["label_length"]["max"] == 11
    assert sum(c for *_, c in info["width"]["histogram"]) == len(ITEMS)
    assert info["width"]["min"] == 16 and info["width"]["max"] == 160
    assert info["too_long"] == 2
    assert len(info["grid"]["indices"]) == 5
    image = read_image(grid, channels=3)
    assert image.shape[0] >= 5 * 32 and image.shape[1] > 100
    assert image.std() > 10  # not blank
    text = run("data", "inspect", lmdb_path, folder, "-q")  # two datasets read together
    assert text.exit_code == 0, text.output
    assert f"{2 * len(ITEMS) + 2} samples" in text.output
    assert "corrupt or unreadable: 2" in text.output
    assert "label length" in text.output and "width at height 32" in text.output


def test_inspect_limit_decodes_a_sample(folder):
    result = run("data", "inspect", folder, "--json", "--limit", "3", "-q")
    info = json.loads(result.output)
    assert info["checked"] == 3 and info["samples"] == len(ITEMS) + 1
    assert sum(c for *_, c in info["label_length"]["histogram"]) == len(ITEMS) + 1


def _broken_lmdb(path: Path, items: dict[bytes, bytes]) -> Path:
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for k, v in items.items():
            txn.put(k, v)
    env.close()
    return path


@pytest.mark.parametrize("items, message", [
    ({b"image-000000001": b"x"}, "lacks 'num-samples'"),
    ({b"num-samples": b"many"}, "is not a number"),
])
def test_inspect_broken_lmdb_is_one_clear_line(tmp_path, items, message):
    path = _broken_lmdb(tmp_path / "broken", items)
    result = run("data", "inspect", path)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:") and message in result.stderr


def test_inspect_reports_missing_samples(tmp_path):
    png = cv2.imencode(".png", np.zeros((8, 20), np.uint8))[1].tobytes()
    path = _broken_lmdb(tmp_path / "short", {b"num-samples": b"2", b"image-000000001": png, b"label-000000001": b"ok"})
    info = json.loads(run("data", "inspect", path, "--json", "-q").output)
    assert info["samples"] == 2 and info["corrupt"] == 1 and info["unreadable_labels"] == 1
    assert "missing" in info["problems"]["unreadable"]["examples"][0]


def test_charset(folder, tmp_path):
    labels = [label for *_, label in ITEMS] + ["lost"]
    expected = "".join(sorted(set("".join(labels))))
    result = run("data", "charset", folder)
    assert result.exit_code == 0
    assert result.output == expected + "\n"
    counts = run("data", "charset", folder, "--counts").output.splitlines()
    assert len(counts) == len(expected)
    assert counts[0] == f"'a'\tU+0061\t{''.join(labels).count('a')}"  # most frequent first
    vocab_file = tmp_path / "vocab.txt"
    written = run("data", "charset", folder, folder, "--min-count", "2", "--out", vocab_file)
    from crnn_ocr.text.vocab import Vocab

    twice = "".join(sorted(c for c in set("".join(labels))))  # every character at least twice over two copies
    assert Vocab.from_file(vocab_file).chars == twice
    assert "wrote" in written.stderr
    rare = run("data", "charset", folder, "--min-count", "3").output.strip()
    assert set(rare) == {c for c in expected if "".join(labels).count(c) >= 3}


def test_split_folder_into_tsv(folder, tmp_path):
    out = tmp_path / "parts"
    result = run("data", "split", folder, "--out", out, "--val", "0.34", "--seed", "3")
    assert result.exit_code == 0, result.output
    train, val = open_source(out / "train.tsv"), open_source(out / "val.tsv")
    assert len(train) + len(val) == len(ITEMS) + 1 and len(val) == 2
    pairs = lambda s: {(s.image_path(i).resolve(), s.label(i)) for i in range(len(s))}  # noqa: E731
    everything = pairs(open_source(folder))
    assert pairs(train) | pairs(val) == everything and not pairs(train) & pairs(val)
    again = run("data", "split", folder, "--out", out, "--val", "0.34", "--seed", "3")
    assert again.exit_code == 1 and "already exists" in again.stderr
    run("data", "split", folder, "--out", out, "--val", "0.34", "--seed", "3", "--overwrite")
    assert pairs(open_source(out / "val.tsv")) == pairs(val)  # same seed, same split
    seeds = {frozenset(label for _, label in pairs(open_source(_split(folder, tmp_path / f"s{s}", s) / "val.tsv"))) for s in range(6)}
    assert len(seeds) > 1


def test_split_overwrite_refuses_foreign_files_and_the_source(folder, rendered_lmdb, tmp_path):
    out = tmp_path / "parts"
    out.mkdir()
    (out / "train.tsv").write_text("not a labels list\n")
    result = run("data", "split", folder, "--out", out, "--overwrite")
    assert result.exit_code == 1 and "not a labels list written by crnn_ocr" in result.stderr
    assert (out / "train.tsv").read_text() == "not a labels list\n"
    renamed = tmp_path / "train.lmdb"  # the source has the name of split's output
    shutil.copytree(rendered_lmdb, renamed)
    before = _tree(renamed)
    result = run("data", "split", renamed, "--out", tmp_path, "--overwrite")
    assert result.exit_code == 1 and "input" in result.stderr
    assert _tree(renamed) == before


def _split(folder: Path, out: Path, seed: int) -> Path:
    assert run("data", "split", folder, "--out", out, "--val", "2", "--seed", seed).exit_code == 0
    return out


def test_split_lmdb_copies_bytes(rendered_lmdb, tmp_path):
    out = tmp_path / "parts"
    result = run("data", "split", rendered_lmdb, "-o", out, "--val", "30")
    assert result.exit_code == 0, result.output
    assert "train: 270" in result.output and "val: 30" in result.output
    source, train, val = open_source(rendered_lmdb), open_source(out / "train.lmdb"), open_source(out / "val.lmdb")
    original = {source.image_bytes(i): (source.label(i), source.sizes()[i].tolist()) for i in range(len(source))}
    copied = {}
    for part in (train, val):
        sizes = part.sizes()
        for i in range(len(part)):
            copied[part.image_bytes(i)] = (part.label(i), sizes[i].tolist())
    assert copied == original


def test_synth_command_is_deterministic(tmp_path):
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.lmdb"
        result = run("data", "synth", "-n", "5", "-o", out, "--workers", "1", "--fonts", FONTS, "--seed", "4", "-q")
        assert result.exit_code == 0, result.output
        assert f"wrote 5 samples to {out}" in result.output
        outs.append(open_source(out))
    a, b = outs
    assert a.labels() == b.labels()
    assert [a.image_bytes(i) for i in range(5)] == [b.image_bytes(i) for i in range(5)]


@pytest.mark.parametrize("option", ["--cjk-share", "--sign-share"])
@pytest.mark.parametrize("style", ["page", "mixed"])
def test_synth_scene_shares_outside_scenes_are_one_line_errors(tmp_path, style, option):
    result = run("data", "synth", "-n", "1", "-o", tmp_path / "x", "--style", style, option, "0.3", "-q")
    assert result.exit_code != 0
    assert result.output.strip() == f"error: {option} applies to --style scene only"
    assert not (tmp_path / "x").exists()


def test_data_help_lists_the_commands():
    result = run("data", "--help")
    for name in ("create-lmdb", "inspect", "charset", "split", "synth"):
        assert name in result.output


def test_inspect_reports_what_would_otherwise_pass_silently(tmp_path):
    root = tmp_path / "set"
    outside = tmp_path / "elsewhere.png"
    _png(outside, 40, 20, 1)
    _png(root / "a.png", 40, 20, 2)
    _png(root / "b.png", 40, 20, 3)
    long_label = "x" * 1_000_000
    (root / "labels.tsv").write_text(f"a.png\tcat\na.png\tdog\n../elsewhere.png\tfar\nb.png\t   \nb.png\t{long_label}\n",
                                     encoding="utf-8")
    result = run("data", "inspect", root, "-q")
    assert result.exit_code == 0
    out = result.stdout
    assert "warning: set: 1 listed image(s) outside its folder" in out
    assert "warning: set: 2 image(s) listed more than once, 2 with another label" in out
    assert "empty labels: 1" in out  # a label of only spaces is no label
    assert max(len(line) for line in out.splitlines()) < 400  # the 1 MB label is never printed whole


def test_num_samples_must_fit_the_stored_samples(tmp_path):
    from test_datasets import write_reference_lmdb

    inflated = tmp_path / "inflated"
    write_reference_lmdb(inflated, {"num-samples": b"5000000", "image-000000001": ITEM_BYTES(), "label-000000001": b"a"})
    result = run("data", "inspect", inflated, "-q")
    assert result.exit_code == 1 and "says 5000000 samples but holds only" in result.stderr
    deflated = tmp_path / "deflated"
    write_reference_lmdb(deflated, {"num-samples": b"1", "image-000000001": ITEM_BYTES(), "label-000000001": b"a",
                                    "image-000000002": ITEM_BYTES(), "label-000000002": b"b"})
    result = run("data", "inspect", deflated, "-q")
    assert result.exit_code == 0 and "warning: deflated: holds samples beyond its num-samples (1)" in result.stdout


def ITEM_BYTES() -> bytes:  # noqa: N802
    ok, buf = cv2.imencode(".png", np.full((20, 40), 200, np.uint8))
    return buf.tobytes()


@pytest.fixture
def full_disk(tmp_path):
    """A 256 KB filesystem (tmpfs) to write into; skipped where mounting is not allowed."""
    import os
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and tmpfs to fill a disk")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_no_output(rendered_lmdb, full_disk):
    for args in (["data", "create-lmdb", rendered_lmdb, "--out", full_disk / "copy.lmdb", "-q"],
                 ["data", "synth", "-n", "300", "-o", full_disk / "synth.lmdb", "--workers", "1", "--fonts", FONTS, "-q"]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert list(full_disk.iterdir()) == []  # nothing half-written is left looking complete


def test_a_checkpoint_on_a_full_disk_is_one_error_and_keeps_the_old_file(full_disk):
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.errors import CheckpointError
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import save_checkpoint
    from crnn_ocr.text.vocab import Vocab

    (full_disk / "last.pt").write_bytes(b"the previous checkpoint")
    with pytest.raises(CheckpointError, match="cannot write the checkpoint"):
        save_checkpoint(full_disk / "last.pt", create_model(ModelConfig(), 30), ModelConfig(), Vocab("abc"))
    assert [p.name for p in full_disk.iterdir()] == ["last.pt"]
    assert (full_disk / "last.pt").read_bytes() == b"the previous checkpoint"
