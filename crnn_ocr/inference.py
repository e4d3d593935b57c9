"""The recognition loop shared by the torch predictor and the ONNX runtime (torch-free).

Read -> resize -> group by padded width -> pad -> run the network -> decode -> place characters on the image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from crnn_ocr.config import ModelConfig
from crnn_ocr.dictionary import Dictionary, load_dictionary
from crnn_ocr.imageio import ImageInput, read_image
from crnn_ocr.preprocess import bucket_groups, make_batch, output_lengths, resize_to_height
from crnn_ocr.vocab import Decoder, LexiconDecoder, Prediction, Vocab

ForwardFn = Callable[[np.ndarray], np.ndarray]


class TextRecognizer:
    """Reads text from word or line images with a model given as `forward(batch) -> logits`.

    Subclasses supply `forward`; this class owns everything around it, so both backends behave the same.
    """

    def __init__(self, forward: ForwardFn, cfg: ModelConfig, vocab: Vocab, batch_size: int = 32):
        self.forward = forward
        self.cfg = cfg
        self.vocab = vocab
        self.batch_size = batch_size
        self.decoder = Decoder(vocab)

    def set_decoder(self, method: str = "greedy", beam_width: int = 10, lexicon: Iterable[str] | None = None,
                    lexicon_max_distance: int = 3, dictionary: str | Path | Dictionary | None = None) -> None:
        """Choose greedy or beam decoding, or constrain the output to the words of `lexicon`; `dictionary` (a
        shipped language code such as "en", a word-list file, or a Dictionary) corrects misread words."""
        lex = LexiconDecoder(lexicon, self.vocab, lexicon_max_distance) if lexicon is not None else None
        words = dictionary
        if dictionary is not None and not isinstance(dictionary, Dictionary):
            words = load_dictionary(dictionary, self.vocab)
        self.decoder = Decoder(self.vocab, method, beam_width, lex, words)

    def read(self, source: ImageInput) -> np.ndarray:
        return read_image(source, channels=self.cfg.channels)

    def recognize(self, images: ImageInput | Sequence[ImageInput]) -> list[Prediction]:
        """Read the text of each image (path, bytes, PIL image or uint8 array); one Prediction per image.

        >>> # rec = Recognizer.from_checkpoint("weights/crnn_default.pt"); rec.recognize(["word.png"])[0].text
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        return self.recognize_arrays([self.read(im) for im in images])

    def recognize_arrays(self, arrays: Sequence[np.ndarray]) -> list[Prediction]:
        """Like `recognize`, for images already read by `crnn_ocr.imageio.read_image`."""
        resized = [resize_to_height(a, self.cfg) for a in arrays]
        widths = [r.shape[1] for r in resized]
        results: list[Prediction | None] = [None] * len(arrays)
        for bucket, group in bucket_groups(widths, self.batch_size, self.cfg):
            batch, batch_widths = make_batch([resized[i] for i in group], self.cfg, resized=True, width=bucket)
            logits = np.asarray(self.forward(batch))
            predictions = self.decoder.decode_batch(logits, output_lengths(batch_widths, self.cfg))
            pixels_per_frame = batch.shape[3] / logits.shape[1]
            for i, prediction in zip(group, predictions):
                place_characters(prediction, pixels_per_frame * arrays[i].shape[1] / widths[i], arrays[i].shape[1])
                results[i] = prediction
        return results  # type: ignore[return-value]


def place_characters(prediction: Prediction, pixels_per_frame: float, image_width: int) -> None:
    """Set each character's x-range in the original image from its CTC frames."""
    for c in prediction.chars:
        c.x0 = round(min(c.start * pixels_per_frame, image_width), 1)
        c.x1 = round(min(c.end * pixels_per_frame, image_width), 1)
