"""crnn_ocr: CRNN text recognition that trains on a CPU and ships as one ONNX file.

>>> from crnn_ocr import Vocab
>>> Vocab("ab").encode("ba")
[2, 1]
"""

from __future__ import annotations

from crnn_ocr.errors import OcrError
from crnn_ocr.text.vocab import Prediction, Vocab

__version__ = "0.1.0"
__all__ = ["OcrError", "Prediction", "Vocab", "__version__"]
