"""RBMs, the DBN, the perceptron baselines and the text / non-text verifier.

Everything is trained here on data made here (toy sets, text rendered with the bundled DejaVu fonts, clutter
drawn by `crnn_ocr.dbn.data`), small enough to run in seconds on one core.
"""

from __future__ import annotations

import itertools
import math
import pickle
import random

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import BUNDLED_FONTS, REPO
from PIL import Image, ImageDraw, ImageFont

from crnn_ocr.dbn import DBN, MLP, BernoulliRBM, GaussianRBM, Perceptron, TextVerifier, ink_map, patch_windows
from crnn_ocr.dbn.data import CLUTTER, ClutterRenderer, make_patches, real_crop_files, split_of
from crnn_ocr.dbn.experiment import Recipe, choose_threshold, train_verifier
from crnn_ocr.dbn.verifier import FORMAT, default_verifier_path
from crnn_ocr.errors import CheckpointError, ConfigError, DatasetError

SANS = str(BUNDLED_FONTS / "DejaVuSans.ttf")


# ----------------------------------------------------------------------------------------------------------
# RBMs
# ----------------------------------------------------------------------------------------------------------

def bars_and_stripes(n: int = 4) -> torch.Tensor:
    """All 2^(n+1) - 2 distinct bars-and-stripes patterns of an n x n grid, flattened (MacKay's toy set)."""
    patterns = set()
    for bits in itertools.product((0, 1), repeat=n):
        rows = np.repeat(np.array(bits)[:, None], n, 1)
        patterns.add(tuple(rows.ravel()))
        patterns.add(tuple(rows.T.ravel()))
    return torch.tensor(sorted(patterns), dtype=torch.float32)


def test_cd_k_lowers_reconstruction_error_on_a_toy_set():
    data = bars_and_stripes().repeat(8, 1)  # (240, 16)
    for k in (1, 3):
        rbm = BernoulliRBM(16, 12, seed=0)
        before = rbm.reconstruction_error(data)
        history = rbm.fit(data, epochs=40, batch_size=16, lr=0.1, k=k, seed=0)
        after = history[-1]["recon_error"]
        assert after < 0.5 * before, (k, before, after)
        assert history[-1]["free_energy"] < history[0]["free_energy"]  # training data became more probable


def test_gaussian_rbm_learns_a_real_valued_toy_set():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 10, generator=gen) * 2
    data = centres[torch.randint(0, 3, (300,), generator=gen)] + 0.3 * torch.randn(300, 10, generator=gen)
    data = (data - data.mean(0)) / data.std(0)
    rbm = GaussianRBM(10, 8, seed=0)
    before = rbm.reconstruction_error(data)
    history = rbm.fit(data, epochs=30, batch_size=20, seed=0, lr=0.01, val=data[:50])
    assert history[-1]["recon_error"] < 0.6 * before
    assert {"free_energy", "val_free_energy", "free_energy_gap", "val_recon_error"} <= set(history[-1])


def test_pcd_runs_and_makes_the_data_more_probable_than_noise():
    data = bars_and_stripes().repeat(8, 1)
    rbm = BernoulliRBM(16, 12, seed=1)
    history = rbm.fit(data, epochs=40, batch_size=16, lr=0.05, k=1, persistent=True, seed=0)
    assert all(math.isfinite(r["recon_error"]) for r in history)
    assert history[-1]["recon_error"] < history[0]["recon_error"]
    noise = torch.bernoulli(torch.full((500, 16), 0.5), generator=torch.Generator().manual_seed(0))
    is_pattern = (noise[:, None, :] == bars_and_stripes()[None]).all(-1).any(-1)
    # Lower free energy = more probable: bars and stripes against random grids that are not patterns.
    assert float(rbm.free_energy(bars_and_stripes()).mean()) < float(rbm.free_energy(noise[~is_pattern]).mean()) - 2


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianRBM])
def test_free_energy_matches_brute_force_sum_over_hidden_states(cls):
    torch.manual_seed(0)
    rbm = cls(4, 3, seed=0)
    with torch.no_grad():
        rbm.weight.normal_(0, 1)
        rbm.vbias.normal_(0, 1)
        rbm.hbias.normal_(0, 1)
    v = torch.rand(5, 4) if cls is GaussianRBM else torch.bernoulli(torch.full((5, 4), 0.5))
    hs = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)))  # (8, 3)
    if cls is BernoulliRBM:
        vis = -(v @ rbm.vbias)[:, None]
    else:
        vis = 0.5 * ((v - rbm.vbias) ** 2).sum(1)[:, None]
    energy = vis - (hs @ rbm.hbias)[None, :] - v @ rbm.weight @ hs.T  # E(v, h): (5, 8)
    expected = -torch.logsumexp(-energy, dim=1)
    assert torch.allclose(rbm.free_energy(v), expected, atol=1e-5)


