"""The optional TPS rectifier (`model.rectify = "tps"`) and the curved / arched / steep-perspective renders."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from crnn_ocr.config import ModelConfig, TrainConfig  # noqa: E402
from crnn_ocr.errors import ConfigError  # noqa: E402
from crnn_ocr.models import create_model  # noqa: E402
from crnn_ocr.models.checkpoint import load_checkpoint, load_model, save_checkpoint  # noqa: E402
from crnn_ocr.models.rectify import TPSRectifier, straight_points  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

WORDS = ["Hello", "OPEN 24h", "Street 12", "coffee", "x", "GRAND HOTEL"]


def _renders(fonts, n: int = 6, seed: int = 1, **kwargs) -> list[np.ndarray]:
    from crnn_ocr.datasets.synth.render import Renderer

    renderer, rng = Renderer(fonts, **kwargs), random.Random(seed)
    return [renderer.render(WORDS[i % len(WORDS)], rng) for i in range(n)]


# --- the rectifier on its own ---

@pytest.mark.parametrize("width", [16, 100, 257])
def test_a_new_rectifier_is_the_identity(width):
    rectifier = TPSRectifier(channels=1).eval()
    x = torch.rand(3, 1, 32, width) * 2 - 1
    with torch.no_grad():
        points = rectifier.fiducial_points(x)
        out = rectifier(x)
    assert torch.equal(points, rectifier.straight.expand(3, -1, -1))
    assert out.shape == x.shape
    assert (out - x).abs().max() < 1e-4


def test_the_rectifier_stays_the_identity_under_bf16_autocast():
    rectifier = TPSRectifier(channels=1).eval()
    x = torch.rand(2, 1, 32, 1600) * 2 - 1  # the widest input: pixel positions need float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = rectifier(x)
    assert out.dtype == torch.float32 and (out - x).abs().max() < 1e-3  # float32 rounding of positions at 1600 px


def test_the_spline_reproduces_affine_moves_and_each_sample_gets_its_own():
    rectifier = TPSRectifier(channels=1)
    straight = straight_points().float()
    shifted = straight + torch.tensor([0.1, -0.2])
    scaled = straight * torch.tensor([0.5, 0.8])
    grid = rectifier.grid(torch.stack([shifted, scaled, straight]), 8, 40)  # (3, 8, 40, 2)
    base = grid[2]
    assert torch.allclose(grid[0], base + torch.tensor([0.1, -0.2]), atol=1e-5)
    assert torch.allclose(grid[1], base * torch.tensor([0.5, 0.8]), atol=1e-5)
    # a bent layout: the sample positions follow the fiducials where they are (top and bottom edges)
    bent = straight.clone()
    bent[:10, 1] += 0.3 * torch.linspace(-1, 1, 10).square()
    top_row = rectifier.grid(bent[None], 100, 10)[0, 0, :, 1]  # y of the output's top row, near the top edge
    assert top_row[0] > top_row[5] < top_row[-1]


def test_the_rectifier_learns_gradients_reach_its_last_layer():
    model = create_model(ModelConfig(rectify="tps", hidden=16), 5).train()
    model(torch.rand(2, 1, 32, 64)).square().mean().backward()
    assert model.rectifier.points.weight.grad.abs().sum() > 0
    assert model.rectifier.localisation[0].weight.grad is not None


# --- config and checkpoints ---

def test_config_accepts_tps_or_nothing_and_leaves_the_key_out_when_off():
    assert ModelConfig().rectify is None and ModelConfig(rectify="tps").rectify == "tps"
    with pytest.raises(ConfigError, match="model.rectify"):
        ModelConfig(rectify="stn")
    assert "rectify" not in ModelConfig().to_dict()  # old checkpoints, runs and ONNX files compare equal
    assert "rectify" not in TrainConfig().to_dict()["model"]
    assert ModelConfig.from_dict(ModelConfig(rectify="tps").to_dict()).rectify == "tps"
    assert TrainConfig.from_dict({"model": {"rectify": "tps"}}).to_dict()["model"]["rectify"] == "tps"


def test_checkpoints_without_the_key_load_as_before(tiny_checkpoint):
    data = load_checkpoint(tiny_checkpoint)
    assert "rectify" not in data["config"]
    model, cfg, _ = load_model(tiny_checkpoint)  # strict load_state_dict: no extra or missing tensors
    assert cfg.rectify is None and model.rectifier is None
    assert not any(k.startswith("rectifier.") for k in model.state_dict())


def test_a_tps_checkpoint_round_trips(tmp_path, tiny_vocab):
    torch.manual_seed(0)
    cfg = ModelConfig(rectify="tps", hidden=16)
    model = create_model(cfg, tiny_vocab.num_classes).eval()
    with torch.no_grad():
        model.rectifier.points.weight.normal_(0, 0.05)
    save_checkpoint(tmp_path / "tps.pt", model, cfg, tiny_vocab)
    loaded, loaded_cfg, _ = load_model(tmp_path / "tps.pt")
    assert loaded_cfg.rectify == "tps"
    x = torch.rand(2, 1, 32, 80)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


@pytest.fixture(scope="module")
def shipped():
    from crnn_ocr.defaults import default_model

    path = default_model("torch")
    if path is None:
        pytest.skip("no shipped model in weights/")
    return path


def test_shipped_weights_fine_tune_into_a_tps_model_that_starts_as_the_original(shipped, bundled_fonts):
    from crnn_ocr.image.preprocess import make_batch
    from crnn_ocr.train.loop import transfer_weights  # what `ocr train --init` loads weights with

    original, cfg, vocab = load_model(shipped)
    tps_cfg = ModelConfig.from_dict({**cfg.to_dict(), "rectify": "tps"})
    tps = create_model(tps_cfg, vocab.num_classes)
    report = transfer_weights(tps, load_checkpoint(shipped), vocab, str(shipped))
    assert report["new_chars"] == 0
    tps.eval()
    for name, tensor in original.state_dict().items():
        assert torch.equal(tps.state_dict()[name], tensor), name
    batch, _ = make_batch(_renders(bundled_fonts), cfg)
    x = torch.from_numpy(batch)
    with torch.no_grad():
        want, got = original(x), tps(x)
    assert got.shape == want.shape
    assert (got - want).abs().max() < 1e-3
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_train_init_from_a_plain_checkpoint_with_rectify_in_the_config_trains_a_rectifier(tiny_checkpoint, rendered_lmdb,
                                                                                          tmp_path):
    """`init` gives the model's shape; `rectify = "tps"` in the config's [model] table adds the rectifier."""
    from crnn_ocr.config import DataSource
    from crnn_ocr.train.loop import train

    plain, plain_cfg, _ = load_model(tiny_checkpoint)
    run = TrainConfig(train=[DataSource(str(rendered_lmdb))], out=str(tmp_path / "run"), init=str(tiny_checkpoint),
                      model=ModelConfig(rectify="tps"), steps=2, batch_size=8, warmup_steps=0, val_every=100,
                      checkpoint_every=2, threads=1, seed=0)
    train(run, progress=False)
    tuned, tuned_cfg, _ = load_model(tmp_path / "run" / "last.pt")
    assert tuned_cfg.rectify == "tps" and tuned_cfg.hidden == plain_cfg.hidden  # the init's shape, plus a rectifier
    assert tuned.rectifier.points.weight.abs().sum() > 0  # it learned: no longer the zero-initialised identity


def test_train_only_the_rectifier_leaves_the_init_network_as_it_was(tiny_checkpoint, rendered_lmdb, tmp_path):
    from crnn_ocr.config import DataSource
    from crnn_ocr.train.loop import train

    run = TrainConfig(train=[DataSource(str(rendered_lmdb))], out=str(tmp_path / "run"), init=str(tiny_checkpoint),
                      model=ModelConfig(rectify="tps"), train_only=["rectifier"], steps=2, batch_size=8,
                      warmup_steps=0, val_every=100, checkpoint_every=2, threads=1, seed=0)
    train(run, progress=False)
    before = load_checkpoint(tiny_checkpoint)["state_dict"]
    after = load_checkpoint(tmp_path / "run" / "last.pt")["state_dict"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # every tensor of the init network, statistics too
    assert after["rectifier.points.weight"].abs().sum() > 0


# --- ONNX ---

def test_a_tps_model_exports_and_onnxruntime_agrees_at_two_widths(tmp_path, tiny_vocab):
    pytest.importorskip("onnx")
    from crnn_ocr.export import PARITY_TOLERANCE, RECTIFIED_PARITY_TOLERANCE, export_onnx
    from crnn_ocr.runtime import OnnxRecognizer, model_metadata, open_session

    torch.manual_seed(0)
    cfg = ModelConfig(rectify="tps", hidden=16)
    model = create_model(cfg, tiny_vocab.num_classes)
    model.train()
    with torch.no_grad():  # lively BatchNorm statistics and a rectifier that really warps
        model(torch.rand(8, 1, 32, 64) * 2 - 1)
        model.rectifier.points.weight.normal_(0, 0.3)
        model.head.weight.mul_(5.0)
    model.eval()
    save_checkpoint(tmp_path / "tps.pt", model, cfg, tiny_vocab)
    report = export_onnx(tmp_path / "tps.pt", tmp_path / "tps.onnx")
    assert report["checker"] == "passed" and report["parity"]["max_abs_diff"] <= PARITY_TOLERANCE
    assert report["parity"]["tolerance"] == RECTIFIED_PARITY_TOLERANCE  # sampling points computed by the network

    model, _, _ = load_model(tmp_path / "tps.pt")
    session = open_session(tmp_path / "tps.onnx", threads=1)
    rng = np.random.default_rng(3)
    for width in (100, 256):
        x = rng.uniform(-1, 1, (2, 1, 32, width)).astype(np.float32)
        got = session.run(["logits"], {"images": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x))
            warped = model.rectifier(torch.from_numpy(x))
        assert got.shape == (2, width // 4, tiny_vocab.num_classes)
        assert np.abs(got - want.numpy()).max() <= PARITY_TOLERANCE
        assert (warped - torch.from_numpy(x)).abs().max() > 0.1  # the warp is in the graph, not a no-op
    recognizer = OnnxRecognizer(tmp_path / "tps.onnx", threads=1)
    assert recognizer.cfg.rectify == "tps"
    assert '"rectify": "tps"' in model_metadata(recognizer.cfg, recognizer.vocab)["config"]


# --- renders ---

def test_arches_and_bowls_bend_the_text_and_keep_it(bundled_fonts):
    from PIL import Image, ImageDraw, ImageFont

    from crnn_ocr.datasets.synth.render import arch

    canvas = Image.new("L", (360, 90), 0)
    ImageDraw.Draw(canvas).text((20, 20), "ROUND LOGO", font=ImageFont.truetype(bundled_fonts[0].path, 40), fill=255)
    mask = np.asarray(canvas)

    def ink_rows(image):  # mean row of the ink in the leftmost, middle and rightmost columns holding ink
        cols = np.nonzero((image > 128).any(0))[0]
        picks = [cols[len(cols) // 20], cols[len(cols) // 2], cols[-len(cols) // 20]]
        return [np.nonzero(image[:, c] > 128)[0].mean() for c in picks]

    for bend in (1.5, -1.5):
        bent = arch(mask, bend)
        assert (bent > 128).sum() > 0.8 * (mask > 128).sum()  # the text is all there
        left, middle, right = ink_rows(bent)
        if bend > 0:
            assert left > middle + 10 and right > middle + 10  # ends lower: an arch
        else:
            assert left < middle - 10 and right < middle - 10  # ends higher: a bowl


def test_curved_renders_are_text_crops(bundled_fonts):
    images = _renders(bundled_fonts, n=12, seed=4, curved=1.0)
    for image in images:
        assert image is not None and image.dtype == np.uint8 and image.ndim == 2
        assert image.shape[0] >= 4 and image.shape[1] >= 4 and image.std() > 3
    plain = _renders(bundled_fonts, n=12, seed=4)
    assert any(a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(images, plain))
    with pytest.raises(ValueError, match="curved"):
        _renders(bundled_fonts, curved=1.5)


def test_default_renders_are_unchanged(bundled_fonts):
    """`curved=0` draws nothing extra: both renderers give the same images and leave the random stream where the
    renderer before `curved` existed left it (same seed, texts and bundled fonts)."""
    from crnn_ocr.datasets.synth.render import Renderer

    outputs = []
    for renderer in (Renderer(bundled_fonts), Renderer(bundled_fonts, curved=0.0)):
        rng = random.Random(2024)
        images = [renderer.render(["Hello", "OPEN 24h", "café", "Street 12", "x"][i % 5], rng) for i in range(40)]
        assert rng.random() == 0.12880741066459422  # the same number of random draws as before
        outputs.append(images)
    assert all(np.array_equal(a, b) for a, b in zip(*outputs))


def test_synth_cli_passes_curved_to_the_renderer(tmp_path):
    from click.testing import CliRunner

    from crnn_ocr.cli import main
    from crnn_ocr.datasets.sources import open_source

    images = []
    for curved in ("0", "1"):
        out = tmp_path / f"c{curved}.lmdb"
        result = CliRunner().invoke(main, ["data", "synth", "-n", "6", "-o", str(out), "--workers", "1", "--fonts",
                                           str(REPO / "data" / "fonts"), "--seed", "3", "--curved", curved, "-q"])
        assert result.exit_code == 0, result.output
        source = open_source(out)
        images.append([source.image_bytes(i) for i in range(6)])
    assert images[0] != images[1]
