"""Whole images: find the text lines of pages, receipts and screenshots, and read them in order.

Line finding (`find_lines`, `is_single_line`) is numpy + OpenCV only, so the torch-free ONNX runtime can use
it; `read_page` works with any `crnn_ocr.recognize.base.TextRecognizer`.

>>> # from crnn_ocr.page import read_page
>>> # print(read_page(recognizer, "receipt.jpg").to_text())
"""

from crnn_ocr.page.command import format_result, recognize_page_cli
from crnn_ocr.page.lines import LineBox, TextFilter, crop_line, estimate_skew, find_lines, is_single_line, is_stack_of_lines
from crnn_ocr.page.reading import (
    LAYOUTS,
    OUTPUT_FORMATS,
    CharResult,
    LineResult,
    PageResult,
    WordResult,
    hocr_document,
    merge_chunks,
    plan_chunks,
    read_page,
    read_pages,
)

__all__ = [
    "LAYOUTS", "OUTPUT_FORMATS", "CharResult", "LineBox", "LineResult", "PageResult", "TextFilter", "WordResult",
    "crop_line", "estimate_skew", "find_lines", "format_result", "hocr_document", "is_single_line", "is_stack_of_lines", "merge_chunks",
    "plan_chunks", "read_page", "read_pages", "recognize_page_cli",
]
