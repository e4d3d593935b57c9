"""Reading at scale on existing engines. `crnn_ocr.bulk.ray_data`: OCR over a Ray cluster with Ray Data (the `ray`
extra: `pip install 'crnn_ocr[ray]'`). Importing this package needs no engine; each engine's module imports it
where it is used.
"""
