"""Write a checkpoint whose weights are the mean of the given checkpoints' (checkpoint averaging).

    python data/recipes/average_checkpoints.py OUT.pt CKPT.pt [CKPT.pt ...]
"""

import sys

from crnn_ocr.errors import OcrError
from crnn_ocr.models.checkpoint import average_checkpoints, save_checkpoint

if len(sys.argv) < 3:
    sys.exit(__doc__.strip().splitlines()[-1].strip())
try:
    model, cfg, vocab = average_checkpoints(sys.argv[2:])
    save_checkpoint(sys.argv[1], model, cfg, vocab)
except OcrError as e:
    sys.exit(f"error: {e}")
print(f"wrote {sys.argv[1]}: mean of {len(sys.argv) - 2} checkpoints")
