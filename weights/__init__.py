"""The shipped default model (crnn_default.onnx / .pt) and its model card; see README.md here."""
