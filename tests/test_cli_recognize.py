"""`ocr recognize` through click's CliRunner with an untrained tiny model (--backend torch).

An untrained model reads arbitrary text, so these tests check structure, exit codes and invariants, and
compare the CLI with the library on the same images rather than with fixed strings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from crnn_ocr.cli import main
from crnn_ocr.defaults import DEFAULT_DICTIONARY

REPO = Path(__file__).resolve().parents[1]
SIZES = {"word.png": (32, 100), "short.png": (20, 12), "tall.png": (64, 40), "line.png": (24, 400)}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    out = {}
    for name, (h, w) in SIZES.items():
        p = folder / name
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(p)
        out[name] = p
    return out


@pytest.fixture(scope="module")
def recognizer(tiny_checkpoint):
    from crnn_ocr.recognize.torch_backend import TorchRecognizer

    return TorchRecognizer.from_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def read(recognizer):
    """What the library reads from these images when they are given together, as the CLI gives them.

    (A BiLSTM reads the padding of a batch too, so an untrained model's reading of an image can depend on the
    other images in its batch: compare like with like.)
    """

    def texts(*sources, decoder: str = "greedy", beam_width: int = 10, batch_size: int = 32,
              dictionary=DEFAULT_DICTIONARY) -> list[str]:
        recognizer.set_decoder(decoder, beam_width, dictionary=dictionary)
        recognizer.batch_size = batch_size
        try:
            return [p.text for p in recognizer.recognize(list(sources))]
        finally:
            recognizer.set_decoder("greedy")
            recognizer.batch_size = 32

    return texts


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    files = {"truncated": tmp_path / "truncated.png", "noise": tmp_path / "noise.png", "empty": tmp_path / "empty.png",
             "text": tmp_path / "notes.jpg"}
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["noise"].write_bytes(np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    files["empty"].write_bytes(b"")
    files["text"].write_text("not a picture\n")
    good.unlink()
    return files


def run(*args, input=None):
    result = CliRunner().invoke(main, list(map(str, args)), input=input)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    if result.exception is not None:  # only a clean exit, never an escaped exception
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def recognize(checkpoint, *args, input=None):
    return run("recognize", "--model", checkpoint, "--backend", "torch", *args, input=input)


def error_lines(result) -> list[str]:
    lines = result.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


# ---------------------------------------------------------------- plain output


def test_one_image_prints_its_text(tiny_checkpoint, images, read):
    result = recognize(tiny_checkpoint, images["word.png"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == read(images["word.png"])[0] + "\n"
    assert result.stderr == ""


def test_several_images_print_path_and_text_in_order(tiny_checkpoint, images, read):
    paths = [images[n] for n in ("line.png", "word.png", "short.png")]
    result = recognize(tiny_checkpoint, *paths)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{p}\t{t}" for p, t in zip(paths, read(*paths))]


def test_directory_expands(tiny_checkpoint, images, read):
    folder = images["word.png"].parent
    (folder / "readme.txt").write_text("not an image")  # ignored: not an image suffix
    result = recognize(tiny_checkpoint, folder)
    assert result.exit_code == 0, result.stderr
    paths = [folder / n for n in sorted(SIZES)]
    assert result.stdout.splitlines() == [f"{p}\t{t}" for p, t in zip(paths, read(*paths))]


def test_stdin(tiny_checkpoint, images, read):
    data = images["tall.png"].read_bytes()
    result = recognize(tiny_checkpoint, "-", input=data)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    text = read(data)[0]
    assert len(lines) == 1
    assert lines[0] in (text, f"-\t{text}")


def test_stdin_with_files(tiny_checkpoint, images, read):
    data = images["short.png"].read_bytes()
    result = recognize(tiny_checkpoint, images["word.png"], "-", input=data)
    assert result.exit_code == 0, result.stderr
    word, short = read(images["word.png"], data)
    assert result.stdout.splitlines() == [f"{images['word.png']}\t{word}", f"-\t{short}"]


def test_backend_auto_picks_torch_for_pt(tiny_checkpoint, images, read):
    result = run("recognize", "--model", tiny_checkpoint, images["word.png"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == read(images["word.png"])[0] + "\n"


def test_batch_size(tiny_checkpoint, images, read):
    paths = [images[n] for n in sorted(SIZES)]
    for size in ("1", "3"):
        result = recognize(tiny_checkpoint, "--batch-size", size, *paths)
        assert result.exit_code == 0, result.stderr
        texts = read(*paths, batch_size=int(size))
        assert result.stdout.splitlines() == [f"{p}\t{t}" for p, t in zip(paths, texts)]


# ---------------------------------------------------------------- JSON


def test_json_records(tiny_checkpoint, images, read, tiny_vocab):
    paths = [images[n] for n in sorted(SIZES)]
    result = recognize(tiny_checkpoint, "--json", *paths)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths)
    total_chars = 0
    for path, text, line in zip(paths, read(*paths), lines):
        record = json.loads(line)
        assert set(record) >= {"path", "text", "confidence", "characters"}
        assert record["path"] == str(path)
        assert record["text"] == text
        assert 0.0 <= record["confidence"] <= 1.0
        chars = record["characters"]
        assert "".join(c["char"] for c in chars) == record["text"]
        width = SIZES[path.name][1]
        previous_x0 = 0.0
        for c in chars:
            assert set(c) >= {"char", "confidence", "x0", "x1"}
            assert c["char"] in tiny_vocab.chars
            assert 0.0 <= c["confidence"] <= 1.0
            assert 0.0 <= c["x0"] <= c["x1"] <= width
            assert c["x0"] >= previous_x0  # left to right
            previous_x0 = c["x0"]
        total_chars += len(chars)
    assert total_chars > 0  # (the untrained model does emit characters, so the box checks above ran)


def test_json_stdin_path(tiny_checkpoint, images):
    result = recognize(tiny_checkpoint, "--json", "-", input=images["word.png"].read_bytes())
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["path"] == "-"


# ---------------------------------------------------------------- decoders


def test_beam_decoder(tiny_checkpoint, images, tiny_vocab, read):
    paths = [images[n] for n in sorted(SIZES)]
    result = recognize(tiny_checkpoint, "--decoder", "beam", "--beam-width", "5", "--json", *paths)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(paths)
    for record, text in zip(records, read(*paths, decoder="beam", beam_width=5)):
        assert record["text"] == text
        assert set(record["text"]) <= set(tiny_vocab.chars)
        assert "".join(c["char"] for c in record["characters"]) == record["text"]


def test_beam_width_is_validated(tiny_checkpoint, images):
    result = CliRunner().invoke(main, ["recognize", "--model", str(tiny_checkpoint), "--backend", "torch",
                                       "--beam-width", "0", str(images["word.png"])])
    assert result.exit_code == 2  # click usage error
    assert "beam-width" in result.stderr


def test_lexicon(tiny_checkpoint, images, tmp_path):
    words = ["cat", "dog", "hello", "on", "7", "receipt", "total", "a"]
    lexicon = tmp_path / "words.txt"
    lexicon.write_text("\n".join(words + ["Ünïcödé", "UPPER"]) + "\n", encoding="utf-8")  # two unreadable words
    names = sorted(SIZES)
    result = recognize(tiny_checkpoint, "--lexicon", lexicon, *(images[n] for n in names))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(names)
    for name, line in zip(names, lines):
        path, text = line.split("\t")
        assert path == str(images[name])
        assert text in words
    single = recognize(tiny_checkpoint, "--lexicon", lexicon, "--decoder", "beam", images["word.png"])
    assert single.exit_code == 0 and single.stdout.rstrip("\n") in words


def test_lexicon_problems_are_one_error_line(tiny_checkpoint, images, tmp_path):
    result = recognize(tiny_checkpoint, "--lexicon", tmp_path / "missing.txt", images["word.png"])
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1 and "missing.txt" in result.stderr
    unusable = tmp_path / "upper.txt"
    unusable.write_text("HELLO\nWORLD\n")
    result = recognize(tiny_checkpoint, "--lexicon", unusable, images["word.png"])
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1 and "lexicon" in result.stderr
    assert result.stdout == ""


def test_dictionary_option_reaches_the_decoder_and_none_turns_it_off(tiny_checkpoint, images, monkeypatch, tmp_path):
    from crnn_ocr.text.dictionary import Dictionary
    from crnn_ocr.text.vocab import CharInfo, Prediction

    seen = []

    def mark(self, logp, prediction):
        seen.append(sorted(self.known))
        chars = [CharInfo(c, 0.9, 0, 1) for c in "corrected "] + prediction.chars
        return Prediction("".join(c.char for c in chars), 0.9, chars, prediction.frames)

    monkeypatch.setattr(Dictionary, "correct", mark)
    words = tmp_path / "words.txt"
    words.write_text("hello\nworld\n", encoding="utf-8")
    result = recognize(tiny_checkpoint, "--dictionary", words, images["word.png"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("corrected ") and seen and all(s == ["hello", "world"] for s in seen)
    result = recognize(tiny_checkpoint, images["word.png"])  # the default: the shipped English list
    assert result.stdout.startswith("corrected ") and len(seen[-1]) > 30000
    seen.clear()
    result = recognize(tiny_checkpoint, "--dictionary", "none", images["word.png"])
    assert result.exit_code == 0 and not result.stdout.startswith("corrected ") and seen == []


def test_dictionary_problems_are_one_error_line(tiny_checkpoint, images, tmp_path):
    result = recognize(tiny_checkpoint, "--dictionary", tmp_path / "missing.txt", images["word.png"])
    assert result.exit_code == 1 and len(error_lines(result)) == 1 and "missing.txt" in result.stderr
    unusable = tmp_path / "digits.txt"
    unusable.write_text("123\n456\n")
    result = recognize(tiny_checkpoint, "--dictionary", unusable, images["word.png"])
    assert result.exit_code == 1 and len(error_lines(result)) == 1 and "dictionary" in result.stderr


def test_default_dictionary_steps_aside_for_a_model_that_cannot_spell_words(images, tmp_path):
    import torch

    from crnn_ocr.config import ModelConfig
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import save_checkpoint
    from crnn_ocr.text.vocab import Vocab

    digits = Vocab("0123456789")
    cfg = ModelConfig(arch="crnn_s", height=32, hidden=16)
    torch.manual_seed(0)
    checkpoint = tmp_path / "digits.pt"
    save_checkpoint(checkpoint, create_model(cfg, digits.num_classes), cfg, digits)
    result = recognize(checkpoint, images["word.png"])
    assert result.exit_code == 0, result.stderr
    assert set(result.stdout.strip()) <= set("0123456789")
    result = recognize(checkpoint, "--dictionary", "en", images["word.png"])  # asked for by name: an error
    assert result.exit_code == 1 and len(error_lines(result)) == 1 and "dictionary" in result.stderr


# ---------------------------------------------------------------- bad inputs


def test_missing_file_among_good_ones(tiny_checkpoint, images, read, tmp_path):
    missing = tmp_path / "missing.png"
    result = recognize(tiny_checkpoint, images["word.png"], missing, images["short.png"])
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and str(missing) in errors[0]
    good = [images["word.png"], images["short.png"]]
    assert result.stdout.splitlines() == [f"{p}\t{t}" for p, t in zip(good, read(*good))]


def test_only_a_missing_file(tiny_checkpoint, tmp_path):
    result = recognize(tiny_checkpoint, tmp_path / "missing.png")
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1
    assert result.stdout == ""


def test_corrupt_files_among_good_ones(tiny_checkpoint, images, read, bad_files):
    args = [images["word.png"], bad_files["truncated"], bad_files["noise"], images["line.png"], bad_files["empty"],
            bad_files["text"]]
    result = recognize(tiny_checkpoint, *args)
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 4
    for bad, line in zip(["truncated", "noise", "empty", "text"], errors):
        assert str(bad_files[bad]) in line
    good = [images["word.png"], images["line.png"]]
    assert result.stdout.splitlines() == [f"{p}\t{t}" for p, t in zip(good, read(*good))]


def test_corrupt_file_in_json_mode(tiny_checkpoint, images, bad_files):
    result = recognize(tiny_checkpoint, "--json", bad_files["noise"], images["word.png"])
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(images["word.png"])]


def test_bad_stdin(tiny_checkpoint):
    result = recognize(tiny_checkpoint, "-", input=b"definitely not an image")
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "stdin" in errors[0]
    empty = recognize(tiny_checkpoint, "-", input=b"")
    assert empty.exit_code == 1 and len(error_lines(empty)) == 1


def test_folder_without_images(tiny_checkpoint, images, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    result = recognize(tiny_checkpoint, tmp_path / "empty_dir", images["word.png"])
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and "empty_dir" in errors[0]
    assert len(result.stdout.splitlines()) == 1


@pytest.mark.parametrize("kind", ["missing", "random", "directory", "text"])
def test_bad_model_path(tmp_path, images, kind):
    model = tmp_path / "model.pt"
    if kind == "random":
        model.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    elif kind == "directory":
        model.mkdir()
    elif kind == "text":
        model.write_text("hello")
    result = run("recognize", "--model", model, "--backend", "torch", images["word.png"])
    assert result.exit_code == 1
    errors = error_lines(result)
    assert len(errors) == 1 and str(model) in errors[0]
    assert result.stdout == ""


def test_no_images_is_a_usage_error():
    result = CliRunner().invoke(main, ["recognize"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- help


def test_ocr_help():
    result = run("--help")
    assert result.exit_code == 0
    assert "recognize" in result.stdout and "Usage" in result.stdout
    sub = run("recognize", "--help")
    assert sub.exit_code == 0
    for flag in ("--model", "--json", "--decoder", "--beam-width", "--lexicon", "--backend"):
        assert flag in sub.stdout
    assert run("-h").exit_code == 0


def test_python_cli_py_help():
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "--help"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "recognize" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_cli_import_stays_light():
    # `ocr --help` must not pay for torch or onnx (they are imported inside the commands that need them).
    code = "import sys, crnn_ocr.cli; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_closed_pipe_ends_quietly_with_exit_0(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(300):
        Image.fromarray(rng.integers(0, 256, (32, 80), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    proc = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "recognize", str(folder), "--layout", "word", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and stderr == "" and first.startswith(str(folder).encode())


def test_inputs_that_cannot_be_listed_or_read_are_reported_and_the_rest_is_read(tiny_checkpoint, images, tmp_path):
    import os

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes(images["word.png"].read_bytes())
    os.mkfifo(folder / "pipe.png")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    too_long = str(tmp_path / ("x" * 300 + ".png"))
    result = recognize(tiny_checkpoint, folder, too_long, images["line.png"], "--layout", "word")
    assert result.exit_code == 1
    rows = result.stdout.strip().split("\n")
    assert [r.split("\t")[0] for r in rows] == [str(folder / "good.png"), str(images["line.png"])]
    errors = result.stderr.strip().split("\n")
    assert len(errors) == 4 and all(e.startswith("error: ") for e in errors)
    assert any("pipe.png: not a regular file" in e for e in errors) and any("File name too long" in e for e in errors)
    assert any("gone.png: cannot read" in e for e in errors) and any("loop.png: cannot read" in e for e in errors)


def test_stdin_is_read_up_to_a_limit(tiny_checkpoint):
    proc = subprocess.run(f"head -c 300000000 /dev/zero | {sys.executable} {REPO / 'cli.py'} recognize - "
                          f"--model {tiny_checkpoint} --layout word", shell=True, capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip() == "error: stdin: more than 268435456 bytes"


@pytest.mark.slow
def test_file_names_that_are_not_utf8_print_as_valid_text(tiny_checkpoint, images, tmp_path):
    import os

    folder = tmp_path / "names"
    folder.mkdir()
    odd = os.path.join(os.fsencode(folder), b"caf\xe9\tbad.png")  # Latin-1 bytes and a tab in a file name
    with open(odd, "wb") as f:
        f.write(images["word.png"].read_bytes())
    both = [str(images["word.png"]), str(folder)]
    text = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", *both, "--model", str(tiny_checkpoint),
                           "--layout", "word", "-q"], capture_output=True, cwd=REPO, timeout=120)
    assert text.returncode == 0, text.stderr
    rows = text.stdout.decode("utf-8").strip().split("\n")  # valid UTF-8
    assert rows[1].startswith(str(folder) + "/caf\\xe9\\tbad.png\t")
    as_json = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", *both, "--model", str(tiny_checkpoint),
                              "--layout", "word", "--json"], capture_output=True, cwd=REPO, timeout=120)
    records = [json.loads(line) for line in as_json.stdout.decode("utf-8").strip().split("\n")]
    assert records[1]["path"].endswith("caf\\xe9\\tbad.png")


def test_workers_give_the_same_output_in_the_same_order(tmp_path, images):
    folder = tmp_path / "mix"
    folder.mkdir()
    for i, (name, path) in enumerate(sorted(images.items()) * 2):
        (folder / f"{i:02d}_{name}").write_bytes(path.read_bytes())
    (folder / "05_broken.png").write_bytes(b"\x89PNG not really")
    args = [sys.executable, str(REPO / "cli.py"), "recognize", str(folder), "--json", "-q"]
    one = subprocess.run([*args, "--workers", "1"], capture_output=True, text=True, cwd=REPO, timeout=120)
    two = subprocess.run([*args, "--workers", "2"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert one.returncode == two.returncode == 1
    assert one.stdout == two.stdout and len(one.stdout.splitlines()) == 8
    assert one.stderr == two.stderr and "05_broken.png" in two.stderr


@pytest.mark.slow
def test_a_100_megapixel_photo_reads_in_bounded_memory(tmp_path):
    import cv2

    image = np.full((10000, 10000, 3), 200, np.uint8)
    for i in range(3):
        cv2.putText(image, f"NUMBER {i} OPEN", (800, 2500 + 3000 * i), cv2.FONT_HERSHEY_SIMPLEX, 12, (20, 20, 20), 30)
    path = tmp_path / "huge.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    del image
    script = ("import resource, subprocess, sys; "
              f"r = subprocess.run([sys.executable, {str(REPO / 'cli.py')!r}, 'recognize', {str(path)!r}], "
              "capture_output=True, text=True); "
              "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.stdout)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    code, peak_kb = map(int, run.stdout.splitlines()[0].split())
    assert code == 0 and peak_kb < 1.5 * 1024 * 1024, (code, peak_kb, run.stderr)
    assert "NUMBER 0 OPEN" in run.stdout and "NUMBER 2 OPEN" in run.stdout