def test_rbm_rejects_bad_input():
    rbm = BernoulliRBM(4, 2)
    with pytest.raises(ConfigError):
        rbm.fit(torch.zeros(3, 5))
    with pytest.raises(ConfigError):
        rbm.contrastive_divergence(torch.zeros(3, 4), k=0)
    with pytest.raises(ConfigError):
        DBN([16], 2)
    with pytest.raises(ConfigError):
        DBN([16, 8], 2, visible="poisson")


# ----------------------------------------------------------------------------------------------------------
# Perceptron and MLP
# ----------------------------------------------------------------------------------------------------------

def separable(n: int, seed: int, margin: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -2.0, 0.5, 1.5, -1.0])
    x = rng.uniform(-1, 1, (4 * n, 5))
    m = x @ w / np.linalg.norm(w) + 0.05
    keep = np.abs(m) > margin
    return torch.tensor(x[keep][:n], dtype=torch.float32), torch.tensor((m[keep][:n] > 0).astype(np.int64))


def test_perceptron_rule_converges_on_linearly_separable_data():
    x, y = separable(300, 0)
    p = Perceptron(5)
    history = p.fit(x, y, epochs=200)
    assert history[-1]["mistakes"] == 0 and len(history) < 200  # stopped because it converged
    assert history[0]["mistakes"] > 0
    xt, yt = separable(300, 1)
    assert (p(xt).argmax(1) == yt).float().mean() > 0.97


def test_perceptron_cannot_learn_xor_but_an_mlp_can():
    x = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]]).repeat(25, 1)
    y = torch.tensor([0, 1, 1, 0]).repeat(25)
    p = Perceptron(2)
    history = p.fit(x, y, epochs=50)
    assert all(r["mistakes"] > 0 for r in history)  # never converges: XOR is not linearly separable
    assert (p(x).argmax(1) == y).float().mean() <= 0.75
    mlp = MLP([2, 16], 2, dropout=0.0)
    mlp.fit(x, y, epochs=150, batch_size=20, lr=0.02)
    assert (mlp(x).argmax(1) == y).all()


def test_dbn_pretraining_logs_each_layer():
    torch.manual_seed(0)
    x = torch.rand(128, 20)
    records = []
    net = DBN([20, 12, 6], seed=0)
    hist = net.pretrain(x, epochs=[3, 2], log=records.append)
    assert [len(h) for h in hist] == [3, 2]
    assert [r["layer"] for r in records] == [1, 1, 1, 2, 2]
    assert all("recon_error" in r and "free_energy" in r for r in records)
    before = net.rbms[0].weight.clone()
    net.fine_tune(x, (x[:, 0] > 0.5).long(), epochs=2)
    assert not torch.equal(before, net.rbms[0].weight)  # fine-tuning moved the pretrained weights
    assert not net.rbms[0].weight.requires_grad  # and left them frozen for later RBM training


# ----------------------------------------------------------------------------------------------------------
# Patches and data
# ----------------------------------------------------------------------------------------------------------

def word_image(text: str, size: int = 28, bg: int = 255, fg: int = 0, pad: int = 6) -> np.ndarray:
    font = ImageFont.truetype(SANS, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), bg)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=font, fill=fg)
    return np.asarray(img)


