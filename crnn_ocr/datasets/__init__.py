"""Datasets of labelled text crops: readers by format (`sources`, `open_source`), the LMDB writer, tools
behind `ocr data` (create, inspect, split), augmentation and the synthetic renderer (`synth`)."""
