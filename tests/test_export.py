"""ONNX export: every architecture, parity with torch, metadata round trip, int8, and the `ocr export` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

from crnn_ocr.config import ModelConfig  # noqa: E402
from crnn_ocr.export import PARITY_TOLERANCE, ExportError, export_model, export_onnx  # noqa: E402
from crnn_ocr.models import available, create_model  # noqa: E402
from crnn_ocr.models.checkpoint import save_checkpoint  # noqa: E402
from crnn_ocr.recognize.onnx import ONNX_FORMAT, OnnxRecognizer  # noqa: E402
from crnn_ocr.text.vocab import Vocab  # noqa: E402

METADATA_KEYS = {"vocab", "height", "channels", "mean", "std", "blank", "arch", "format"}


def calibrated_model(cfg: ModelConfig, vocab: Vocab, seed: int = 0):
    """A random model whose BatchNorm statistics are set from random input, so that its readings vary with the
    image (a plain random init collapses the features and reads the same character everywhere)."""
    torch.manual_seed(seed)
    model = create_model(cfg, vocab.num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        model(torch.from_numpy(rng.uniform(-1, 1, (8, cfg.channels, cfg.height, 64)).astype(np.float32)))
        model.head.weight.mul_(5.0)
    return model.eval()


def blocky_images(n: int, seed: int = 0, channels: int = 1) -> list[np.ndarray]:
    """uint8 images of assorted sizes made of coarse random blocks (text-like contrast, varied widths)."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(18, 70)), int(rng.integers(24, 420))
        small = rng.integers(0, 256, size=(3, max(2, w // 12)) + ((3,) if channels == 3 else ()), dtype=np.uint8)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
    return out


@pytest.fixture(scope="module")
def lively(tmp_path_factory, tiny_vocab):
    """(checkpoint, exported .onnx) of a calibrated crnn_s whose readings differ from image to image."""
    cfg = ModelConfig(arch="crnn_s", height=32, hidden=32)
    folder = tmp_path_factory.mktemp("lively")
    ckpt = folder / "lively.pt"
    save_checkpoint(ckpt, calibrated_model(cfg, tiny_vocab), cfg, tiny_vocab)
    report = export_onnx(ckpt, folder / "lively.onnx")
    return ckpt, folder / "lively.onnx", report


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("arch", available())
def test_every_architecture_exports_with_dynamic_shapes_and_metadata(arch, tmp_path, tiny_vocab):
    cfg = ModelConfig(arch=arch, height=32, hidden=16)
    ckpt = tmp_path / f"{arch}.pt"
    save_checkpoint(ckpt, calibrated_model(cfg, tiny_vocab), cfg, tiny_vocab)
    report = export_onnx(ckpt, tmp_path / f"{arch}.onnx")

    assert report["checker"] == "passed"
    assert report["parity"]["max_abs_diff"] <= PARITY_TOLERANCE == report["parity"]["tolerance"]
    assert {(c["batch"], c["width"]) for c in report["parity"]["cases"]} >= {(1, 64), (3, 512)}
    proto = onnx.load(str(tmp_path / f"{arch}.onnx"))
    (images,), (logits,) = proto.graph.input, proto.graph.output
    assert images.name == "images" and logits.name == "logits"
    in_dims, out_dims = _dims(images), _dims(logits)
    assert isinstance(in_dims[0], str) and isinstance(in_dims[3], str), in_dims  # dynamic batch and width
    assert in_dims[1:3] == [cfg.channels, cfg.height]
    assert isinstance(out_dims[0], str) and isinstance(out_dims[1], str), out_dims  # dynamic batch and frames
    assert out_dims[2] == tiny_vocab.num_classes
    meta = {p.key: p.value for p in proto.metadata_props}
    assert METADATA_KEYS <= set(meta)
    assert (meta["vocab"], meta["arch"], meta["blank"], meta["format"]) == (tiny_vocab.chars, arch, "0", ONNX_FORMAT)


def test_ort_matches_torch_at_three_widths_and_two_batch_sizes(lively):
    import onnxruntime as ort

    ckpt, path, _ = lively
    from crnn_ocr.models.checkpoint import load_model

    model, cfg, vocab = load_model(ckpt)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    frames = set()
    for width in (36, 132, 402):  # 402 is not a multiple of the stride: both sides floor it the same way
        for batch in (1, 4):
            x = rng.uniform(-1, 1, (batch, 1, 32, width)).astype(np.float32)
            got = session.run(["logits"], {"images": x})[0]
            with torch.inference_mode():
                want = model(torch.from_numpy(x)).numpy()
            assert got.shape == want.shape == (batch, width // 4, vocab.num_classes)
            assert np.abs(got - want).max() <= PARITY_TOLERANCE
            frames.add(got.shape[1])
    assert len(frames) == 3  # the time axis really followed the width


def test_recognizer_from_onnx_alone_reads_like_the_checkpoint(lively, tmp_path):
    from crnn_ocr.recognize.torch_backend import TorchRecognizer

    ckpt, path, _ = lively
    alone = tmp_path / "copy.onnx"  # nothing else in this folder
    shutil.copy(path, alone)
    onnx_rec, torch_rec = OnnxRecognizer(alone, threads=1, batch_size=4), TorchRecognizer.from_checkpoint(ckpt, batch_size=4)
    assert onnx_rec.cfg == torch_rec.cfg and onnx_rec.vocab == torch_rec.vocab
    images = blocky_images(9, seed=3)
    got, want = onnx_rec.recognize_arrays(images), torch_rec.recognize_arrays(images)
    assert len({p.text for p in want}) > 3  # the model reads different things: the comparison means something
    assert [p.text for p in got] == [p.text for p in want]
    np.testing.assert_allclose([p.confidence for p in got], [p.confidence for p in want], atol=1e-4)
    assert [[(c.x0, c.x1) for c in p.chars] for p in got] == [[(c.x0, c.x1) for c in p.chars] for p in want]


def test_preprocessing_metadata_round_trip(tmp_path, tiny_vocab):
    """A non-default geometry and normalisation survive export; RGB input reads as with torch."""
    from crnn_ocr.recognize.torch_backend import TorchRecognizer

    cfg = ModelConfig(arch="crnn_s", height=48, channels=3, mean=0.4, std=0.25, min_width=24, max_width=800,
                      width_stride=4, hidden=16)
    ckpt = tmp_path / "rgb.pt"
    save_checkpoint(ckpt, calibrated_model(cfg, tiny_vocab, seed=1), cfg, tiny_vocab)
    export_onnx(ckpt, tmp_path / "rgb.onnx")
    rec = OnnxRecognizer(tmp_path / "rgb.onnx")
    assert rec.cfg == cfg
    images = blocky_images(5, seed=5, channels=3) + [np.full((10, 2000, 3), 200, np.uint8)]  # one past max_width
    want = TorchRecognizer.from_checkpoint(ckpt).recognize_arrays(images)
    assert [p.text for p in rec.recognize_arrays(images)] == [p.text for p in want]


def test_parity_failure_is_an_error_and_keeps_the_previous_export(tiny_checkpoint, tmp_path):
    report = export_onnx(tiny_checkpoint, tmp_path / "x.onnx", int8=True)
    before = {name: (tmp_path / name).read_bytes() for name in ("x.onnx", "x.int8.onnx")}
    assert report["int8"]["onnx"] == str(tmp_path / "x.int8.onnx")
    with pytest.raises(ExportError, match="differs from torch.*nothing written"):
        export_onnx(tiny_checkpoint, tmp_path / "x.onnx", int8=True, tolerance=-1.0)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # untouched, no temporary file left


def test_an_interrupted_int8_export_leaves_the_previous_files(tiny_checkpoint, tmp_path, monkeypatch):
    import crnn_ocr.export as export_module

    export_onnx(tiny_checkpoint, tmp_path / "x.onnx", int8=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def killed(fp32, int8):
        Path(int8).write_bytes(b"")  # what a kill during quantization leaves behind
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "quantize_int8", killed)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(tiny_checkpoint, tmp_path / "x.onnx", int8=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_export_writes_atomically_and_leaves_no_temporary_files(tiny_checkpoint, tmp_path):
    from crnn_ocr.models.checkpoint import load_model

    model, cfg, vocab = load_model(tiny_checkpoint)
    out = export_model(model, cfg, vocab, tmp_path / "sub" / "m.onnx")
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx"]


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """A labels.tsv folder of 12 drawn words."""
    from PIL import Image, ImageDraw, ImageFont

    folder = tmp_path_factory.mktemp("words")
    (folder / "images").mkdir()
    font = ImageFont.load_default()
    lines = []
    for i, word in enumerate(["cat", "dog", "house", "tree", "42", "river", "blue", "map", "sun", "ocr", "road", "7up"]):
        image = Image.new("L", (12 + 9 * len(word), 24), 255)
        ImageDraw.Draw(image).text((6, 5), word, fill=0, font=font)
        image.save(folder / "images" / f"{i}.png")
        lines.append(f"images/{i}.png\t{word}")
    (folder / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_int8_model_is_written_loads_and_reports_its_accuracy_change(lively, labelled_folder, tmp_path):
    ckpt, _, _ = lively
    report = export_onnx(ckpt, tmp_path / "m.onnx", int8=True, data=labelled_folder)
    q = report["int8"]
    int8_path = tmp_path / "m.int8.onnx"
    assert q["onnx"] == str(int8_path) and int8_path.is_file()
    assert q["size_bytes"] < report["size_bytes"]  # LSTM and head weights are stored in 8 bits
    rec = OnnxRecognizer(int8_path)  # the metadata survived quantization
    assert rec.vocab.chars == OnnxRecognizer(tmp_path / "m.onnx").vocab.chars
    assert 0 < q["max_abs_diff_vs_fp32"] < 1.0 and q["argmax_agreement_vs_fp32"] > 0.9
    assert report["score"]["samples"] == q["score"]["samples"] == 12
    assert q["accuracy_change"] == pytest.approx(q["score"]["protocol_accuracy"] - report["score"]["protocol_accuracy"])
    assert q["cer_change"] == pytest.approx(q["score"]["protocol_cer"] - report["score"]["protocol_cer"])


def test_cli_export_then_recognize_with_both_backends(lively, tmp_path):
    from click.testing import CliRunner
    from PIL import Image

    from crnn_ocr.cli import main

    ckpt, _, _ = lively
    out = tmp_path / "cli.onnx"
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--model", str(ckpt), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "checker passed" in result.output and "max |onnxruntime - torch|" in result.output
    images = []
    for i, array in enumerate(blocky_images(4, seed=11)):
        images.append(str(tmp_path / f"w{i}.png"))
        Image.fromarray(array).save(images[-1])
    via_onnx = runner.invoke(main, ["recognize", *images, "--model", str(out), "--json"])
    via_torch = runner.invoke(main, ["recognize", *images, "--model", str(ckpt), "--backend", "torch", "--json"])
    assert via_onnx.exit_code == via_torch.exit_code == 0, via_onnx.output + via_torch.output
    import json

    texts = [json.loads(line)["text"] for line in via_onnx.output.splitlines()]
    assert len(texts) == 4 and texts == [json.loads(line)["text"] for line in via_torch.output.splitlines()]


def test_cli_export_rejects_bad_input(tiny_checkpoint, tmp_path):
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    runner = CliRunner()
    result = runner.invoke(main, ["export", "--model", str(tmp_path / "missing.pt")])
    assert result.exit_code == 1 and "no such checkpoint" in result.output
    result = runner.invoke(main, ["export", "--model", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and "expected a .pt checkpoint" in result.output
    result = runner.invoke(main, ["export", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "m.bin")])
    assert result.exit_code == 1 and "must end in .onnx" in result.output
