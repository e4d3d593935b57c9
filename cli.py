from crnn_ocr.cli import main

main()
