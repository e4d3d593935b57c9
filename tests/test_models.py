"""Contract tests over every registered architecture; the registry; checkpoints (round trip and safety)."""

from __future__ import annotations

import dataclasses
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ArchitectureError, CheckpointError, OcrError
from crnn_ocr.image.preprocess import make_batch, output_lengths
from crnn_ocr.models import RecognitionModel, available, create_model, register
from crnn_ocr.models import registry as registry_module
from crnn_ocr.models.checkpoint import (
    FORMAT,
    average_checkpoints,
    load_checkpoint,
    load_model,
    save_checkpoint,
    unwrap,
)
from crnn_ocr.text.vocab import Vocab

ARCHS = available()
HEIGHTS = (16, 32, 48, 64)
WIDTHS = (16, 37, 100, 260)
VOCAB = Vocab("abcdefghij")  # K = 11


def small(arch: str, **kwargs) -> ModelConfig:
    return ModelConfig(arch=arch, hidden=32, **kwargs)


@pytest.fixture(scope="module")
def models():
    """One small model per (architecture, height, channels), built once."""
    cache: dict[tuple, nn.Module] = {}

    def get(arch: str, height: int = 32, channels: int = 1) -> nn.Module:
        key = (arch, height, channels)
        if key not in cache:
            torch.manual_seed(0)
            cache[key] = create_model(small(arch, height=height, channels=channels), VOCAB.num_classes)
        return cache[key]

    return get


def test_registry_has_architectures():
    assert ARCHS == sorted(ARCHS)
    assert {"crnn_s", "crnn_m", "crnn_vgg"} <= set(ARCHS)


# ---------------------------------------------------------------- shape / finiteness / gradient contracts


