"""The torch inference path: `TorchRecognizer.from_checkpoint(path).recognize(images)`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from crnn_ocr.models.checkpoint import load_model
from crnn_ocr.recognize.base import TextRecognizer


class TorchRecognizer(TextRecognizer):
    """CRNN recognizer running on torch (CPU or CUDA).

    >>> # rec = TorchRecognizer.from_checkpoint("model.pt"); print(rec.recognize("word.png")[0].text)
    """

    def __init__(self, model: torch.nn.Module, cfg, vocab, device: str = "cpu", batch_size: int = 32):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        super().__init__(self._forward, cfg, vocab, batch_size)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", batch_size: int = 32) -> TorchRecognizer:
        model, cfg, vocab = load_model(path)
        return cls(model, cfg, vocab, device, batch_size)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
