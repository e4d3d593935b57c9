"""Word lists shipped with the package: the renderer's corpus and the dictionaries of `ocr recognize --dictionary`."""
