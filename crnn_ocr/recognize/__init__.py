"""Recognisers: one loop (`base.TextRecognizer`) and one backend per module: `onnx` (no torch), `torch_backend`."""
