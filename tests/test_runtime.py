"""The torch-free ONNX runtime: no torch import, same readings as torch, batching, threads, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from crnn_ocr.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_vocab):
    """(checkpoint, .onnx) of a crnn_s with calibrated BatchNorm, so that it reads different text per image."""
    import torch

    from crnn_ocr.config import ModelConfig
    from crnn_ocr.export import export_onnx
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import save_checkpoint

    cfg = ModelConfig(arch="crnn_s", height=32, hidden=32)
    torch.manual_seed(2)
    model = create_model(cfg, tiny_vocab.num_classes)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 1, 32, 64) * 2 - 1)
        model.head.weight.mul_(5.0)
    folder = tmp_path_factory.mktemp("runtime")
    save_checkpoint(folder / "m.pt", model.eval(), cfg, tiny_vocab)
    export_onnx(folder / "m.pt", folder / "m.onnx")
    return folder / "m.pt", folder / "m.onnx"


def blocky_images(n: int, seed: int = 0) -> list[np.ndarray]:
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        h, w = int(rng.integers(18, 70)), int(rng.integers(24, 420))
        small = rng.integers(0, 256, size=(3, max(2, w // 12)), dtype=np.uint8)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
    return out


NO_TORCH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["torch"] = None  # any `import torch` (or torch.anything) now raises ImportError
    import numpy as np
    from crnn_ocr.runtime import OnnxRecognizer

    model, png = sys.argv[1], sys.argv[2]
    rec = OnnxRecognizer(model, threads=1, batch_size=2)
    arrays = [np.load(sys.argv[3])["a%d" % i] for i in range(int(sys.argv[4]))]
    texts = [p.text for p in rec.recognize(png)] + [p.text for p in rec.recognize_arrays(arrays)]
    rec.set_decoder("beam", beam_width=5)
    beam = [p.text for p in rec.recognize_arrays(arrays)]

    from click.testing import CliRunner
    from crnn_ocr.cli import main
    result = CliRunner().invoke(main, ["recognize", png, "--model", model])
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print(json.dumps({"texts": texts, "beam": beam, "cli": [result.exit_code, result.output.rstrip(chr(10))],
                      "torch_modules": [m for m in loaded if sys.modules[m] is not None]}))
    """
)


