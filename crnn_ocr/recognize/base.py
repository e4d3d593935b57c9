"""The recognition loop shared by the torch predictor and the ONNX runtime (torch-free).

Read -> resize -> group by padded width -> pad -> run the network -> decode -> place characters on the image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from crnn_ocr.config import ModelConfig
from crnn_ocr.image.io import ImageInput, read_image
from crnn_ocr.image.preprocess import bucket_groups, make_batch, output_lengths, resize_to_height, stretch
from crnn_ocr.text.dictionary import Dictionary, load_dictionary
from crnn_ocr.text.vocab import Decoder, LexiconDecoder, Prediction, Vocab

ForwardFn = Callable[[np.ndarray], np.ndarray]
# Chosen on validation crops and document renders (README, "Read text"): 2.5 frames per character or fewer
# loses letters; reading such text again stretched to that density recovers most of them.
DENSE_CHARS_PER_FRAME = 0.4
MAX_STRETCH = 1.6


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
        self.dense_chars_per_frame: float | None = DENSE_CHARS_PER_FRAME
        self.max_stretch = MAX_STRETCH

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

        >>> # rec = TorchRecognizer.from_checkpoint("weights/crnn_default.pt"); rec.recognize(["word.png"])[0].text
        """
        if not isinstance(images, (list, tuple)):
            images = [images]
        return self.recognize_arrays([self.read(im) for im in images])

    def recognize_arrays(self, arrays: Sequence[np.ndarray]) -> list[Prediction]:
        """Like `recognize`, for images already read by `crnn_ocr.image.io.read_image`.

        A reading that packs more than `dense_chars_per_frame` characters into each output frame (small, tight
        print: thin letters and double letters get lost between frames) is read again from the image stretched
        to that density, at most `max_stretch` times as wide, and the second reading is kept.
        """
        resized = [resize_to_height(a, self.cfg) for a in arrays]
        results = self._read_resized(resized)
        if self.dense_chars_per_frame:
            dense = {i: density for i, (p, _) in enumerate(results)
                     if (density := len(p.text) / max(p.frames, 1)) > self.dense_chars_per_frame}
            for i in dense:
                resized[i] = stretch(resized[i], min(dense[i] / self.dense_chars_per_frame, self.max_stretch),
                                     self.cfg)
            for i, reread in zip(dense, self._read_resized([resized[i] for i in dense])):
                results[i] = reread
        for array, model_input, (prediction, pixels_per_frame) in zip(arrays, resized, results):
            place_characters(prediction, pixels_per_frame * array.shape[1] / model_input.shape[1], array.shape[1])
        return [prediction for prediction, _ in results]

    def _read_resized(self, resized: Sequence[np.ndarray]) -> list[tuple[Prediction, float]]:
        """Each resized image's reading, and the model-input pixels per output frame."""
        results: list[tuple[Prediction, float] | None] = [None] * len(resized)
        for bucket, group in bucket_groups([r.shape[1] for r in resized], self.batch_size, self.cfg):
            batch, batch_widths = make_batch([resized[i] for i in group], self.cfg, resized=True, width=bucket)
            logits = np.asarray(self.forward(batch))
            predictions = self.decoder.decode_batch(logits, output_lengths(batch_widths, self.cfg))
            for i, prediction in zip(group, predictions):
                results[i] = (prediction, batch.shape[3] / logits.shape[1])
        return results  # type: ignore[return-value]


def place_characters(prediction: Prediction, pixels_per_frame: float, image_width: int) -> None:
    """Set each character's x-range in the original image from its CTC frames."""
    for c in prediction.chars:
        c.x0 = round(min(c.start * pixels_per_frame, image_width), 1)
        c.x1 = round(min(c.end * pixels_per_frame, image_width), 1)