@pytest.mark.parametrize("height", HEIGHTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_shape_for_every_width(models, arch, height):
    model = models(arch, height).eval()
    with torch.no_grad():
        for w in WIDTHS + (20, 36, 101, 263):  # multiples of 4 and odd widths
            x = torch.randn(2, 1, height, w)
            y = model(x)
            assert y.shape == (2, w // 4, VOCAB.num_classes), (arch, height, w)
            assert y.dtype == torch.float32
            assert torch.isfinite(y).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_on_make_batch_output(models, arch):
    cfg = small(arch, height=32)
    model = models(arch, 32).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, w), dtype=np.uint8) for w in WIDTHS]
    batch, widths = make_batch(images, cfg, resized=True)
    assert batch.shape[3] % 4 == 0
    with torch.no_grad():
        y = model(torch.from_numpy(batch))
    assert y.shape == (len(WIDTHS), batch.shape[3] // 4, VOCAB.num_classes)
    assert output_lengths(widths, cfg).max() <= y.shape[1]
    assert output_lengths(widths, cfg).tolist() == [-(-w // 4) for w in WIDTHS]
    for w in WIDTHS:  # each width alone, padded to a multiple of 4 by make_batch
        b, _ = make_batch([images[WIDTHS.index(w)]], cfg, resized=True)
        with torch.no_grad():
            assert model(torch.from_numpy(b)).shape[1] == -(-w // 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_three_channel_input(models, arch):
    model = models(arch, 32, 3).eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 32, 37))
    assert y.shape == (1, 9, VOCAB.num_classes) and torch.isfinite(y).all()


@pytest.mark.parametrize("height", [16, 64])
@pytest.mark.parametrize("arch", ARCHS)
def test_backward_gives_finite_gradients_for_all_parameters(models, arch, height):
    model = models(arch, height).train()
    model.zero_grad(set_to_none=True)
    x = torch.randn(2, 1, height, 40)
    logits = model(x)  # (B, T, K)
    log_probs = logits.log_softmax(-1).permute(1, 0, 2)  # (B, T, K) -> (T, B, K) for ctc_loss
    targets = torch.tensor([1, 2, 3, 4, 5])
    loss = nn.functional.ctc_loss(log_probs, targets, torch.tensor([10, 8]), torch.tensor([3, 2]), zero_infinity=False)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{arch}: no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"{arch}: non-finite gradient for {name}"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=True)
    model.eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_is_deterministic_and_batch_independent(models, arch):
    model = models(arch, 32).eval()
    x = torch.randn(3, 1, 32, 64)
    with torch.no_grad():
        y = model(x)
        assert torch.equal(y, model(x))
        torch.testing.assert_close(model(x[1:2]), y[1:2], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_height_collapsed_without_adaptive_pooling(models, arch):
    model = models(arch, 48)
    adaptive = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)
    assert not any(isinstance(m, adaptive) for m in model.modules())
    with pytest.raises(RuntimeError):
        model.eval()(torch.randn(1, 1, 32, 40))  # a height-48 model does not silently accept another height


@pytest.mark.parametrize("arch", ARCHS)
def test_hidden_and_num_classes_are_honoured(arch):
    a = create_model(ModelConfig(arch=arch, hidden=16), 5)
    b = create_model(ModelConfig(arch=arch, hidden=32), 5)
    assert sum(p.numel() for p in a.parameters()) < sum(p.numel() for p in b.parameters())
    with torch.no_grad():
        assert a.eval()(torch.randn(1, 1, 32, 16)).shape == (1, 4, 5)


# ---------------------------------------------------------------- registry


def test_unknown_architecture_raises():
    with pytest.raises(ArchitectureError, match="no_such_arch") as info:
        create_model(ModelConfig(arch="no_such_arch"), 10)
    assert "crnn_s" in str(info.value)  # the known names are listed
    assert not str(info.value).startswith(("'", '"'))  # not quoted like a KeyError
    assert isinstance(info.value, OcrError) and isinstance(info.value, KeyError)


def test_duplicate_architecture_raises():
    with pytest.raises(ArchitectureError, match="already registered"):
        register("crnn_s")(lambda cfg, n: nn.Linear(1, n))
    assert registry_module._REGISTRY["crnn_s"].__name__ != "<lambda>"  # the original is kept


class Tiny(RecognitionModel):
    """The registration example: one strided conv over the full height, a linear head."""

    time_stride = 4

    def __init__(self, cfg, num_classes):
        super().__init__(cfg, num_classes)
        self.features = nn.Conv2d(cfg.channels, 16, (cfg.height, 4), stride=(1, 4))
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.head(self.features(x).squeeze(2).permute(0, 2, 1))  # (B, 16, 1, T) -> (B, T, 16) -> (B, T, K)


def test_register_new_architecture_and_train_it(rendered_lmdb, tmp_path):
    from crnn_ocr.config import TrainConfig
    from crnn_ocr.train import train

    name = "test_only_tiny_arch"
    assert name not in available()
    try:
        register(name)(Tiny)
        assert name in available()
        model = create_model(ModelConfig(arch=name), 7)
        assert model(torch.zeros(1, 1, 32, 40)).shape == (1, 10, 7)
        with pytest.raises(ArchitectureError):
            register(name)(Tiny)
        cfg = TrainConfig(train=[{"path": str(rendered_lmdb)}], model={"arch": name}, steps=2, batch_size=8,
                          val_every=100, workers=0, threads=1, out=str(tmp_path / "run"))
        result = train(cfg, progress=False)
        assert result.step == 2
        trained, _, vocab = load_model(tmp_path / "run" / "last.pt")
        assert isinstance(trained, Tiny)
        tuned = train(dataclasses.replace(cfg, out=str(tmp_path / "tune"), init=str(tmp_path / "run" / "last.pt"),
                                          vocab=vocab.chars + "Ω", freeze_cnn=True), progress=False)
        assert tuned.report["init"] == {"from": str(tmp_path / "run" / "last.pt"), "shared_chars": len(vocab), "new_chars": 1}
        after, _, _ = load_model(tmp_path / "tune" / "last.pt")
        assert torch.equal(after.features.weight, trained.features.weight)  # the backbone stayed frozen
    finally:
        registry_module._REGISTRY.pop(name, None)
    assert name not in available()


def test_a_factory_must_build_a_recognition_model():
    name = "test_only_plain_module"
    try:
        register(name)(lambda cfg, n: nn.Linear(3, n))
        with pytest.raises(ArchitectureError, match="RecognitionModel"):
            create_model(ModelConfig(arch=name), 7)
    finally:
        registry_module._REGISTRY.pop(name, None)


# ---------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip(tmp_path, arch):
    torch.manual_seed(1)
    cfg = small(arch, height=32, mean=0.4, std=0.3, max_width=800)
    model = create_model(cfg, VOCAB.num_classes).eval()
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, model, cfg, VOCAB, train_state={"step": 7, "best": 0.5})
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left behind
    loaded, cfg2, vocab2 = load_model(path)
    assert cfg2 == cfg and vocab2 == VOCAB
    assert not loaded.training
    x = torch.randn(2, 1, 32, 52)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["arch"] == arch and raw["vocab"] == VOCAB.chars
    assert raw["config"] == cfg.to_dict()
    assert raw["train_state"] == {"step": 7, "best": 0.5}
    assert set(raw["state_dict"]) == set(model.state_dict())
    assert load_checkpoint(path)["format"] == FORMAT


def test_checkpoint_of_wrapped_model(tmp_path):
    cfg = small("crnn_s")
    model = create_model(cfg, VOCAB.num_classes).eval()
    wrapped = nn.DataParallel(model)  # keys gain "module."; the checkpoint must not
    assert unwrap(wrapped) is model
    path = tmp_path / "wrapped.pt"
    save_checkpoint(path, wrapped, cfg, VOCAB)
    assert not any(k.startswith("module.") for k in torch.load(path, weights_only=True)["state_dict"])
    loaded, _, _ = load_model(path)
    x = torch.randn(1, 1, 32, 24)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_overwrite_is_atomic(tmp_path):
    cfg = small("crnn_s")
    path = tmp_path / "model.pt"
    save_checkpoint(path, create_model(cfg, VOCAB.num_classes), cfg, VOCAB, {"step": 1})
    save_checkpoint(path, create_model(cfg, VOCAB.num_classes), cfg, VOCAB, {"step": 2})
    assert load_checkpoint(path)["train_state"] == {"step": 2}
    assert len(list(tmp_path.iterdir())) == 1


