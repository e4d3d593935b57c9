"""Export a detector checkpoint to one self-describing ONNX file, checked against torch, optionally int8.

The file has input `images` (B, C, H, W) with dynamic B, H and W (multiples of 32) and output `maps`
(B, L, H', W') probabilities (H' = H / output_stride), and `metadata_props` carrying the `DetectorConfig`
(format "crnn_ocr.detector.onnx/1"; see `crnn_ocr.detect.runtime.detector_metadata`), so
`crnn_ocr.detect.runtime.OnnxDetector` needs nothing else. The parity check runs on the temporary file; only a
file that passes is renamed into place.

>>> # report = export_detector("runs/detector/best.pt", "detector.onnx", int8="static", calibration="../shared/train/scenes/funsd_train")
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_ocr.detect.config import DetectorConfig
from crnn_ocr.detect.nets import DetectorMaps, load_detector
from crnn_ocr.detect.runtime import INPUT_NAME, OUTPUT_NAME, OnnxDetector, detector_metadata, prepare_image
from crnn_ocr.errors import ExportError
from crnn_ocr.files import atomic_path
from crnn_ocr.recognize.onnx import open_session

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |probability difference| accepted between torch and onnxruntime (fp32)
PARITY_SIZES = ((96, 160), (256, 224), (320, 480))  # (H, W): none equal to the export example's shape


def _set_metadata(path: Path, cfg: DetectorConfig) -> None:
    import onnx

    from crnn_ocr import __version__

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in detector_metadata(cfg).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.producer_version = "crnn_ocr", __version__
    proto.doc_string = (f"crnn_ocr DB text detector ({cfg.arch}). Input images (B,{cfg.channels},H,W) float32 normalised, "
                        f"H and W multiples of 32; output maps (B,{cfg.num_levels},H/{cfg.output_stride},W/{cfg.output_stride}) "
                        f"text-kernel probabilities, channels {', '.join(cfg.levels)}; see metadata_props.")
    onnx.save(proto, str(path))


def detector_parity(model: nn.Module, cfg: DetectorConfig, onnx_path: str | Path,
                    sizes: Sequence[tuple[int, int]] = PARITY_SIZES, batches: Sequence[int] = (1, 2), seed: int = 0,
                    reference: str | Path | None = None) -> dict[str, Any]:
    """Compare onnxruntime with torch (or with another ONNX file, `reference`) on random inputs.

    Returns:
        Per case (batch, H, W) the max absolute probability difference; the max over cases; and the share of
        pixels on the same side of the binarisation threshold.
    """
    session = open_session(onnx_path, threads=1)
    ref_session = open_session(reference, threads=1) if reference is not None else None
    wrapper = DetectorMaps(model.float().cpu().eval()).eval()
    rng = np.random.default_rng(seed)
    cases, agree, total = [], 0, 0
    for h, w in sizes:
        for batch in batches:
            pixels = rng.integers(0, 256, size=(batch, h, w, cfg.channels), dtype=np.uint8)
            x = np.stack([prepare_image(p if cfg.channels == 3 else p[..., 0], cfg, max(h, w))[0][0] for p in pixels])
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            if ref_session is not None:
                want = ref_session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            else:
                with torch.inference_mode():
                    want = wrapper(torch.from_numpy(x)).numpy()
            if got.shape != want.shape:
                raise ExportError(f"{onnx_path}: output shape {got.shape} != reference {want.shape} at {batch}x{h}x{w}")
            cases.append({"batch": batch, "height": h, "width": w, "max_abs_diff": float(np.abs(got - want).max())})
            t = cfg.binarize_threshold
            agree += int(((got > t) == (want > t)).sum())
            total += got.size
    return {"cases": cases, "max_abs_diff": max(c["max_abs_diff"] for c in cases), "binary_agreement": agree / max(total, 1)}


def export_detector_model(model: nn.Module, cfg: DetectorConfig, out_path: str | Path, opset: int = DEFAULT_OPSET,
                          check: bool = True, tolerance: float = PARITY_TOLERANCE) -> dict[str, Any]:
    """Write `model` as ONNX (dynamic batch, height, width; the crnn_ocr detector metadata); with `check`, run the
    ONNX checker and compare with torch before the file is renamed into place (ExportError past `tolerance`).

    Uses torch's TorchScript-based exporter (`dynamo=False`): offline, and every resampling in the network is a
    fixed scale factor, so no shape is specialised to the example.
    """
    import onnx

    out_path = Path(out_path)
    wrapper = DetectorMaps(model.float().cpu().eval()).eval()
    example = torch.zeros(2, cfg.channels, 128, 192)  # batch 2, non-square: nothing may specialise to it
    report: dict[str, Any] = {"onnx": str(out_path), "arch": cfg.arch, "opset": opset}
    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter; the parity check is the real test
            try:
                torch.onnx.export(
                    wrapper, (example,), str(tmp), dynamo=False, opset_version=opset, do_constant_folding=True,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                  OUTPUT_NAME: {0: "batch", 2: "map_height", 3: "map_width"}})
            except TypeError as e:
                raise ExportError(f"this torch ({torch.__version__}) cannot export with dynamo=False: {e}") from e
            except Exception as e:  # noqa: BLE001  - the exporter raises many types; one line for the user
                raise ExportError(f"ONNX export of {cfg.arch} failed: {str(e).strip().splitlines()[0][:300]}") from e
        _set_metadata(tmp, cfg)
        if check:
            try:
                onnx.checker.check_model(str(tmp), full_check=True)
            except Exception as e:  # noqa: BLE001  - ValidationError and friends
                raise ExportError(f"{out_path}: ONNX checker failed: {str(e).strip().splitlines()[0][:300]}") from e
            report["checker"] = "passed"
            report["parity"] = detector_parity(model, cfg, tmp)
            if report["parity"]["max_abs_diff"] > tolerance:
                raise ExportError(f"{out_path}: onnxruntime differs from torch by {report['parity']['max_abs_diff']:.2e} "
                                  f"(tolerance {tolerance:.0e}); nothing written")
    report["size_bytes"] = out_path.stat().st_size
    return report


def _calibration_batches(cfg: DetectorConfig, calibration: str | Path | Sequence[np.ndarray] | None, samples: int,
                         max_side: int) -> list[np.ndarray]:
    """Network inputs for static quantization: images of a labels.jsonl folder, arrays, or (None) random noise."""
    if calibration is None:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, size=(320, 320, 3), dtype=np.uint8) for _ in range(samples)]
    elif isinstance(calibration, (str, Path)):
        from crnn_ocr.detect.labels import read_rgb, read_scene_labels

        scenes = read_scene_labels(calibration)
        step = max(1, len(scenes) // samples)
        images = [read_rgb(s.path) for s in scenes[::step][:samples]]
    else:
        images = list(calibration)[:samples]
    out = []
    for image in images:
        if cfg.channels == 1 and image.ndim == 3:
            image = image.mean(axis=2).astype(np.uint8)
        elif cfg.channels == 3 and image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        out.append(prepare_image(image, cfg, max_side)[0])
    return out


def quantize_detector(fp32_path: str | Path, out_path: str | Path, mode: str = "static",
                      calibration: str | Path | Sequence[np.ndarray] | None = None, samples: int = 16,
                      max_side: int = 640) -> dict[str, Any]:
    """int8 copy of an exported detector, with its parity against the fp32 file.

    Args:
        fp32_path: the exported fp32 `.onnx`.
        out_path: where the int8 model goes (written atomically; metadata copied).
        mode: "static" (QDQ, per-channel int8 weights and uint8 activations calibrated on `calibration`; what
            convolutional nets need) or "dynamic" (weights only, activations quantised on the fly: ConvInteger).
        calibration: a labels.jsonl folder or a list of uint8 images (static only); None: random noise (a smoke
            test, not a calibration).
        samples: calibration images used.
        max_side: calibration images are resized as inference would, with this long-side limit.

    Returns:
        {"onnx", "mode", "size_bytes", "max_abs_diff_vs_fp32", "binary_agreement_vs_fp32"}.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    cfg = OnnxDetector(fp32_path).cfg
    if mode not in ("static", "dynamic"):
        raise ExportError(f"quantization mode must be static or dynamic, not {mode!r}")
    logging.disable(logging.WARNING)  # the quantizer's advice about pre-processing
    try:
        with atomic_path(out_path) as tmp:
            if mode == "dynamic":
                quantize_dynamic(str(fp32_path), str(tmp), weight_type=QuantType.QInt8, reduce_range=True)
            else:
                batches = _calibration_batches(cfg, calibration, samples, max_side)

                class Reader(CalibrationDataReader):
                    def __init__(self):
                        self.items = iter(batches)

                    def get_next(self):
                        batch = next(self.items, None)
                        return None if batch is None else {INPUT_NAME: batch}

                quantize_static(str(fp32_path), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
            _set_metadata(tmp, cfg)  # the quantizer does not promise to keep metadata_props
            q = _onnx_parity(cfg, tmp, fp32_path)
    finally:
        logging.disable(logging.NOTSET)
    OnnxDetector(out_path)  # loads, metadata intact
    return {"onnx": str(out_path), "mode": mode, "size_bytes": out_path.stat().st_size,
            "max_abs_diff_vs_fp32": q["max_abs_diff"], "binary_agreement_vs_fp32": q["binary_agreement"]}


def _onnx_parity(cfg: DetectorConfig, path: Path, reference: Path) -> dict[str, Any]:
    """Two ONNX files compared on random inputs (no torch model needed)."""
    a, b = open_session(path, threads=1), open_session(reference, threads=1)
    rng = np.random.default_rng(1)
    diffs, agree, total = [], 0, 0
    for h, w in PARITY_SIZES:
        x = prepare_image(rng.integers(0, 256, size=(h, w, cfg.channels), dtype=np.uint8).squeeze(), cfg, max(h, w))[0]
        got, want = a.run([OUTPUT_NAME], {INPUT_NAME: x})[0], b.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        diffs.append(float(np.abs(got - want).max()))
        agree += int(((got > cfg.binarize_threshold) == (want > cfg.binarize_threshold)).sum())
        total += got.size
    return {"max_abs_diff": max(diffs), "binary_agreement": agree / max(total, 1)}


def export_detector(checkpoint: str | Path, out_path: str | Path, opset: int = DEFAULT_OPSET, check: bool = True,
                    tolerance: float = PARITY_TOLERANCE, int8: str | None = None,
                    calibration: str | Path | None = None, max_side: int | None = None) -> dict[str, Any]:
    """Export a detector checkpoint to ONNX; with `int8` ("static" or "dynamic") also write `<out>.int8.onnx`.

    Args:
        checkpoint: a detector `.pt` (best.pt or last.pt of a run).
        out_path: the `.onnx` file to write.
        opset: ONNX opset.
        check: ONNX checker and torch parity on several shapes and batch sizes before the file is put in place.
        tolerance: the largest probability difference accepted.
        int8: also write a quantized copy and report how much it changes the maps.
        calibration: a labels.jsonl folder for static quantization.
        max_side: stored as the exported model's inference size limit (default: the checkpoint's).

    Returns:
        A JSON-ready report: paths, sizes, parity, int8 figures.
    """
    import dataclasses

    model, cfg = load_detector(checkpoint)
    if max_side:
        cfg = dataclasses.replace(cfg, max_side=max_side)
    report = export_detector_model(model, cfg, out_path, opset, check, tolerance)
    report["checkpoint"] = str(checkpoint)
    if int8:
        int8_path = Path(out_path).with_name(Path(out_path).stem + ".int8.onnx")
        report["int8"] = quantize_detector(out_path, int8_path, int8, calibration)
    return report
