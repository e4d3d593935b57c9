"""Deep belief networks, RBMs and perceptrons, and the text / non-text verifier built on them.

- `BernoulliRBM`, `GaussianRBM`: restricted Boltzmann machines trained by CD-k or persistent CD, with free
  energy and reconstruction error to watch training.
- `DBN`: RBMs pretrained greedily layer by layer, then fine-tuned with a softmax head by backprop.
- `Perceptron` (Rosenblatt's rule) and `MLP`: the baselines.
- `TextVerifier`: says which line candidates of a page hold text; a `crnn_ocr.page.TextFilter`.

The core reaches this package only through plain callables: a loaded `TextVerifier` is a function from a
list of uint8 crops to a list of keep flags.

>>> # from crnn_ocr.dbn import load_default_verifier
>>> # verifier = load_default_verifier()      # weights/*verifier*.pt, or None
>>> # keep = verifier([crop1, crop2])          # [True, False]
"""

from __future__ import annotations

from crnn_ocr.dbn.baselines import MLP, Perceptron
from crnn_ocr.dbn.dbn import DBN
from crnn_ocr.dbn.rbm import RBM, BernoulliRBM, GaussianRBM, make_rbm
from crnn_ocr.dbn.verifier import (
    FORMAT,
    TextVerifier,
    default_verifier_path,
    ink_map,
    load_default_verifier,
    patch_windows,
)

__all__ = [
    "DBN", "FORMAT", "MLP", "RBM", "BernoulliRBM", "GaussianRBM", "Perceptron", "TextVerifier",
    "default_verifier_path", "ink_map", "load_default_verifier", "make_rbm", "patch_windows",
]
