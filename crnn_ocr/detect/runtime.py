"""The torch-free detection path: `OnnxDetector("detector.onnx").detect(image)` -> boxes per text level.

An exported detector is one `.onnx` file (input `images` (B, C, H, W) with dynamic H and W, output `maps`
(B, L, H', W') probabilities) whose `metadata_props` carry its `DetectorConfig` (levels, normalisation, resize
rule, thresholds). This module must never import torch, directly or indirectly.

>>> input_size(1000, 762, 1280), input_size(2000, 3000, 1280), input_size(10, 20, 1280)
((992, 768), (864, 1280), (32, 32))
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from crnn_ocr.detect.config import SIZE_MULTIPLE, DetectorConfig
from crnn_ocr.detect.postprocess import Detection, detections_from_maps
from crnn_ocr.errors import CheckpointError, ConfigError

ONNX_FORMAT = "crnn_ocr.detector.onnx/1"
INPUT_NAME = "images"
OUTPUT_NAME = "maps"


def input_size(height: int, width: int, max_side: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, int]:
    """The network input (height, width) for an image: long side scaled down to at most `max_side` (never up),
    then each side rounded to the nearest multiple of `multiple` (at least one multiple)."""
    ratio = min(1.0, max_side / max(height, width))

    def side(v: float) -> int:
        return max(multiple, int(round(v * ratio / multiple)) * multiple)

    return side(height), side(width)


def normalize_image(image: np.ndarray, cfg: DetectorConfig) -> np.ndarray:
    """uint8 (H, W, C) or (H, W) -> float32 (C, H, W) normalised as `cfg` says."""
    x = image.astype(np.float32) * (1 / 255.0)
    if x.ndim == 2:
        x = x[:, :, None]
    mean = np.asarray(cfg.mean, np.float32).reshape(1, 1, -1)
    std = np.asarray(cfg.std, np.float32).reshape(1, 1, -1)
    return np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1))  # (H, W, C) -> (C, H, W)


def load_rgb(image, cfg: DetectorConfig) -> np.ndarray:
    """Any image input (path, bytes, PIL, numpy RGB or gray) as uint8 (H, W, 3) RGB or (H, W) gray per `cfg`."""
    from crnn_ocr.image.io import read_image

    return read_image(image, channels=cfg.channels)


def prepare_image(image: np.ndarray, cfg: DetectorConfig, max_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Resize (see `input_size`) and normalise one uint8 image; returns the batch (1, C, H', W') and (H', W')."""
    h, w = image.shape[:2]
    size = input_size(h, w, max_side or cfg.max_side)
    resized = image if (h, w) == size else cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA
                                                      if size[0] < h else cv2.INTER_LINEAR)
    return normalize_image(resized, cfg)[None], size


def detector_metadata(cfg: DetectorConfig) -> dict[str, str]:
    """The `metadata_props` of an exported detector.

    >>> md = detector_metadata(DetectorConfig(arch="db_tiny"))
    >>> md["format"], md["levels"], md["arch"]
    ('crnn_ocr.detector.onnx/1', 'word,line', 'db_tiny')
    """
    return {"format": ONNX_FORMAT, "arch": cfg.arch, "levels": ",".join(cfg.levels), "channels": str(cfg.channels),
            "max_side": str(cfg.max_side), "output_stride": str(cfg.output_stride),
            "config": json.dumps(cfg.to_dict(), sort_keys=True)}


def config_from_metadata(meta: dict[str, str], name: str = "model") -> DetectorConfig:
    """Rebuild the DetectorConfig from `metadata_props`; CheckpointError if the file is not a crnn_ocr detector.

    >>> config_from_metadata(detector_metadata(DetectorConfig(max_side=960))).max_side
    960
    """
    fmt = meta.get("format")
    if fmt != ONNX_FORMAT:
        what = "no crnn_ocr metadata" if fmt is None else f"format {fmt!r}"
        raise CheckpointError(f"{name}: not a crnn_ocr text detector ({what}; expected {ONNX_FORMAT})")
    try:
        data = json.loads(meta["config"])
        return DetectorConfig.from_dict(data)
    except KeyError as e:
        raise CheckpointError(f"{name}: detector metadata lacks 'config'") from e
    except (ValueError, ConfigError) as e:  # ValueError: JSONDecodeError
        raise CheckpointError(f"{name}: invalid detector metadata ({e})") from e


class TextDetector:
    """Shared inference logic: resize, run `forward` (numpy (1, C, H, W) -> maps (1, L, H', W')), decode boxes.

    Args:
        forward: the network (onnxruntime session or torch model behind a numpy function).
        cfg: the detector's config.
        max_side: overrides `cfg.max_side` for the resize.
    """

    def __init__(self, forward: Callable[[np.ndarray], np.ndarray], cfg: DetectorConfig, max_side: int | None = None):
        self._forward = forward
        self.cfg = cfg
        self.max_side = max_side or cfg.max_side

    def maps(self, image) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """(maps (L, H', W'), network input size, original image size) of one image."""
        array = load_rgb(image, self.cfg)  # a uint8 array of the right channels passes through as it is
        batch, size = prepare_image(array, self.cfg, self.max_side)
        maps = self._forward(batch)
        return maps[0], size, array.shape[:2]

    def detect(self, image, levels: Sequence[str] | None = None, box_threshold: float | None = None) -> dict[str, list[Detection]]:
        """Per level (default: all the detector predicts), the detections of one image, highest score first.

        Args:
            image: numpy (H, W, 3) uint8 RGB or (H, W) gray, or a path, bytes or PIL image.
            levels: e.g. ["line"].
            box_threshold: overrides the config's minimum box score.

        Returns:
            `{level: [Detection(quad (4, 2) float32 in original pixels, score), ...]}`.
        """
        maps, size, image_size = self.maps(image)
        return detections_from_maps(maps, self.cfg, size, image_size, levels, box_threshold)

    __call__ = detect


class OnnxDetector(TextDetector):
    """A DB text detector running an exported `.onnx` file with onnxruntime; no torch needed.

    Args:
        path: the file written by `crnn_ocr.detect.export.export_detector`.
        threads: onnxruntime intra-op threads (0: its default, all cores).
        max_side: overrides the exported config's inference size limit.
        providers: onnxruntime execution providers (default CPU).

    >>> # det = OnnxDetector("detector.onnx", threads=1); det.detect(rgb)["line"][0].quad
    """

    def __init__(self, path: str | Path, threads: int = 1, max_side: int | None = None, providers: list[str] | None = None):
        from crnn_ocr.recognize.onnx import open_session  # torch-free; one clear error for a non-ONNX file

        self.path = Path(path)
        self.session = open_session(self.path, threads, providers)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        cfg = config_from_metadata(self.metadata, str(self.path))
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise CheckpointError(f"{self.path}: expected one (B, C, H, W) input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.output_name = OUTPUT_NAME if any(o.name == OUTPUT_NAME for o in outputs) else outputs[0].name
        super().__init__(self._run, cfg, max_side)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]

    def __repr__(self) -> str:
        return f"OnnxDetector({str(self.path)!r}, arch={self.cfg.arch}, levels={','.join(self.cfg.levels)})"