def test_ink_map_ignores_polarity_and_contrast():
    dark = word_image("Receipt 42", bg=230, fg=20)
    light = word_image("Receipt 42", bg=20, fg=230)
    faint = word_image("Receipt 42", bg=200, fg=120)
    a, b, c = ink_map(dark), ink_map(light), ink_map(faint)
    assert a.max() == pytest.approx(1.0) and a.min() == 0.0
    assert np.abs(a - b).mean() < 0.02 and np.abs(a - c).mean() < 0.05
    assert ink_map(np.full((20, 60), 128, np.uint8)).max() == 0.0  # flat: no ink


def test_patch_windows_geometry():
    small = patch_windows(word_image("ab"))
    assert small.shape == (1, 16 * 64) and small.dtype == np.float32
    long_line = patch_windows(word_image("a long receipt line with many words in it " * 2))
    assert 2 <= len(long_line) <= 8 and long_line.shape[1] == 16 * 64
    tall = patch_windows(np.zeros((300, 10), np.uint8))
    assert tall.shape == (1, 16 * 64)
    assert patch_windows(np.zeros((0, 0), np.uint8)).shape == (1, 16 * 64)
    rgb = np.repeat(word_image("rgb")[..., None], 3, 2)
    assert np.allclose(patch_windows(rgb), patch_windows(word_image("rgb")))


