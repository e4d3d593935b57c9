from crnn_ocr.cli import run

run()
