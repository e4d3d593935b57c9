"""The recipe's validation score (mean exact accuracy over the 400 val_ic15 and 400 val_iiit5k crops, as the training
loop measures it) without and with the dense-text re-read; the ship rules of stages 6-8 use it.
Usage (repository root): python data/recipes/valscore.py CHECKPOINT"""
import sys
from pathlib import Path

from crnn_ocr.datasets.sources import open_source
from crnn_ocr.recognize.torch_backend import TorchRecognizer
from crnn_ocr.train.evaluate import evaluate_source

rec = TorchRecognizer.from_checkpoint(sys.argv[1], batch_size=64)
for dense in (None, rec.dense_chars_per_frame):
    rec.dense_chars_per_frame = dense
    accs = [evaluate_source(rec, open_source(Path(f"data/recipes/{n}.tsv")), name=n)["accuracy"]
            for n in ("val_ic15", "val_iiit5k")]
    print(f"{sys.argv[1]} reread={dense}: {100 * sum(accs) / 2:.2f} ({', '.join(f'{100 * a:.2f}' for a in accs)})")
