"""Read the text in word or line images with nothing but an exported crnn_ocr `.onnx` file.

Needs only numpy, pillow and onnxruntime (no torch, no crnn_ocr). Every step follows MODEL_INTERFACE.md, so
this file is also the reference to copy when embedding the model from another language.

    python examples/read_text.py model.onnx word.png [more.png ...]
"""

import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def load(model_path, threads=1):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map  # everything needed to feed and decode the model
    if not meta.get("format", "").startswith("crnn_ocr.onnx/"):
        raise SystemExit(f"{model_path}: not a crnn_ocr model (no 'format' metadata)")
    return session, meta


def preprocess(path, meta):
    """Image file -> float32 (1, C, H, W) and the number of output frames that belong to it."""
    height, channels = int(meta["height"]), int(meta["channels"])
    mean, std, stride = float(meta["mean"]), float(meta["std"]), int(meta["width_stride"])
    image = ImageOps.exif_transpose(Image.open(path))
    if image.mode in ("RGBA", "LA", "P"):  # transparent parts become white
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    # Keep the aspect ratio at the model's height; clamp the width to [min_width, max_width].
    width = round(image.width * height / image.height)
    width = min(max(width, int(meta["min_width"])), int(meta["max_width"]))
    pixels = np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.float32)
    x = (pixels / 255.0 - mean) / std
    x = x[None] if channels == 1 else x.transpose(2, 0, 1)  # (H, W) or (H, W, C) -> (C, H, W)
    step = 32 if width <= 256 else 64 if width <= 1024 else 128  # pad to a width that depends on this image only
    padded = -(-width // step) * step
    if padded > int(meta["max_width"]):
        padded = -(-width // stride) * stride
    batch = np.empty((1, channels, height, padded), dtype=np.float32)
    batch[0, :, :, :width] = x
    batch[0, :, :, width:] = np.median(x, axis=(1, 2), keepdims=True)  # pad with the image's median gray
    return batch, -(-width // stride)


def greedy_decode(logits, frames, vocab, blank=0):
    """Best class per frame; merge repeats, drop blanks; class i (i >= 1) is vocab[i - 1]."""
    best = logits[:frames].argmax(axis=1)
    shifted = np.exp(logits[:frames] - logits[:frames].max(axis=1, keepdims=True))
    probs = (shifted / shifted.sum(axis=1, keepdims=True)).max(axis=1)
    text, confidences, previous = [], [], blank
    for cls, p in zip(best, probs):
        if cls != blank and cls != previous:
            text.append(vocab[cls - 1])
            confidences.append(p)
        elif cls != blank and confidences:
            confidences[-1] = max(confidences[-1], p)
        previous = cls
    confidence = float(np.exp(np.mean(np.log(confidences)))) if confidences else 0.0
    return "".join(text), confidence


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__.strip().splitlines()[-1].strip())
    session, meta = load(argv[0])
    for path in argv[1:]:
        batch, frames = preprocess(path, meta)
        logits = session.run(["logits"], {"images": batch})[0]  # (1, T, K)
        text, confidence = greedy_decode(logits[0], frames, meta["vocab"], int(meta["blank"]))
        print(f"{path}\t{text}\t{confidence:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
