"""Export a checkpoint to one self-describing ONNX file, check it against torch, and optionally quantize it.

The `.onnx` file has input `images` (B, C, H, W) with dynamic B and W, output `logits` (B, T, K) with dynamic B
and T, and `metadata_props` holding the vocabulary, input geometry, normalisation, blank index and
architecture (see `crnn_ocr.runtime.model_metadata`), so `crnn_ocr.runtime.OnnxRecognizer` (or any app) needs
nothing else.

>>> # report = export_onnx("runs/x/best.pt", "model.onnx", int8=True); report["parity"]["max_abs_diff"]
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crnn_ocr.config import ModelConfig
from crnn_ocr.errors import ExportError
from crnn_ocr.files import atomic_path
from crnn_ocr.models.checkpoint import load_model
from crnn_ocr.recognize.onnx import INPUT_NAME, OUTPUT_NAME, OnnxRecognizer, model_metadata, open_session
from crnn_ocr.text.vocab import Vocab

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4  # max |logit difference| accepted between torch and onnxruntime (fp32)
# A rectifier samples its input at points the network computes: on the random-noise parity inputs, float rounding of
# a sampling point moves a sample between pixels that differ by up to the whole pixel range.
RECTIFIED_PARITY_TOLERANCE = 1e-3


def _parity_widths(cfg: ModelConfig) -> tuple[int, ...]:
    """Three widths inside the model's range: narrow, typical word, long line (multiples of the stride)."""
    s = cfg.width_stride
    wanted = (max(cfg.min_width, 2 * cfg.height), 5 * cfg.height, 16 * cfg.height)
    out = []
    for w in wanted:
        w = min(max(w, cfg.min_width), cfg.max_width)
        out.append(int(-(-w // s) * s))
    return tuple(dict.fromkeys(out))


def export_model(model: nn.Module, cfg: ModelConfig, vocab: Vocab, out_path: str | Path,
                 opset: int = DEFAULT_OPSET) -> Path:
    """Write `model` as ONNX with dynamic batch and width and the crnn_ocr metadata; returns the path.

    Uses torch's TorchScript-based exporter (`dynamo=False`), which works offline without onnxscript and
    gives exact dynamic shapes for this model family (fixed-size height collapse, LSTM without h0 inputs).
    """
    import onnx

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    # A batch of 2 and a width off the parity widths: nothing may be specialised to the example's shape.
    example = torch.zeros(2, cfg.channels, cfg.height, 12 * cfg.width_stride)
    with atomic_path(out_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter; the parity check is the real test
            try:
                torch.onnx.export(
                    model, (example,), str(tmp), dynamo=False, opset_version=opset, do_constant_folding=True,
                    input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                    dynamic_axes={INPUT_NAME: {0: "batch", 3: "width"}, OUTPUT_NAME: {0: "batch", 1: "frames"}},
                )
            except TypeError as e:  # a torch without the TorchScript exporter
                raise ExportError(f"this torch ({torch.__version__}) cannot export with dynamo=False: {e}") from e
            except Exception as e:  # noqa: BLE001  - the exporter raises many types; one line for the user
                raise ExportError(f"ONNX export of {cfg.arch} failed: {str(e).strip().splitlines()[0][:300]}") from e
        proto = onnx.load(str(tmp))
        del proto.metadata_props[:]
        for key, value in model_metadata(cfg, vocab).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name = "crnn_ocr"
        from crnn_ocr import __version__

        proto.producer_version = __version__
        proto.doc_string = (f"crnn_ocr CRNN text recogniser ({cfg.arch}). Input images (B,{cfg.channels},{cfg.height},W) "
                            "float32, output logits (B,T,K), CTC blank = class 0; see metadata_props.")
        onnx.save(proto, str(tmp))
    return out_path


def check_model(path: str | Path) -> None:
    """Run the ONNX checker (full check, with shape inference); ExportError if it fails."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:  # noqa: BLE001  - ValidationError and friends
        raise ExportError(f"{path}: ONNX checker failed: {str(e).strip().splitlines()[0][:300]}") from e


def parity(model: nn.Module, cfg: ModelConfig, onnx_path: str | Path, widths: Sequence[int] | None = None,
           batches: Sequence[int] = (1, 3), seed: int = 0, reference: str | Path | None = None) -> dict[str, Any]:
    """Compare onnxruntime with torch (or with another ONNX file, `reference`) on random inputs.

    Returns the max absolute logit difference per (batch, width) case, over all cases, and the share of
    frames where the greedy class (argmax) agrees.
    """
    session = open_session(onnx_path, threads=1)
    ref_session = open_session(reference, threads=1) if reference is not None else None
    rng = np.random.default_rng(seed)
    cases = []
    agree = total = 0
    model = model.float().cpu().eval()
    for width in widths or _parity_widths(cfg):
        for batch in batches:
            # normalised pixels lie in [(0 - mean)/std, (1 - mean)/std]
            lo, hi = (0 - cfg.mean) / cfg.std, (1 - cfg.mean) / cfg.std
            x = rng.uniform(lo, hi, size=(batch, cfg.channels, cfg.height, width)).astype(np.float32)
            got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            if ref_session is not None:
                want = ref_session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
            else:
                with torch.inference_mode():
                    want = model(torch.from_numpy(x)).numpy()
            if got.shape != want.shape:
                raise ExportError(f"{onnx_path}: output shape {got.shape} != torch {want.shape} at batch {batch}, width {width}")
            diff = float(np.abs(got - want).max())
            cases.append({"batch": batch, "width": width, "frames": int(got.shape[1]), "max_abs_diff": diff})
            agree += int((got.argmax(-1) == want.argmax(-1)).sum())
            total += got.shape[0] * got.shape[1]
    return {
        "cases": cases,
        "max_abs_diff": max(c["max_abs_diff"] for c in cases),
        "argmax_agreement": agree / max(total, 1),
    }


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    """Dynamic int8 quantization of the LSTM and MatMul/Gemm weights (convs stay fp32: ConvInteger is slow on
    CPU and the CNN is a small share of the weights); activations are quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = Path(int8_path)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)  # the quantizer logs advice about static-quantization pre-processing
    try:
        quantize_dynamic(str(fp32_path), str(int8_path), op_types_to_quantize=["LSTM", "MatMul", "Gemm"],
                         weight_type=QuantType.QInt8, per_channel=False, reduce_range=True)
    finally:
        logging.disable(logging.NOTSET)
    return int8_path


def score(onnx_path: str | Path, data: str | Path, limit: int = 0, threads: int = 1) -> dict[str, Any]:
    """Word accuracy and CER of an exported model on a labelled dataset (any layout `open_source` reads)."""
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.train.evaluate import dataset_name, evaluate_source

    rec = OnnxRecognizer(onnx_path, threads=threads, batch_size=64)
    result = evaluate_source(rec, open_source(data), "auto", limit, name=dataset_name(data))
    return {k: result[k] for k in ("name", "samples", "accuracy", "cer", "protocol", "protocol_accuracy", "protocol_cer")}


def export_onnx(checkpoint_path: str | Path, out_path: str | Path, opset: int = DEFAULT_OPSET, int8: bool = False,
                check: bool = True, data: str | Path | None = None, limit: int = 0,
                tolerance: float | None = None) -> dict[str, Any]:
    """Export a checkpoint to ONNX, check it, and (with `int8`) write `<out>.int8.onnx` beside it.

    Args:
        checkpoint_path: a `.pt` checkpoint.
        out_path: the `.onnx` file to write.
        opset: ONNX opset.
        int8: also write a dynamically quantized model and report how much it changes.
        check: run the ONNX checker and compare with torch on several widths and batch sizes; ExportError if
            the largest logit difference exceeds `tolerance` (default: PARITY_TOLERANCE, or
            RECTIFIED_PARITY_TOLERANCE for a model with a rectifier).
        data: a labelled dataset to score the exported model on; with `int8` the quantized model is scored too
            and the accuracy change reported.
        limit: score only the first `limit` samples of `data` (0: all).

    Returns:
        A JSON-ready report: paths, sizes in bytes, parity cases and max difference, and int8 figures.

    >>> # export_onnx("best.pt", "model.onnx", int8=True, data="../shared/eval/iiit5k_test")["int8"]["accuracy_change"]
    """
    model, cfg, vocab = load_model(checkpoint_path)
    if tolerance is None:
        tolerance = RECTIFIED_PARITY_TOLERANCE if cfg.rectify else PARITY_TOLERANCE
    final = Path(out_path)
    final_int8 = final.with_name(final.stem + ".int8.onnx")
    # Everything is written and checked under temporary names first: a failed check, a kill or a full disk
    # leaves the previous export untouched, and both files appear together.
    staged = final.with_name(f".{final.stem}.partial-{os.getpid()}.onnx")
    staged_int8 = final.with_name(f".{final.stem}.partial-{os.getpid()}.int8.onnx")
    try:
        export_model(model, cfg, vocab, staged, opset)
        report: dict[str, Any] = {"checkpoint": str(checkpoint_path), "onnx": str(final), "arch": cfg.arch,
                                  "opset": opset, "size_bytes": staged.stat().st_size, "vocab_size": len(vocab)}
        if check:
            check_model(staged)
            report["checker"] = "passed"
            report["parity"] = {**parity(model, cfg, staged), "tolerance": tolerance}
            if report["parity"]["max_abs_diff"] > tolerance:
                raise ExportError(f"{final}: onnxruntime differs from torch by {report['parity']['max_abs_diff']:.2e} "
                                  f"(tolerance {tolerance:.0e}); nothing written")
        if int8:
            quantize_int8(staged, staged_int8)
            OnnxRecognizer(staged_int8)  # the metadata survived quantization and the file loads
            q = parity(model, cfg, staged_int8, reference=staged)
            report["int8"] = {"onnx": str(final_int8), "size_bytes": staged_int8.stat().st_size,
                              "max_abs_diff_vs_fp32": q["max_abs_diff"], "argmax_agreement_vs_fp32": q["argmax_agreement"]}
        if data is not None:
            report["score"] = score(staged, data, limit)
            if int8:
                fp32_score, int8_score = report["score"], score(staged_int8, data, limit)
                report["int8"].update({
                    "data": str(data), "score": int8_score,
                    "accuracy_change": int8_score["protocol_accuracy"] - fp32_score["protocol_accuracy"],
                    "cer_change": int8_score["protocol_cer"] - fp32_score["protocol_cer"],
                })
        os.replace(staged, final)
        if int8:
            os.replace(staged_int8, final_int8)
    finally:
        staged.unlink(missing_ok=True)
        staged_int8.unlink(missing_ok=True)
    return report
