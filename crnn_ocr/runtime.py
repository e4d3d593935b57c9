"""Everything needed to run exported models without torch: `OnnxRecognizer`, the page verifier.

Apps and `ocr recognize` import from here; nothing reachable from this module imports torch (tested).

>>> # from crnn_ocr.runtime import OnnxRecognizer
>>> # OnnxRecognizer("weights/crnn_default.onnx", threads=1).recognize("word.png")[0].text
"""

from crnn_ocr.page.verifier import OnnxTextVerifier, load_verifier
from crnn_ocr.recognize.onnx import OnnxRecognizer, model_metadata, open_session

__all__ = ["OnnxRecognizer", "OnnxTextVerifier", "load_verifier", "model_metadata", "open_session"]