def test_runtime_and_cli_recognize_run_with_torch_unimportable(exported, tmp_path):
    from PIL import Image

    from crnn_ocr.recognize.torch_backend import TorchRecognizer

    ckpt, model = exported
    images = blocky_images(5, seed=1)
    png = tmp_path / "word.png"
    Image.fromarray(images[0]).save(png)
    np.savez(tmp_path / "arrays.npz", **{f"a{i}": a for i, a in enumerate(images[1:])})
    run = subprocess.run([sys.executable, "-c", NO_TORCH_SCRIPT, str(model), str(png), str(tmp_path / "arrays.npz"),
                          str(len(images) - 1)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["torch_modules"] == []
    reference = TorchRecognizer.from_checkpoint(ckpt, batch_size=2)  # the same batches as in the subprocess
    want = [p.text for p in reference.recognize(png)] + [p.text for p in reference.recognize_arrays(images[1:])]
    assert len(set(want)) > 2
    assert out["texts"] == want
    assert out["cli"] == [0, want[0]]
    reference.set_decoder("beam", beam_width=5)
    assert out["beam"] == [p.text for p in reference.recognize_arrays(images[1:])]


def test_blocking_torch_really_blocks_it():
    """The guard the test above relies on: with sys.modules['torch'] = None, importing torch fails."""
    code = "import sys; sys.modules['torch'] = None\ntry:\n import torch.nn\nexcept ImportError:\n print('blocked')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "blocked"


def test_batching_and_decoders_match_torch(exported):
    from crnn_ocr.recognize.torch_backend import TorchRecognizer
    from crnn_ocr.runtime import OnnxRecognizer

    ckpt, model = exported
    images = blocky_images(11, seed=4)
    # Padding frames reach the backward LSTM, so a reading can depend on its batch: compare equal batching.
    one_by_one = OnnxRecognizer(model, threads=1, batch_size=1).recognize_arrays(images)
    assert [p.text for p in one_by_one] == [p.text for p in TorchRecognizer.from_checkpoint(ckpt, batch_size=1).recognize_arrays(images)]
    batched = OnnxRecognizer(model, threads=1, batch_size=4).recognize_arrays(images)
    torch_rec = TorchRecognizer.from_checkpoint(ckpt, batch_size=4)
    want = torch_rec.recognize_arrays(images)
    assert len({p.text for p in want}) > 3
    assert [p.text for p in batched] == [p.text for p in want]
    np.testing.assert_allclose([p.confidence for p in batched], [p.confidence for p in want], atol=1e-4)

    rec = OnnxRecognizer(model, batch_size=4)
    words = [p.text for p in want[:3]] + ["zzz"]
    rec.set_decoder(lexicon=words)
    torch_rec.set_decoder(lexicon=words)
    assert [p.text for p in rec.recognize_arrays(images)] == [p.text for p in torch_rec.recognize_arrays(images)]


def test_thread_count_is_set(exported):
    from crnn_ocr.runtime import OnnxRecognizer

    _, model = exported
    rec = OnnxRecognizer(model, threads=2)
    assert rec.session.get_session_options().intra_op_num_threads == 2
    assert OnnxRecognizer(model, threads=1).session.get_session_options().intra_op_num_threads == 1


def _onnx_with_metadata(path: Path, metadata: dict[str, str] | None) -> Path:
    """A valid ONNX graph (images -> Identity -> logits) carrying `metadata` (or none)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["logits"])], "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["B", 1, 32, "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", 1, 32, "W"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))
    return path


def _good_metadata() -> dict[str, str]:
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.runtime import model_metadata
    from crnn_ocr.text.vocab import Vocab

    return model_metadata(ModelConfig(), Vocab("abc"))


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "no such model file"),
        ("text", "not a readable ONNX model"),
        ("empty", "not a readable ONNX model"),
        ("checkpoint", "not a readable ONNX model"),
        ("no_metadata", "without crnn_ocr metadata"),
        ("foreign_format", "unsupported model format"),
        ("bad_vocab", "invalid model metadata"),
        ("bad_height", "invalid model metadata"),
        ("no_vocab", "metadata lacks vocab"),
    ],
)
def test_bad_model_files_give_one_clear_line(kind, message, tmp_path, tiny_checkpoint):
    from crnn_ocr.runtime import OnnxRecognizer

    path = tmp_path / "model.onnx"
    if kind == "missing":
        pass
    elif kind == "text":
        path.write_text("this is not a model\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "checkpoint":
        path.write_bytes(tiny_checkpoint.read_bytes())
    elif kind == "no_metadata":
        _onnx_with_metadata(path, None)
    else:
        meta = _good_metadata()
        if kind == "foreign_format":
            meta["format"] = "someone-else/3"
        elif kind == "bad_vocab":
            meta["vocab"] = "aab"
        elif kind == "bad_height":
            meta["height"] = "thirty"
        elif kind == "no_vocab":
            del meta["vocab"]
        _onnx_with_metadata(path, meta)
    with pytest.raises(CheckpointError) as info:
        OnnxRecognizer(path)
    text = str(info.value)
    assert message in text and "\n" not in text and str(path) in text


def test_metadata_that_does_not_fit_the_graph_is_refused_on_load(exported, tmp_path):
    import onnx

    from crnn_ocr.runtime import OnnxRecognizer

    _, model = exported
    good = OnnxRecognizer(model)  # the control: the model as exported loads
    vocab = good.vocab.chars

    def altered(name: str, **changes: str) -> Path:
        proto = onnx.load(str(model))
        for entry in proto.metadata_props:
            if entry.key in changes:
                entry.value = changes[entry.key]
            if entry.key == "config":  # the JSON copy of the config would otherwise restore the value
                entry.value = "{}"
        path = tmp_path / name
        onnx.save(proto, str(path))
        return path

    cases = {
        "taller.onnx": ({"height": "48"}, "pixels high but metadata says 48"),
        "longer_vocab.onnx": ({"vocab": vocab + "ΩΣ"}, "vocabulary needs"),
        "shorter_vocab.onnx": ({"vocab": vocab[:-3]}, "vocabulary needs"),
        "nan_mean.onnx": ({"mean": "nan"}, "must be finite"),
    }
    for name, (changes, message) in cases.items():
        with pytest.raises(CheckpointError, match=message) as info:
            OnnxRecognizer(altered(name, **changes))
        assert "\n" not in str(info.value), name
    with pytest.raises(CheckpointError, match="scores|does not take"):  # our metadata on a foreign graph
        OnnxRecognizer(_onnx_with_metadata(tmp_path / "m.onnx", _good_metadata()))


def test_cli_reports_a_bad_model_in_one_line(tmp_path):
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    bad = _onnx_with_metadata(tmp_path / "plain.onnx", None)
    (tmp_path / "w.png").write_bytes(b"")
    result = CliRunner().invoke(main, ["recognize", str(tmp_path / "w.png"), "--model", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "without crnn_ocr metadata" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_example_app_reads_like_the_runtime(exported, tmp_path):
    """examples/read_text.py (numpy + pillow + onnxruntime only) follows the documented rule exactly.

    The images already have the model's height and a width on the stride, so no resampler is involved and
    the example's readings must equal the library's.
    """
    from PIL import Image

    from crnn_ocr.runtime import OnnxRecognizer

    _, model = exported
    rng = np.random.default_rng(9)
    paths = []
    for i in range(5):
        width = 4 * int(rng.integers(8, 90))
        small = rng.integers(0, 256, size=(3, width // 12), dtype=np.uint8)
        paths.append(tmp_path / f"w{i}.png")
        Image.fromarray(small).resize((width, 32), Image.NEAREST).save(paths[-1])
    code = ("import runpy, sys; sys.modules['torch'] = None; sys.modules['crnn_ocr'] = None; "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code, str(REPO / "examples" / "read_text.py"), str(model), *map(str, paths)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [line.split("\t") for line in run.stdout.splitlines()]
    want = OnnxRecognizer(model, batch_size=1).recognize([str(p) for p in paths])
    assert [r[0] for r in rows] == [str(p) for p in paths]
    assert [r[1] for r in rows] == [p.text for p in want]
    assert len({p.text for p in want}) > 2
    for row, p in zip(rows, want):
        if p.text:
            assert float(row[2]) == pytest.approx(p.confidence, abs=2e-3)


def test_recognize_uses_the_shipped_onnx_model_by_default(exported, tmp_path, monkeypatch):
    """With no --model, `ocr recognize` asks for the shipped .onnx and runs it through OnnxRecognizer."""
    from click.testing import CliRunner
    from PIL import Image

    import crnn_ocr.defaults
    from crnn_ocr.cli import main
    from crnn_ocr.runtime import OnnxRecognizer

    _, model = exported
    asked = []
    monkeypatch.setattr(crnn_ocr.defaults, "default_model", lambda backend="onnx": asked.append(backend) or model)
    built = []
    original = OnnxRecognizer.__init__
    monkeypatch.setattr(OnnxRecognizer, "__init__", lambda self, *a, **k: built.append(a[0]) or original(self, *a, **k))
    image = blocky_images(1, seed=21)[0]
    Image.fromarray(image).save(tmp_path / "word.png")
    result = CliRunner().invoke(main, ["recognize", str(tmp_path / "word.png")])
    assert result.exit_code == 0, result.output
    assert asked[0] == "onnx" and built == [str(model)]
    assert result.output.rstrip("\n") == OnnxRecognizer(model).recognize_arrays([image])[0].text


NO_TORCH_PAGE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.modules["torch"] = None
    from click.testing import CliRunner
    from crnn_ocr.cli import main
    result = CliRunner().invoke(main, ["recognize", sys.argv[1], "--layout", "page", "--json"])
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    print(json.dumps({"code": result.exit_code, "output": result.output,
                      "torch_modules": [m for m in loaded if sys.modules[m] is not None]}))
    """
)


def test_page_reading_with_the_shipped_verifier_needs_no_torch(tmp_path, monkeypatch):
    """`ocr recognize page.png` filters lines with the shipped ONNX verifier, torch unimportable."""
    import cv2
    from click.testing import CliRunner

    from crnn_ocr.cli import main
    from crnn_ocr.defaults import find_verifier
    from crnn_ocr.runtime import OnnxTextVerifier

    assert find_verifier(".onnx") is not None
    page = np.full((200, 640), 255, np.uint8)
    cv2.putText(page, "HELLO WORLD 2026", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3)
    cv2.putText(page, "SECOND LINE HERE", (20, 150), cv2.FONT_HERSHEY_SIMPLEX, 1.2, 0, 3)
    png = tmp_path / "page.png"
    cv2.imwrite(str(png), page)
    run = subprocess.run([sys.executable, "-c", NO_TORCH_PAGE_SCRIPT, str(png)], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["code"] == 0 and out["torch_modules"] == []
    calls = []
    original = OnnxTextVerifier.__call__
    monkeypatch.setattr(OnnxTextVerifier, "__call__", lambda self, crops: calls.append(len(crops)) or original(self, crops))
    in_process = CliRunner().invoke(main, ["recognize", str(png), "--layout", "page", "--json"])
    assert calls == [2]  # both lines went through the verifier
    assert json.loads(out["output"]) == json.loads(in_process.output)
    assert len(json.loads(in_process.output)["lines"]) == 2


def test_an_onnx_model_on_the_torch_backend_says_so(exported):
    from click.testing import CliRunner

    from crnn_ocr.cli import main

    _, model = exported
    result = CliRunner().invoke(main, ["recognize", "--backend", "torch", "--model", str(model), str(model)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {model}: an exported ONNX model runs on the onnx backend; "
                                     "--backend torch needs a .pt checkpoint")
