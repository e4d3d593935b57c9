"""Shared fixtures: tiny models and tiny data, all made here (no network, no ../shared needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
BUNDLED_FONTS = REPO / "data" / "fonts"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_vocab():
    from crnn_ocr.text.vocab import Vocab

    return Vocab("abcdefghijklmnopqrstuvwxyz0123456789 ")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_vocab) -> Path:
    """An untrained crnn_s with a small vocabulary, saved in the checkpoint format."""
    import torch

    from crnn_ocr.config import ModelConfig
    from crnn_ocr.models import create_model
    from crnn_ocr.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = ModelConfig(arch="crnn_s", height=32, hidden=32)
    model = create_model(cfg, tiny_vocab.num_classes)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, cfg, tiny_vocab)
    return path


@pytest.fixture(scope="session")
def bundled_fonts():
    from crnn_ocr.datasets.synth.fonts import discover_fonts

    return discover_fonts([BUNDLED_FONTS], include_bundled=False)


@pytest.fixture(scope="session")
def rendered_lmdb(tmp_path_factory) -> Path:
    """300 rendered words and lines in an LMDB, rendered with the bundled fonts only."""
    from crnn_ocr.datasets.synth import synthesize

    out = tmp_path_factory.mktemp("synth") / "words.lmdb"
    synthesize(out, 300, seed=3, workers=1, font_dirs=[str(BUNDLED_FONTS)], progress=False)
    return out
