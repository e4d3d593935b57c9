"""The torch-free inference path: `OnnxRecognizer("model.onnx").recognize(images)`.

An exported model is one `.onnx` file whose `metadata_props` carry everything needed to feed and decode it
(vocabulary, input height, channels, normalisation, width rules, blank index, architecture). This module
rebuilds the model config and vocabulary from them and runs the network with onnxruntime; preprocessing and
decoding are the same functions the torch path uses (`crnn_ocr.image.preprocess`, `crnn_ocr.text.vocab`).

It must never import torch, directly or indirectly: apps and `ocr recognize` rely on it to start fast.

>>> # rec = OnnxRecognizer("weights/crnn_default.onnx", threads=1); rec.recognize("word.png")[0].text
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import CheckpointError, ConfigError, VocabError
from crnn_ocr.recognize.base import TextRecognizer
from crnn_ocr.text.vocab import BLANK, Vocab

ONNX_FORMAT = "crnn_ocr.onnx/1"
INPUT_NAME = "images"
OUTPUT_NAME = "logits"

# metadata key -> ModelConfig field it fills (all values are strings in ONNX metadata_props)
_INT_KEYS = ("height", "channels", "width_stride", "min_width", "max_width")
_FLOAT_KEYS = ("mean", "std")
REQUIRED_KEYS = ("format", "vocab", "arch", "blank", *_INT_KEYS[:2], *_FLOAT_KEYS)


def model_metadata(cfg: ModelConfig, vocab: Vocab) -> dict[str, str]:
    """The `metadata_props` an exported model carries: everything an app needs besides the graph.

    >>> md = model_metadata(ModelConfig(), Vocab("ab"))
    >>> md["vocab"], md["blank"], md["height"], md["format"]
    ('ab', '0', '32', 'crnn_ocr.onnx/1')
    """
    return {
        "format": ONNX_FORMAT,
        "vocab": vocab.chars,
        "blank": str(BLANK),
        "arch": cfg.arch,
        "height": str(cfg.height),
        "channels": str(cfg.channels),
        "mean": repr(float(cfg.mean)),
        "std": repr(float(cfg.std)),
        "width_stride": str(cfg.width_stride),
        "min_width": str(cfg.min_width),
        "max_width": str(cfg.max_width),
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
    }


def config_from_metadata(meta: dict[str, str], name: str = "model") -> tuple[ModelConfig, Vocab]:
    """Rebuild the model config and vocabulary from `metadata_props`; CheckpointError if they are not ours.

    >>> cfg, vocab = config_from_metadata(model_metadata(ModelConfig(height=48), Vocab("xyz")))
    >>> cfg.height, vocab.chars
    (48, 'xyz')
    """
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if len(missing) == len(REQUIRED_KEYS) or "format" in missing:
        raise CheckpointError(f"{name}: an ONNX model without crnn_ocr metadata (no {', '.join(missing[:3])}); "
                              "export it with `ocr export`")
    if meta["format"] != ONNX_FORMAT:
        raise CheckpointError(f"{name}: unsupported model format {meta['format']!r} (expected {ONNX_FORMAT})")
    if missing:
        raise CheckpointError(f"{name}: metadata lacks {', '.join(missing)}")
    if meta["blank"].strip() != str(BLANK):
        raise CheckpointError(f"{name}: blank index {meta['blank']} is not supported (expected {BLANK})")
    fields: dict[str, Any] = {}
    if "config" in meta:  # the full config (hidden size, ...); the explicit keys below win
        try:
            extra = json.loads(meta["config"])
        except ValueError as e:
            raise CheckpointError(f"{name}: metadata 'config' is not JSON ({e})") from e
        if isinstance(extra, dict):
            fields.update({k: v for k, v in extra.items() if k in ModelConfig.__dataclass_fields__})
    try:
        fields["arch"] = meta["arch"]
        for key in _INT_KEYS:
            if key in meta:
                fields[key] = int(meta[key])
        for key in _FLOAT_KEYS:
            fields[key] = float(meta[key])
        cfg = ModelConfig.from_dict(fields)
        vocab = Vocab(meta["vocab"])
    except (ValueError, ConfigError, VocabError) as e:
        raise CheckpointError(f"{name}: invalid model metadata ({e})") from e
    return cfg, vocab


def session_options(threads: int = 0):
    """onnxruntime SessionOptions with `threads` intra-op threads (0: onnxruntime's default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: no warnings on stderr of the CLI
    return opts


def open_session(path: str | Path, threads: int = 0, providers: list[str] | None = None):
    """An onnxruntime InferenceSession for `path`; a missing or non-ONNX file raises CheckpointError."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise CheckpointError(f"{path}: not a readable ONNX model (empty file)")
    if head == b"PK\x03\x04":  # a zip archive: what torch.save writes
        raise CheckpointError(f"{path}: not a readable ONNX model (it looks like a torch checkpoint: "
                              "run it with the torch backend, or convert it with `ocr export`)")
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads),
                                    providers=providers or ["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001  - onnxruntime raises its own (pybind) exception types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable ONNX model ({first[:200]})") from e


class OnnxRecognizer(TextRecognizer):
    """CRNN recognizer running an exported `.onnx` file with onnxruntime; no torch needed.

    Args:
        path: the `.onnx` file written by `ocr export` (it carries the vocabulary and preprocessing).
        threads: intra-op CPU threads (0: onnxruntime's default, all cores).
        batch_size: images per forward pass (images are grouped by width first).
        providers: onnxruntime execution providers (default CPU).

    >>> # rec = OnnxRecognizer("model.onnx", threads=1); print(rec.recognize(["a.png", "b.png"])[0].text)
    """

    def __init__(self, path: str | Path, threads: int = 0, batch_size: int = 32, providers: list[str] | None = None):
        self.path = Path(path)
        self.session = open_session(self.path, threads, providers)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        cfg, vocab = config_from_metadata(meta, str(self.path))
        self.metadata = meta
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise CheckpointError(f"{self.path}: expected one (B, C, H, W) input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = OUTPUT_NAME if any(o.name == OUTPUT_NAME for o in outputs) else outputs[0].name
        channels, height = inputs[0].shape[1], inputs[0].shape[2]
        if isinstance(channels, int) and channels != cfg.channels:
            raise CheckpointError(f"{self.path}: input has {channels} channels but metadata says {cfg.channels}")
        if isinstance(height, int) and height != cfg.height:
            raise CheckpointError(f"{self.path}: input is {height} pixels high but metadata says {cfg.height}")
        super().__init__(self._forward, cfg, vocab, batch_size)
        self._check_graph()

    def _check_graph(self) -> None:
        """One forward pass of a blank image: the graph must take the metadata's geometry and score one class
        per vocabulary character plus the blank, else the readings would be garbage or an IndexError."""
        width = max(self.cfg.min_width, 8 * self.cfg.width_stride)
        probe = np.zeros((1, self.cfg.channels, self.cfg.height, width), np.float32)
        try:
            logits = self._forward(probe)
        except Exception as e:  # noqa: BLE001  - onnxruntime raises its own exception types
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{self.path}: the graph does not take the input its metadata describes "
                                  f"({self.cfg.channels}x{self.cfg.height}x{width}): {first}") from e
        if logits.ndim != 3 or logits.shape[2] != self.vocab.num_classes:
            raise CheckpointError(f"{self.path}: the graph scores {logits.shape[-1]} classes but the metadata's "
                                  f"vocabulary needs {self.vocab.num_classes} ({len(self.vocab)} characters + blank)")

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def __repr__(self) -> str:
        return f"OnnxRecognizer({str(self.path)!r}, arch={self.cfg.arch}, vocab={len(self.vocab)} chars)"
