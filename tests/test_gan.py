"""The GAN (crnn_ocr.gan): shapes, losses that move, text kept readable, reproducibility, checkpoints, refiner, CLI."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import CheckpointError
from crnn_ocr.gan import (
    FORMAT,
    GanConfig,
    GanTrainConfig,
    Generator,
    PatchDiscriminator,
    load_gan_checkpoint,
    load_refiner,
    make_sample_filter,
    train_gan,
)
from crnn_ocr.gan.data import RenderPool, pad_batch, prepare
from crnn_ocr.gan.train import ContentLoss
from crnn_ocr.text.vocab import Vocab, greedy_decode, log_softmax

BUNDLED_FONTS = Path(__file__).resolve().parents[1] / "data" / "fonts"
pytestmark = pytest.mark.filterwarnings("ignore:no recognizer given")
WORDS = ["cat", "dog", "sun", "red", "tea", "one", "rat", "den"]
VOCAB = Vocab("".join(sorted(set("".join(WORDS)))))


def render_word(text: str, size: int = 24, shift: int = 0, height: int = 32) -> np.ndarray:
    """A clean, easy render: black DejaVu Sans on white."""
    font = ImageFont.truetype(str(BUNDLED_FONTS / "DejaVuSans.ttf"), size)
    pad = height // 5
    width = int(font.getlength(text)) + 2 * pad
    canvas = Image.new("L", (width, height), 255)
    ImageDraw.Draw(canvas).text((pad + shift, height // 10), text, font=font, fill=0)
    return np.asarray(canvas).copy()


def realistic(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stand-ins for "real" crops: low contrast, gray background, blur and noise (easy for D to tell apart)."""
    x = image.astype(np.float32) * 0.45 + 90
    x = x + rng.normal(0, 12, size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def renders() -> list[tuple[np.ndarray, str]]:
    return [(render_word(w), w) for w in WORDS]


@pytest.fixture(scope="module")
def real_crops() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    return [realistic(render_word(w, size=22), rng) for w in ["hello", "world", "total", "open", "sale", "cash"]]


def read(model, cfg: ModelConfig, images: list[np.ndarray]) -> tuple[list[str], torch.Tensor]:
    """Greedy texts and the per-image CTC losses of `images` under the recognizer."""
    from crnn_ocr.image.preprocess import make_batch, output_lengths

    batch, widths = make_batch(images, cfg)
    with torch.no_grad():
        logits = model(torch.from_numpy(batch))
    texts = [greedy_decode(log_softmax(lg.numpy()[: int(t)]), VOCAB).text
             for lg, t in zip(logits, output_lengths(widths, cfg))]
    return texts, logits


def ctc_of(model, cfg: ModelConfig, images: list[np.ndarray], texts: list[str]) -> float:
    x, widths = pad_batch([prepare(im, cfg.height, cfg.channels) for im in images])
    with torch.no_grad():
        return float(ContentLoss(model, cfg, VOCAB)(x, widths, [VOCAB.encode(t) for t in texts]))


@pytest.fixture(scope="module")
def recognizer(tmp_path_factory, renders):
    """A tiny CRNN (height 16) that reads the easy renders: trained here for 100 steps, checked to read them."""
    import torch.nn.functional as F

    from crnn_ocr.image.preprocess import make_batch, output_lengths
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(arch="crnn_s", height=16, hidden=32)
    model = create_model(cfg, VOCAB.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    words = [w for _, w in renders]
    targets = torch.tensor([c for w in words for c in VOCAB.encode(w)])
    target_lengths = torch.tensor([len(w) for w in words])

    def jittered() -> tuple[np.ndarray, np.ndarray]:
        images = [render_word(w, size=int(rng.integers(22, 27)), shift=int(rng.integers(-2, 3))) for w in words]
        return make_batch(images, cfg)

    model.train()
    for _ in range(100):
        batch, widths = jittered()
        logp = model(torch.from_numpy(batch)).log_softmax(2).permute(1, 0, 2)  # (B, T, K) -> (T, B, K)
        lengths = torch.from_numpy(output_lengths(widths, cfg))
        loss = F.ctc_loss(logp, targets, lengths, target_lengths, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m in model.modules():  # batch-norm statistics of the final weights (the running ones lag behind)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    with torch.no_grad():
        for _ in range(3):
            model(torch.from_numpy(jittered()[0]))
    model.eval()
    assert read(model, cfg, [im for im, _ in renders])[0] == words, "precondition: the tiny recognizer must read the renders"
    path = tmp_path_factory.mktemp("rec") / "rec.pt"
    save_checkpoint(path, model, cfg, VOCAB)
    return path, model, cfg


def small_config(tmp_path, name: str = "gan.pt", **kw) -> GanTrainConfig:
    base = dict(out=str(tmp_path / name), steps=4, batch_size=4, synth_count=8, gen_width=8, gen_blocks=1,
                disc_width=8, lr_g=1e-3, lr_d=1e-3, log_every=1, sample_every=0, checkpoint_every=2, seed=3,
                device="cpu")
    base.update(kw)
    return GanTrainConfig(**base)


def run(cfg, renders, real_crops, **kw):
    return train_gan(cfg, renders=renders, real=real_crops, progress=False, log=lambda *_: None, **kw)


def state(path) -> dict:
    return torch.load(path, weights_only=True)


# ------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("width", [16, 37, 100, 257])
def test_shapes_for_several_widths(channels, width):
    cfg = GanConfig(channels=channels, gen_width=8, gen_blocks=1, disc_width=8)
    torch.manual_seed(0)
    gen, disc = Generator(cfg), PatchDiscriminator(cfg)
    x = torch.rand(2, channels, 32, width) * 2 - 1
    y = gen(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert torch.equal(y, x)  # the last convolution starts at zero: an untrained generator is the identity
    scores = disc(x)
    assert scores.shape == (2, 1, 4, width // 8)  # (B, 1, H/8, W/8) patch scores


@pytest.mark.parametrize("height", [16, 64])
def test_other_heights_and_odd_sizes(height):
    cfg = GanConfig(height=height, gen_width=8, gen_blocks=1, disc_width=8)
    gen = Generator(cfg)
    torch.nn.init.normal_(gen.out.weight, std=0.1)  # no longer the identity: the shape must still come back
    x = torch.rand(1, 1, height, 45) * 2 - 1
    y = gen(x, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and not torch.equal(y, x)
    y2 = gen(x, generator=torch.Generator().manual_seed(1))
    y3 = gen(x, generator=torch.Generator().manual_seed(2))
    assert torch.equal(y, y2) and not torch.equal(y, y3)  # the noise is an input: seeded, and it matters
    assert PatchDiscriminator(cfg)(x).shape[2] == height // 8


# --------------------------------------------------------------------------------------------- training


def test_a_few_steps_move_both_losses_and_all_weights(tmp_path, renders, real_crops):
    cfg = small_config(tmp_path, steps=8)
    with pytest.warns(UserWarning, match="no recognizer"):
        result = run(cfg, renders, real_crops)
    torch.manual_seed(cfg.seed)  # the networks' initial weights, built as train_gan builds them
    gan_cfg = GanConfig(gen_width=8, gen_blocks=1, disc_width=8)
    gen0, disc0 = Generator(gan_cfg), PatchDiscriminator(gan_cfg)
    data = state(cfg.out)
    for name, value in gen0.named_parameters():
        assert not torch.equal(value, data["generator"][name]), f"generator {name} did not change"
    for name, value in disc0.named_parameters():
        assert not torch.equal(value, data["discriminator"][name]), f"discriminator {name} did not change"
    h = result.history
    assert [r["step"] for r in h] == list(range(1, 9))
    assert h[0]["pixel"] == 0.0 and h[-1]["pixel"] > 1e-3  # starts as the identity, then moves away
    assert h[0]["d_loss"] != h[-1]["d_loss"] and h[0]["g_adv"] != h[-1]["g_adv"]
    # the real crops are easy to tell from clean renders: D learns to score them higher
    margin = [r["d_real"] - r["d_fake"] for r in h]
    assert margin[-1] > margin[0] + 0.05, margin
    assert result.report["content_term"] is False


def test_content_term_keeps_text_readable(tmp_path, renders, real_crops, recognizer):
    """Trained hard against "real" crops with the recognizer's CTC term, G changes the renders a lot, yet the same
    recognizer still reads every one and its CTC loss stays within a small margin; the same run without the
    CTC term loses more of the text (so it is the content term that keeps it)."""
    rec_path, model, rec_cfg = recognizer
    words = [w for _, w in renders]
    images = [prepare(im, rec_cfg.height, rec_cfg.channels) for im, _ in renders]  # at the recognizer's height
    before = ctc_of(model, rec_cfg, images, words)
    losses = {}
    for weight in (1.0, 0.0):
        cfg = small_config(tmp_path, f"ctc{weight}.pt", steps=12, batch_size=8, lr_g=3e-3, pixel_weight=0.1,
                           ctc_weight=weight, recognizer=str(rec_path))
        result = run(cfg, renders, real_crops)
        assert result.report["content_term"] is True
        assert state(cfg.out)["config"]["height"] == rec_cfg.height  # the GAN follows the recognizer's geometry
        refined = load_refiner(cfg.out, seed=0)(images)
        assert [r.shape for r in refined] == [im.shape for im in images]
        change = float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(refined, images)]))
        assert change > 5.0, f"the generator barely changed the images ({change:.2f} gray levels)"
        losses[weight] = ctc_of(model, rec_cfg, refined, words)
        if weight > 0:
            assert all(r["ctc"] > 0 for r in result.history)
            assert read(model, rec_cfg, refined)[0] == words
    assert losses[1.0] <= before + 0.25, (before, losses)
    assert losses[0.0] > losses[1.0], (before, losses)  # measured: about 0.18 without the term, 0.10 with it


def test_seeded_runs_are_bit_identical(tmp_path, renders, real_crops):
    a, b, c = (small_config(tmp_path, name, steps=3) for name in ("a.pt", "b.pt", "c.pt"))
    c.seed = 4
    for cfg in (a, b, c):
        run(cfg, renders, real_crops)
    sa, sb, sc = state(a.out), state(b.out), state(c.out)
    for part in ("generator", "discriminator"):
        assert all(torch.equal(v, sb[part][k]) for k, v in sa[part].items())
        assert not all(torch.equal(v, sc[part][k]) for k, v in sa[part].items())


def test_checkpoint_format_and_exact_resume(tmp_path, renders, real_crops):
    straight = small_config(tmp_path, "straight.pt", steps=4)
    run(straight, renders, real_crops)
    split = small_config(tmp_path, "split.pt", steps=2)
    run(split, renders, real_crops)
    assert state(split.out)["train_state"]["step"] == 2
    split.steps = 4
    result = run(split, renders, real_crops)
    assert result.step == 4
    s1, s2 = state(straight.out), state(split.out)  # weights_only=True: plain types and tensors only
    assert s1["format"] == FORMAT and s1["config"]["gen_width"] == 8
    for part in ("generator", "discriminator"):
        for k, v in s1[part].items():
            assert torch.equal(v, s2[part][k]), f"{part} {k} differs after resume"
    assert [r["step"] for r in s2["train_state"]["history"]] == [1, 2, 3, 4]
    # a checkpoint of another architecture is not silently resumed
    other = small_config(tmp_path, "split.pt", steps=6, gen_width=12)
    with pytest.raises(CheckpointError, match="another GAN architecture"):
        run(other, renders, real_crops)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "crnn_ocr.checkpoint/1"}, foreign)
    with pytest.raises(CheckpointError):
        load_gan_checkpoint(foreign)
    with pytest.raises(CheckpointError):
        load_refiner(tmp_path / "missing.pt")


# ---------------------------------------------------------------------------------------------- refiner


@pytest.fixture(scope="module")
def trained_gan(tmp_path_factory, renders, real_crops):
    path = tmp_path_factory.mktemp("gan")
    cfg = small_config(path, steps=4, lr_g=3e-3)
    run(cfg, renders, real_crops)
    return cfg.out


def test_refiner_keeps_sizes_and_layouts(trained_gan):
    rng = np.random.default_rng(0)
    shapes = [(32, 90), (20, 50), (64, 300), (7, 5), (40, 120, 3), (33, 17, 1), (45, 90, 4)]
    images = [rng.integers(0, 256, size=s, dtype=np.uint8) for s in shapes]
    out = load_refiner(trained_gan, seed=1)(images)
    assert [o.shape for o in out] == shapes and all(o.dtype == np.uint8 for o in out)
    assert np.array_equal(out[6][:, :, 3], images[6][:, :, 3])  # alpha kept
    again = load_refiner(trained_gan, seed=1)(images)
    assert all(np.array_equal(a, b) for a, b in zip(out, again))
    assert not np.array_equal(out[0], images[0])  # a trained generator changes the image


def test_untrained_generator_refines_to_the_same_pixels(tmp_path, renders):
    from crnn_ocr.gan import save_gan

    cfg = GanConfig(gen_width=8, gen_blocks=1, disc_width=8)
    save_gan(tmp_path / "init.pt", Generator(cfg), PatchDiscriminator(cfg))
    image = renders[0][0]
    assert image.shape[0] == 32
    assert np.array_equal(load_refiner(tmp_path / "init.pt")([image])[0], image)


def test_sample_filter(trained_gan, renders):
    image = renders[1][0]
    never = make_sample_filter(trained_gan, probability=0.0)
    assert never(image, np.random.default_rng(0)) is image
    always = make_sample_filter(trained_gan, probability=1.0)
    a = always(image, np.random.default_rng(7))
    assert a.shape == image.shape and not np.array_equal(a, image)
    clone = pickle.loads(pickle.dumps(always))  # goes to data-loader workers; loads G again there
    assert clone._refiner is None
    assert np.array_equal(clone(image, np.random.default_rng(7)), a)
    half = make_sample_filter(trained_gan, probability=0.5)
    changed = [not np.array_equal(half(image, np.random.default_rng(s)), image) for s in range(20)]
    assert 3 <= sum(changed) <= 17
    with pytest.raises(ValueError):
        make_sample_filter(trained_gan, probability=1.5)


def test_render_pool_filters_unknown_labels(renders):
    pool = RenderPool.from_pairs(renders + [(renders[0][0], "CAT!")], 32, 1, 320, VOCAB)
    assert len(pool) == len(renders) and pool.targets[0] == VOCAB.encode("cat")


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_train_sample_and_synth(tmp_path, renders, real_crops):
    from click.testing import CliRunner

    from crnn_ocr.cli import main
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.image.io import read_image

    real = tmp_path / "real"
    (real / "images").mkdir(parents=True)
    lines = []
    for i, im in enumerate(real_crops):
        Image.fromarray(im).save(real / "images" / f"{i}.png")
        lines.append(f"images/{i}.png\tunused")
    (real / "labels.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "g.pt"
    runner = CliRunner()
    args = ["gan", "train", "--real", str(real), "--out", str(out), "--steps", "2", "--batch-size", "4",
            "--synth-count", "4", "--fonts", str(BUNDLED_FONTS), "--gen-width", "8", "--gen-blocks", "1",
            "--disc-width", "8", "--sample-every", "2", "--device", "cpu", "-q"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "at step 2" in result.output and out.is_file()
    assert (tmp_path / "g_samples" / "step_0000002.png").is_file() and (tmp_path / "g_samples" / "log.csv").is_file()

    grid = tmp_path / "grid.png"
    result = runner.invoke(main, ["gan", "sample", "--model", str(out), "--out", str(grid), "--count", "3",
                                  "--fonts", str(BUNDLED_FONTS)])
    assert result.exit_code == 0, result.output
    assert read_image(grid, channels=3).shape[0] > 3 * 32

    plain, refined = tmp_path / "plain.lmdb", tmp_path / "refined.lmdb"
    result = runner.invoke(main, ["data", "synth", "-n", "4", "-o", str(plain), "--workers", "1", "--fonts",
                                  str(BUNDLED_FONTS), "-q"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["gan", "refine", str(plain), "--model", str(out), "--out", str(refined), "-q"])
    assert result.exit_code == 0 and "wrote 4 refined samples" in result.output, result.output
    a, b = open_source(plain), open_source(refined)
    assert a.labels() == b.labels()
    assert [read_image(a.image_bytes(i)).shape for i in range(4)] == [read_image(b.image_bytes(i)).shape for i in range(4)]
    assert any(not np.array_equal(read_image(a.image_bytes(i)), read_image(b.image_bytes(i))) for i in range(4))

    bad = runner.invoke(main, ["gan", "train", "--real", str(real), "--out", str(tmp_path / "x.pt"), "--steps", "1",
                               "--recognizer", str(out)])
    assert bad.exit_code == 1 and "not a crnn_ocr checkpoint" in bad.output


# ------------------------------------------------------------------------------ on the fly in `ocr train`


def write_folder(folder: Path, pairs: list[tuple[np.ndarray, str]]) -> Path:
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, (image, text) in enumerate(pairs):
        Image.fromarray(image).save(folder / "images" / f"{i}.png")
        rows.append(f"images/{i}.png\t{text}")
    (folder / "labels.tsv").write_text("\n".join(rows) + "\n")
    return folder


def test_train_dataset_refines_only_the_flagged_sources(tmp_path, trained_gan, renders):
    from crnn_ocr.config import DataSource
    from crnn_ocr.train.data import TrainDataset, open_training_sources

    specs = [DataSource(str(write_folder(tmp_path / "renders", renders))),
             DataSource(str(write_folder(tmp_path / "real", renders)))]
    hook = make_sample_filter(trained_gan, probability=1.0, sources=[specs[0].path])
    assert [hook.applies_to(s) for s in specs] == [True, False] and make_sample_filter(trained_gan).applies_to(DataSource("synth"))
    entries, _ = open_training_sources(specs, VOCAB)
    cfg = ModelConfig(height=32)
    seen = []
    always = make_sample_filter(trained_gan, probability=1.0)

    def recording(image, rng):
        seen.append(image.shape)
        return always(image, rng)

    plain = TrainDataset(entries, cfg, VOCAB, augment_prob=0.0)
    refined = TrainDataset(entries, cfg, VOCAB, 0.0, recording, [hook.applies_to(s) for s in specs])
    for i in range(3):
        (a, ids_a), (b, ids_b) = plain[(0, i, 11)], refined[(0, i, 11)]
        assert a.shape == b.shape and ids_a == ids_b and not np.array_equal(a, b)
        (c, _), (d, _) = plain[(1, i, 11)], refined[(1, i, 11)]
        assert np.array_equal(c, d)  # real crops never go through G
    assert len(seen) == 3
    again = TrainDataset(entries, cfg, VOCAB, 0.0, always, [True, False])
    assert np.array_equal(again[(0, 1, 11)][0], refined[(0, 1, 11)][0])  # a function of the sample's seed


def test_training_applies_the_gan_through_the_sample_filter_hook(tmp_path, trained_gan, renders):
    from crnn_ocr.config import TrainConfig
    from crnn_ocr.errors import ConfigError
    from crnn_ocr.train import train

    data = write_folder(tmp_path / "renders", renders)

    def config(out: str) -> TrainConfig:
        return TrainConfig(train=[{"path": str(data)}], vocab=VOCAB.chars, steps=2, batch_size=4, val_every=100,
                           model={"height": 32}, workers=0, threads=1, out=str(tmp_path / out))

    hook = make_sample_filter(trained_gan, probability=1.0, sources=[str(data)])
    result = train(config("run"), progress=False, sample_filter=hook)
    assert result.step == 2
    assert result.report["sample_filter"] == {"generator": str(trained_gan), "probability": 1.0, "sources": [str(data)]}
    with pytest.raises(ConfigError, match="not one of the training sources"):
        train(config("r2"), progress=False, sample_filter=make_sample_filter(trained_gan, sources=[str(tmp_path / "elsewhere")]))
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "other"}, foreign)
    with pytest.raises(CheckpointError):
        make_sample_filter(foreign, sources=[str(data)])


def test_core_training_config_and_flags_know_nothing_of_the_gan():
    from dataclasses import fields

    from click.testing import CliRunner

    from crnn_ocr.cli import main
    from crnn_ocr.config import DataSource, TrainConfig

    assert not [f.name for cls in (TrainConfig, DataSource) for f in fields(cls) if "gan" in f.name]
    for command in (["train", "--help"], ["data", "synth", "--help"]):
        assert "gan" not in CliRunner().invoke(main, command).output.lower()