class _RunsCode:
    """Unpickling this calls os.mkdir(marker): a stand-in for arbitrary code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": FORMAT, "config": {}, "vocab": "abc", "state_dict": {}, "x": _RunsCode(str(marker))}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_model(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()  # the code never ran
    # (The payload is live: an unsafe load would have run it.)
    if writer == "torch.save":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as f:
            pickle.load(f)
    assert marker.is_dir()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_checkpoint(tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
    data = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95"][seed % 4] + data  # zip- and pickle-looking starts
    path = tmp_path / "noise.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)  # one line, for the CLI


@pytest.mark.parametrize("text", ["hello", "{}", "model weights v2\n", "cos\nsystem\n(S'echo hi'\ntR.", "x" * 500])
def test_text_file_checkpoint(tmp_path, text):
    path = tmp_path / "notes.pt"
    path.write_text(text)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_checkpoint(tmp_path):
    cfg = small("crnn_s")
    path = tmp_path / "model.pt"
    save_checkpoint(path, create_model(cfg, VOCAB.num_classes), cfg, VOCAB)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_model(path)


def test_missing_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path)


def test_empty_zip(tmp_path):
    path = tmp_path / "empty.pt"
    with zipfile.ZipFile(path, "w"):
        pass
    with pytest.raises(CheckpointError):
        load_model(path)


@pytest.fixture(scope="module")
def good_payload():
    cfg = small("crnn_s")
    model = create_model(cfg, VOCAB.num_classes)
    return {"format": FORMAT, "arch": "crnn_s", "config": cfg.to_dict(), "vocab": VOCAB.chars,
            "state_dict": model.state_dict(), "train_state": {}}


@pytest.mark.parametrize(
    "change",
    [
        {"format": "someone_else/1"},
        {"format": None},
        {"config": "not a table"},
        {"config": [1, 2]},
        {"config": None},
        {"config": {"arch": "crnn_s", "height": 33}},
        {"config": {"arch": "crnn_s", "colour": True}},
        {"vocab": ""},
        {"vocab": "aab"},
        {"vocab": 5},
        {"vocab": "abc"},  # the head has 11 outputs, this vocabulary needs 4
        {"state_dict": None},
        {"state_dict": [1, 2]},
        {"state_dict": {}},
        {"state_dict": {"head.weight": torch.zeros(3)}},
    ],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r:.20}",
)
def test_foreign_or_inconsistent_checkpoint(tmp_path, good_payload, change):
    path = tmp_path / "bad.pt"
    torch.save({**good_payload, **change}, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("missing", ["config", "vocab", "state_dict"])
def test_checkpoint_missing_keys(tmp_path, good_payload, missing):
    path = tmp_path / "bad.pt"
    torch.save({k: v for k, v in good_payload.items() if k != missing}, path)
    with pytest.raises(CheckpointError, match=missing):
        load_model(path)


def test_not_a_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a crnn_ocr checkpoint"):
        load_model(path)


def test_unknown_architecture_in_checkpoint(tmp_path, good_payload):
    path = tmp_path / "future.pt"
    torch.save({**good_payload, "config": {**good_payload["config"], "arch": "crnn_from_the_future"}}, path)
    with pytest.raises((CheckpointError, ArchitectureError), match="crnn_from_the_future"):
        load_model(path)


def test_average_checkpoints_is_the_mean_of_the_weights(tmp_path):
    torch.manual_seed(0)
    cfg = small("crnn_s")
    paths = []
    for i in range(3):
        path = tmp_path / f"step{i}.pt"
        save_checkpoint(path, create_model(cfg, VOCAB.num_classes), cfg, VOCAB)
        paths.append(path)
    states = [load_checkpoint(p)["state_dict"] for p in paths]
    model, cfg_back, vocab_back = average_checkpoints(paths)
    assert cfg_back.to_dict() == cfg.to_dict() and vocab_back.chars == VOCAB.chars
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, sum(s[name] for s in states) / 3)
        else:
            assert torch.equal(value, states[-1][name])
    weight = next(n for n, v in states[0].items() if v.is_floating_point() and v.numel() > 1)
    assert not torch.equal(model.state_dict()[weight], states[0][weight])


def test_average_checkpoints_refuses_different_architectures(tmp_path):
    a, b = small("crnn_s"), ModelConfig(arch="crnn_s", hidden=16)
    save_checkpoint(tmp_path / "a.pt", create_model(a, VOCAB.num_classes), a, VOCAB)
    save_checkpoint(tmp_path / "b.pt", create_model(b, VOCAB.num_classes), b, VOCAB)
    with pytest.raises(CheckpointError, match="differs"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(CheckpointError, match="no checkpoints"):
        average_checkpoints([])