def test_real_crops_split_by_name_and_never_from_eval(tmp_path):
    assert {split_of(f"img{i}.png") for i in range(200)} == {"train", "val", "test"}
    folder = tmp_path / "crops"
    (folder / "images").mkdir(parents=True)
    names = [f"images/{i}.png" for i in range(100)]
    (folder / "labels.tsv").write_text("".join(f"{n}\tx\n" for n in names))
    parts = {s: real_crop_files([folder], s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 100
    assert not set(parts["train"]) & set(parts["test"])
    evaluation = tmp_path / "eval" / "set"
    evaluation.mkdir(parents=True)
    (evaluation / "labels.tsv").write_text("a.png\tx\n")
    with pytest.raises(DatasetError):
        real_crop_files([evaluation], "train")


def test_clutter_kinds_render_as_gray_crops():
    from crnn_ocr.datasets.synth import discover_fonts
    from crnn_ocr.datasets.synth.render import Renderer

    renderer = Renderer(discover_fonts([BUNDLED_FONTS], include_bundled=False))
    clutter = ClutterRenderer(renderer)
    rng = random.Random(0)
    for kind in CLUTTER:
        image, name = clutter.render(rng, kind)
        assert name == kind and image.dtype == np.uint8 and image.ndim == 2 and min(image.shape) >= 4


# ----------------------------------------------------------------------------------------------------------
# A small verifier trained here (shared by the tests below)
# ----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def bundled_fonts():
    from crnn_ocr.datasets.synth import discover_fonts

    return discover_fonts([BUNDLED_FONTS], include_bundled=False)


@pytest.fixture(scope="session")
def small_data(bundled_fonts):
    train = make_patches(160, 160, seed=0, fonts=bundled_fonts)
    test = make_patches(80, 80, seed=99, fonts=bundled_fonts, keep_crops=True)
    return train, test


@pytest.fixture(scope="session")
def small_dbn(small_data):
    train, _ = small_data
    torch.manual_seed(0)
    net = DBN([train.x.shape[1], 64], 2, seed=0)
    net.pretrain(torch.from_numpy(train.x), epochs=4, seed=0)
    net.fine_tune(torch.from_numpy(train.x), torch.from_numpy(train.y), epochs=25, lr=2e-3, seed=0)
    return TextVerifier(net, "dbn", threshold=0.5)


def test_dbn_beats_chance_on_held_out_synthetic_patches(small_data, small_dbn):
    train, test = small_data
    assert set(train.source) & set(CLUTTER) and "synth" in train.source
    predicted = small_dbn.patch_scores(test.x) >= 0.5
    accuracy = float((predicted == test.y.astype(bool)).mean())
    assert accuracy > 0.7, accuracy  # chance is 0.5 (balanced classes)
    crop_accuracy = float((np.asarray(small_dbn(test.crops)) == test.y.astype(bool)).mean())
    assert crop_accuracy > 0.7, crop_accuracy


def test_verifier_as_text_filter_keeps_words_and_drops_rules_and_noise(bundled_fonts, small_dbn):
    """Statistical: fresh words are mostly kept, fresh rules and speckle mostly dropped."""
    from crnn_ocr.datasets.synth import SynthGenerator

    gen = SynthGenerator(bundled_fonts, line_share=0.3)
    clutter = ClutterRenderer(gen.renderer)
    rng = random.Random(1234)
    words = [gen.sample(rng)[0] for _ in range(40)]
    junk = [clutter.render(rng, kind)[0] for kind in ("rule", "speckle", "blank") for _ in range(14)]
    kept_words = small_dbn(words)
    kept_junk = small_dbn(junk)
    assert len(kept_words) == 40 and all(isinstance(k, bool) for k in kept_words)
    # A model trained on 320 patches in a second: tolerances are wide, but chance would keep both at ~0.5.
    assert np.mean(kept_words) >= 0.5, np.mean(kept_words)
    assert np.mean(kept_junk) <= 0.35, np.mean(kept_junk)
    assert small_dbn.scores(words).mean() > small_dbn.scores(junk).mean() + 0.2
    assert small_dbn([]) == []


def test_shipped_verifier_keeps_words_and_scores_clutter_low(bundled_fonts):
    path = default_verifier_path()
    if path is None:
        pytest.skip("no shipped verifier in weights/")
    from crnn_ocr.datasets.synth import SynthGenerator

    verifier = TextVerifier.load(path)
    gen = SynthGenerator(bundled_fonts, line_share=0.3)
    clutter = ClutterRenderer(gen.renderer)
    rng = random.Random(1234)
    words = [gen.sample(rng)[0] for _ in range(40)]
    junk = [clutter.render(rng, kind)[0] for kind in ("rule", "speckle", "blank", "table", "texture") for _ in range(10)]
    assert np.mean(verifier(words)) >= 0.85
    # Its threshold is set low (it keeps 98% of validation text), so clutter is told apart by score, not all dropped.
    assert verifier.scores(words).mean() > verifier.scores(junk).mean() + 0.4
    assert np.mean(verifier(junk)) < np.mean(verifier(words)) - 0.3


# ----------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["dbn", "mlp", "perceptron"])
def test_save_load_round_trip_gives_identical_scores(tmp_path, small_data, kind):
    train, test = small_data
    x, y = torch.from_numpy(train.x[:120]), torch.from_numpy(train.y[:120])
    if kind == "dbn":
        model = DBN([x.shape[1], 16, 8], 2, visible="gaussian", seed=0)
        model.pretrain(x, epochs=1)
        model.fine_tune(x, y, epochs=1)
    elif kind == "mlp":
        model = MLP([x.shape[1], 16], 2)
        model.fit(x, y, epochs=1)
    else:
        model = Perceptron(x.shape[1], average=True)
        model.fit(x, y, epochs=2)
    verifier = TextVerifier(model, kind, threshold=0.37, info={"note": "test"})
    path = tmp_path / f"{kind}_verifier.pt"
    verifier.save(path)
    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["format"] == FORMAT and raw["kind"] == kind
    loaded = TextVerifier.load(path)
    crops = test.crops[:30]
    assert np.array_equal(verifier.scores(crops), loaded.scores(crops))
    assert loaded(crops) == verifier(crops)
    assert loaded.threshold == pytest.approx(0.37) and loaded.info == {"note": "test"}
    assert default_verifier_path(tmp_path) == path


def test_load_refuses_foreign_and_unsafe_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    unsafe = tmp_path / "evil_verifier.pt"
    unsafe.write_bytes(pickle.dumps({"format": FORMAT, "x": Evil()}, protocol=2))
    with pytest.raises(CheckpointError):
        TextVerifier.load(unsafe)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "crnn_ocr.checkpoint/1", "state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a crnn_ocr text verifier"):
        TextVerifier.load(foreign)
    broken = tmp_path / "broken.pt"
    torch.save({"format": FORMAT, "kind": "dbn", "config": {"sizes": [4, 2]}, "state_dict": {}, "patch": {}}, broken)
    with pytest.raises(CheckpointError):
        TextVerifier.load(broken)
    with pytest.raises(CheckpointError):
        TextVerifier.load(tmp_path / "missing.pt")
    assert default_verifier_path(tmp_path / "nowhere") is None


def test_choose_threshold_keeps_the_target_share_of_text():
    scores = np.linspace(0, 1, 101)
    truth = np.ones(101, np.int64)
    t = choose_threshold(scores, truth, 0.9, cap=1.0)
    assert (scores[truth == 1] >= t).mean() >= 0.9
    assert choose_threshold(scores, truth, 0.5) == 0.5  # capped


# ----------------------------------------------------------------------------------------------------------
# The page pipeline with and without the filter
# ----------------------------------------------------------------------------------------------------------

TEXT_LINES = ["TOTAL AMOUNT DUE 42.50", "Thank you for shopping", "Invoice number 000123", "Cashier: Mary Ann"]


def page_with_clutter() -> tuple[np.ndarray, list[tuple[int, int, int, int]], list[tuple[int, int, int, int]]]:
    """Four printed lines, then a row of stars (a logo), a row of checkboxes and a signature: all of which
    the line finder takes for lines. Returns the page, the text boxes and the clutter boxes."""
    from crnn_ocr.dbn.data import _scribble, _star

    page = Image.new("L", (700, 520), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(SANS, 22)
    text_boxes = []
    for i, t in enumerate(TEXT_LINES):
        draw.text((40, 40 + 60 * i), t, font=font, fill=0)
        text_boxes.append(draw.textbbox((40, 40 + 60 * i), t, font=font))
    arr = np.array(page)
    for k in range(5):
        cv2.fillPoly(arr, [_star(60 + 40 * k, 330, 14, 5, 0.45, -np.pi / 2)], 0, cv2.LINE_AA)
    for k in range(6):
        cv2.rectangle(arr, (400 + 40 * k, 320), (424 + 40 * k, 344), 0, 2)
    signature = cv2.resize(_scribble(random.Random(1)), (300, 60))
    arr[380:440, 40:340][signature > 128] = 0
    return arr, text_boxes, [(46, 316, 236, 345), (400, 320, 626, 346), (40, 380, 340, 440)]


def overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_page_pipeline_with_and_without_the_filter(small_dbn):
    from crnn_ocr.page import find_lines

    page, text_boxes, clutter_boxes = page_with_clutter()
    unfiltered = find_lines(page)
    assert len(unfiltered) == 7  # the clutter is found as lines without a filter
    seen = []

    def recording(crops):
        seen.extend(crops)
        return small_dbn(crops)

    filtered = find_lines(page, text_filter=recording)
    assert len(seen) == len(unfiltered)
    assert {ln.box for ln in filtered} <= {ln.box for ln in unfiltered}  # a filter only removes
    found_text = [t for t in text_boxes if any(overlaps(t, ln.box) for ln in filtered)]
    assert len(found_text) >= 3  # text survives (a tiny test model may miss one)
    assert find_lines(page, text_filter=lambda crops: [True] * len(crops)) == unfiltered


def test_shipped_verifier_cleans_a_rendered_page():
    path = default_verifier_path()
    if path is None:
        pytest.skip("no shipped verifier in weights/")
    from crnn_ocr.page import crop_line, find_lines

    verifier = TextVerifier.load(path)
    assert "verifier" in path.name and path.stat().st_size < 5_000_000
    page, text_boxes, clutter_boxes = page_with_clutter()
    filtered = find_lines(page, text_filter=verifier)
    assert all(any(overlaps(t, ln.box) for ln in filtered) for t in text_boxes)  # every text line kept
    candidates = find_lines(page)
    scores = verifier.scores([crop_line(page, ln)[0] for ln in candidates])
    is_text = [any(overlaps(t, ln.box) for t in text_boxes) for ln in candidates]
    text_scores = [s for s, t in zip(scores, is_text) if t]
    clutter_scores = [s for s, t in zip(scores, is_text) if not t]
    assert len(text_scores) == 4 and len(clutter_scores) == 3
    assert min(text_scores) > max(clutter_scores) + 0.2  # every text line outranks every piece of clutter
    strict = TextVerifier.load(path)
    strict.threshold = 0.5  # a stricter operating point drops all three
    assert len(find_lines(page, text_filter=strict)) == 4


def test_onnx_export_scores_like_torch_and_carries_threshold_and_geometry(tmp_path, small_dbn):
    from crnn_ocr.runtime import OnnxTextVerifier

    page, _, _ = page_with_clutter()
    from crnn_ocr.page import crop_line, find_lines

    crops = [crop_line(page, ln)[0] for ln in find_lines(page)]
    small_dbn.threshold = 0.37
    path = small_dbn.export_onnx(tmp_path / "v.onnx")
    onnx_v = OnnxTextVerifier(path)
    assert (onnx_v.threshold, onnx_v.height, onnx_v.width, onnx_v.max_windows) == (0.37, 16, 64, 8)
    want = small_dbn.scores(crops)
    assert want.max() - want.min() > 0.1  # the crops are told apart, so equality below means something
    np.testing.assert_allclose(onnx_v.scores(crops), want, atol=1e-5)
    assert onnx_v(crops) == small_dbn(crops)
    small_dbn.threshold = 0.5


def test_onnx_verifier_refuses_a_recognizer_model_and_junk(tmp_path):
    from crnn_ocr.defaults import default_model
    from crnn_ocr.runtime import OnnxTextVerifier

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        OnnxTextVerifier(junk)
    with pytest.raises(CheckpointError, match="not a crnn_ocr text verifier"):
        OnnxTextVerifier(default_model("onnx"))


def test_shipped_onnx_verifier_matches_the_checkpoint():
    from crnn_ocr.defaults import find_verifier
    from crnn_ocr.page import crop_line, find_lines
    from crnn_ocr.runtime import OnnxTextVerifier

    pt, onnx_path = find_verifier(".pt"), find_verifier(".onnx")
    assert pt is not None and onnx_path is not None and pt.stem == onnx_path.stem
    page, _, _ = page_with_clutter()
    crops = [crop_line(page, ln)[0] for ln in find_lines(page)]
    torch_v, onnx_v = TextVerifier.load(pt), OnnxTextVerifier(onnx_path)
    assert onnx_v.threshold == pytest.approx(torch_v.threshold)
    np.testing.assert_allclose(onnx_v.scores(crops), torch_v.scores(crops), atol=1e-5)


def test_recognize_cli_filters_page_lines_with_the_verifier(tmp_path, small_dbn, monkeypatch):
    import json

    from crnn_ocr.cli import main
    from crnn_ocr.runtime import OnnxTextVerifier

    page, _, _ = page_with_clutter()
    png = tmp_path / "page.png"
    Image.fromarray(page).save(png)

    def lines(*args):
        result = CliRunner().invoke(main, ["recognize", str(png), "--layout", "page", "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["lines"]

    everything = lines("--no-verifier")  # the 4 text lines and what of the 3 clutter lines reads as more than a mark
    assert 4 <= len(everything) <= 7
    small_dbn.threshold = 1.0  # keeps nothing
    try:
        small_dbn.export_onnx(tmp_path / "strict.onnx")
    finally:
        small_dbn.threshold = 0.5
    assert lines("--verifier", str(tmp_path / "strict.onnx")) == []

    calls = []
    original = OnnxTextVerifier.__call__
    monkeypatch.setattr(OnnxTextVerifier, "__call__", lambda self, crops: calls.append(self.path) or original(self, crops))
    default = lines()  # the shipped verifier, through onnxruntime
    assert len(calls) == 1 and "verifier" in calls[0].name
    assert {tuple(ln["box"]) for ln in default} <= {tuple(ln["box"]) for ln in everything}
    assert len(default) >= 4

    result = CliRunner().invoke(main, ["recognize", str(png), "--verifier", str(tmp_path / "strict.onnx"), "--no-verifier"])
    assert result.exit_code != 0 and "exclude each other" in result.output


# ----------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------

def test_cli_dbn_train_writes_a_loadable_verifier_and_scores_crops(tmp_path):
    from crnn_ocr.cli import main

    out = tmp_path / "tiny_verifier.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["dbn", "train", "--out", str(out), "--text", "30", "--clutter", "30", "--no-real",
                                  "--font-dir", str(BUNDLED_FONTS), "--hidden", "16", "--pretrain-epochs", "1",
                                  "--finetune-epochs", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and out.is_file()
    verifier = TextVerifier.load(out)
    assert verifier.kind == "dbn" and 0.0 <= verifier.threshold <= 0.5
    assert verifier.info["recipe"]["n_text"] == 30
    crop = tmp_path / "word.png"
    Image.fromarray(word_image("hello")).save(crop)
    result = runner.invoke(main, ["dbn", "score", str(crop), "--verifier", str(out)])
    assert result.exit_code == 0 and str(crop) in result.output
    onnx_result = runner.invoke(main, ["dbn", "score", str(crop), "--verifier", str(out.with_suffix(".onnx"))])
    assert onnx_result.exit_code == 0, onnx_result.output
    torch_score, onnx_score = float(result.output.split("\t")[1]), float(onnx_result.output.split("\t")[1])
    assert abs(torch_score - onnx_score) <= 1e-3  # the .onnx written beside the .pt is the same classifier
    exported = runner.invoke(main, ["dbn", "export", str(out), "--out", str(tmp_path / "again.onnx")])
    assert exported.exit_code == 0 and "max |diff|" in exported.output and (tmp_path / "again.onnx").is_file()
    bad = runner.invoke(main, ["dbn", "train", "--out", str(tmp_path / "x.onnx"), "--no-real"])
    assert bad.exit_code != 0 and "must end in .pt" in bad.output
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "other"}, foreign)
    result = runner.invoke(main, ["dbn", "score", str(crop), "--verifier", str(foreign)])
    assert result.exit_code == 1 and "not a crnn_ocr text verifier" in result.output


def test_default_real_folders_exclude_evaluation_data():
    from crnn_ocr.dbn.data import default_real_folders

    assert all("eval" not in p.parts for p in default_real_folders())
    assert (REPO / "crnn_ocr" / "dbn" / "README.md").is_file()


def test_recipe_validates():
    with pytest.raises(ConfigError):
        Recipe(n_text=0)
    with pytest.raises(ConfigError):
        Recipe(hidden=[])
    with pytest.raises(ConfigError):
        Recipe(real_share=2.0)


def test_train_verifier_end_to_end_tiny(bundled_fonts):
    recipe = Recipe(n_text=40, n_clutter=40, n_val=20, hidden=[16], pretrain_epochs=1, finetune_epochs=2)
    messages = []
    verifier, report = train_verifier(recipe, "dbn", log=messages.append, fonts=bundled_fonts)
    assert any("rbm 1 epoch 1" in m for m in messages)
    assert report["validation"]["crop"]["tp"] + report["validation"]["crop"]["fn"] == 20
    assert set(verifier.info) >= {"model", "recipe", "validation"}


def test_roc_auc():
    from crnn_ocr.dbn.fit import roc_auc

    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.5)) == 0.5
    rng = np.random.default_rng(0)
    truth, scores = rng.integers(0, 2, 500), rng.random(500)
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in scores[truth == 1] for b in scores[truth == 0]])
    assert roc_auc(truth, scores) == pytest.approx(brute)
