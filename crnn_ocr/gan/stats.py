"""Cheap, recognizer-free measures of how "real" a set of crops looks: simple per-image statistics and the gap
between two sets' distributions of them. A sanity check for the GAN, not a substitute for recognition accuracy.

>>> import numpy as np
>>> s = image_statistics([np.full((32, 64), 128, np.uint8)])
>>> float(s["contrast"][0]), float(s["mean"][0])
(0.0, 128.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.text.metrics import levenshtein

STATISTICS = ("mean", "contrast", "sharpness", "noise")


def image_statistics(images: Sequence[np.ndarray], height: int = 32) -> dict[str, np.ndarray]:
    """Per image (gray, resized to `height`): mean level, contrast (std), sharpness (mean |Laplacian| per unit of
    contrast) and fine noise (median |image - 3x3 median filter|)."""
    out: dict[str, list[float]] = {k: [] for k in STATISTICS}
    for im in images:
        g = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) if im.ndim == 3 else im
        h, w = g.shape
        g = cv2.resize(g, (max(8, round(w * height / h)), height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)
        f = g.astype(np.float32)
        std = float(f.std())
        out["mean"].append(float(f.mean()))
        out["contrast"].append(std)
        out["sharpness"].append(float(np.abs(cv2.Laplacian(f, cv2.CV_32F)).mean()) / (std + 1.0))
        out["noise"].append(float(np.median(np.abs(f - cv2.medianBlur(g, 3).astype(np.float32)))))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def wasserstein_1d(a: np.ndarray, b: np.ndarray, quantiles: int = 201) -> float:
    """Earth mover's distance between two 1-D samples (through their quantile functions)."""
    q = np.linspace(0, 1, quantiles)
    return float(np.mean(np.abs(np.quantile(a, q) - np.quantile(b, q))))


def statistic_gaps(candidate: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Per statistic: W1 distance from the candidate set to the reference set, in units of the reference's std."""
    return {k: wasserstein_1d(candidate[k], reference[k]) / (float(reference[k].std()) + 1e-9) for k in STATISTICS}


TESSDATA_DIRS = ("/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata", "/usr/share/tessdata",
                 "/usr/local/share/tessdata", "/opt/homebrew/share/tessdata")


def tesseract_readability(images: Sequence[np.ndarray], texts: Sequence[str], tessdata: str | None = None) -> dict[str, float]:
    """Exact-match rate and CER of Tesseract (tesserocr, one text line, images enlarged 3x): a recognizer that has
    nothing to do with the GAN, so it cannot be fooled by what the content term optimised."""
    import tesserocr  # optional; only this measurement needs it
    from PIL import Image

    exact, errors, chars = 0, 0, 0
    tessdata = tessdata or next((d for d in TESSDATA_DIRS if (Path(d) / "eng.traineddata").is_file()), None)
    kwargs = {"path": tessdata} if tessdata else {}
    with tesserocr.PyTessBaseAPI(psm=tesserocr.PSM.SINGLE_LINE, **kwargs) as api:
        for im, text in zip(images, texts):
            api.SetImage(Image.fromarray(cv2.resize(im, (im.shape[1] * 3, im.shape[0] * 3), interpolation=cv2.INTER_CUBIC)))
            got = api.GetUTF8Text().strip()
            exact += got == text
            errors += levenshtein(got, text)
            chars += len(text)
    return {"exact": exact / max(len(texts), 1), "cer": errors / max(chars, 1)}


def main(argv: Sequence[str] | None = None) -> dict:
    """`python -m crnn_ocr.gan.stats GAN.pt [--count N] [--tessdata DIR]`: the measurements of README.md.

    Fresh renders (seed 1; the GAN's own pool used seed 0) are refined by the GAN; both sets are compared with
    real crops: 100 from each evaluation set (looked at, never trained on), 100 from each training split, and
    400 drawn uniformly from the four training splits (the mix the discriminator saw). Optionally Tesseract reads
    renders and refined renders.
    """
    import argparse
    import json

    from crnn_ocr.datasets.sources import open_source, open_sources
    from crnn_ocr.gan.data import RenderPool
    from crnn_ocr.gan.refine import load_refiner
    from crnn_ocr.image.io import read_image

    parser = argparse.ArgumentParser(prog="python -m crnn_ocr.gan.stats")
    parser.add_argument("gan")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--shared", default="../shared")
    parser.add_argument("--tessdata", default=None, help="Tesseract data folder (default: tesserocr's)")
    parser.add_argument("--no-tesseract", action="store_true")
    args = parser.parse_args(argv)

    renders = RenderPool.render(args.count, 32, 1, 320, seed=1)
    refined = load_refiner(args.gan, seed=0)(renders.images)
    rng = np.random.default_rng(0)

    def pick(paths: list[str], per_set: int) -> list[np.ndarray]:
        out = []
        for p in paths:
            src = open_source(p)
            out += [read_image(src.image_bytes(int(i))) for i in rng.choice(len(src), min(per_set, len(src)), replace=False)]
        return out

    ev, tr = f"{args.shared}/eval/", f"{args.shared}/train/"
    train_sets = [tr + s for s in ("ic15_train", "iiit5k_train", "svt_train", "sroie_train")]
    mix = open_sources(train_sets)
    references = {
        "eval sets, 100 each": pick([ev + s for s in ("iiit5k_test", "svt_test", "ic13_test", "sroie_test")], 100),
        "train splits, 100 each": pick(train_sets, 100),
        "train mix as D saw it": [read_image(mix.image_bytes(int(i))) for i in rng.choice(len(mix), 400, replace=False)],
    }
    report: dict = {"mean_abs_change": float(np.mean([np.abs(a.astype(int) - b.astype(int)).mean()
                                                      for a, b in zip(refined, renders.images)]))}
    ours = {"renders": image_statistics(renders.images), "gan": image_statistics(refined)}
    for name, crops in references.items():
        ref = image_statistics(crops)
        report[name] = {k: {s: round(v, 3) for s, v in statistic_gaps(st, ref).items()} for k, st in ours.items()}
    if not args.no_tesseract:
        report["tesseract"] = {k: tesseract_readability(ims, renders.texts, args.tessdata)
                               for k, ims in (("renders", renders.images), ("gan", refined))}
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
