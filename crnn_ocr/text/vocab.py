"""Vocabulary (blank = 0), CTC label encoding, and every decoder (greedy, prefix beam, lexicon) in numpy.

The torch predictor and the ONNX runtime both decode through this module, so there is one copy of each rule.

>>> import numpy as np
>>> v = Vocab("ab")
>>> logp = np.log(np.array([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]]))
>>> greedy_decode(logp, v).text
'ab'
"""

from __future__ import annotations

import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from crnn_ocr.errors import UnknownCharacterError, VocabError
from crnn_ocr.text.metrics import levenshtein

BLANK = 0

LATIN_SYMBOLS = "€£¥¢°©®§¶±×÷µ·•–—‘’“”…«»¿¡"
LATIN_LETTERS = "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝßàáâãäåæçèéêëìíîïñòóôõöøùúûüýÿŒœ"
PRINTABLE_ASCII = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
DEFAULT_CHARSET = PRINTABLE_ASCII + LATIN_SYMBOLS + LATIN_LETTERS
# Latin Extended-A in current use (not ŉ, ĸ, ſ), the Latin-1 letters DEFAULT_CHARSET lacks, Romanian's comma-below
# letters and the low and single guillemet quotes of Central European languages.
LATIN_EXTENDED = ("".join(chr(c) for c in range(0x100, 0x180) if chr(c) not in "ŉĸſŒœ")
                  + "ÐðÞþªº" + "ȘșȚț" + "„‚‹›")
LATIN_CHARSET = DEFAULT_CHARSET + LATIN_EXTENDED
CHARSETS = {"default": DEFAULT_CHARSET, "latin": LATIN_CHARSET}


def named_charset(name: str) -> str | None:
    """The characters of a named charset (`default`: the shipped model's 181; `latin`: all of Latin script in
    current use, 318), or None when `name` names none."""
    return CHARSETS.get(name)


@dataclass
class CharInfo:
    """One recognised character: its confidence, the output frames [start, end) it occupies and, once placed
    on an image, its horizontal pixel range [x0, x1) in that image."""

    char: str
    confidence: float
    start: int
    end: int
    x0: float | None = None
    x1: float | None = None


@dataclass
class Prediction:
    """Text read from one image, its confidence, and where each character sits.

    `frames` is the number of output columns the decoder saw; a character's pixel x-range in the model input
    is `[start, end) * input_width / frames`.
    """

    text: str
    confidence: float
    chars: list[CharInfo] = field(default_factory=list)
    frames: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Vocab:
    """An ordered character set; character i of `chars` has class index i + 1, class 0 is the CTC blank.

    Args:
        chars: the characters, each once.
        fold_case: when encoding, a character missing from the vocabulary is replaced by its other case if
            that one is present (useful for lower-case-only models trained on mixed-case labels).

    >>> v = Vocab("abc", fold_case=True)
    >>> v.encode("CAB")
    [3, 1, 2]
    """

    def __init__(self, chars: str, *, fold_case: bool = False):
        chars = unicodedata.normalize("NFC", chars)
        if not chars:
            raise VocabError("vocabulary is empty")
        seen: set[str] = set()
        duplicates = sorted({c for c in chars if c in seen or seen.add(c)})  # type: ignore[func-returns-value]
        if duplicates:
            raise VocabError(f"vocabulary repeats characters: {''.join(duplicates)!r}")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in chars):
            raise VocabError("vocabulary holds control characters")
        self.chars = chars
        self.fold_case = fold_case
        self._index = {c: i + 1 for i, c in enumerate(chars)}

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Vocab:
        """Read a vocabulary file: one character per line (space as a line holding one space), or one line."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")  # -sig: a BOM is not a character
        except (OSError, UnicodeDecodeError) as e:
            raise VocabError(f"cannot read vocabulary file {path}: {e}") from e
        lines = unicodedata.normalize("NFC", text).split("\n")  # NFC first: a decomposed é is one character
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) == 1:
            return cls(lines[0], **kwargs)
        if all(len(line) == 1 for line in lines):
            return cls("".join(lines), **kwargs)
        raise VocabError(f"{path}: expected one character per line, or all characters on one line")

    @classmethod
    def from_texts(cls, texts: Iterable[str], **kwargs) -> Vocab:
        """The sorted set of characters used by `texts`."""
        chars = sorted({c for t in texts for c in unicodedata.normalize("NFC", t)})
        return cls("".join(chars), **kwargs)

    @classmethod
    def default(cls) -> Vocab:
        """Latin letters, digits, punctuation, space and common symbols: the shipped model's vocabulary."""
        return cls(DEFAULT_CHARSET)

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} chars)"

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def index(self, char: str) -> int | None:
        idx = self._index.get(char)
        if idx is None and self.fold_case:
            idx = self._index.get(char.swapcase())
        return idx

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` the vocabulary cannot encode, in order of appearance."""
        text = unicodedata.normalize("NFC", text)
        return list(dict.fromkeys(c for c in text if self.index(c) is None))

    def encode(self, text: str) -> list[int]:
        """Class indices of `text`; raises UnknownCharacterError naming every character it cannot encode."""
        text = unicodedata.normalize("NFC", text)
        ids = [self.index(c) for c in text]
        if None in ids:
            raise UnknownCharacterError(text, self.unknown(text))
        return ids  # type: ignore[return-value]

    def normalize(self, text: str) -> str:
        """`text` as the vocabulary would read it back: NFC, case folded where needed. Raises on unknowns."""
        return "".join(self.chars[i - 1] for i in self.encode(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Characters of class indices as they are (no CTC collapsing); the blank is dropped."""
        return "".join(self.chars[i - 1] for i in ids if i != BLANK)


def required_frames(ids: Sequence[int]) -> int:
    """The fewest CTC output frames that can emit `ids`: one per label, plus a blank between repeats."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float32)
    shifted = logits - logits.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def path_to_prediction(path: np.ndarray, logp: np.ndarray, vocab: Vocab) -> Prediction:
    """Collapse a frame-level path (class per frame) into text with per-character confidence and span."""
    chars: list[CharInfo] = []
    prev = BLANK
    frame_probs = np.exp(logp[np.arange(len(path)), path])
    for t, cls in enumerate(path):
        cls = int(cls)
        if cls != BLANK:
            if cls != prev:
                chars.append(CharInfo(vocab.chars[cls - 1], float(frame_probs[t]), t, t + 1))
            else:
                chars[-1].end = t + 1
                chars[-1].confidence = max(chars[-1].confidence, float(frame_probs[t]))
        prev = cls
    if chars:
        confidence = chars_confidence(chars)
    elif len(path):
        confidence = float(np.exp(np.mean(logp[:, BLANK])))
    else:
        confidence = 0.0
    return Prediction("".join(c.char for c in chars), confidence, chars, len(path))


def chars_confidence(chars: Sequence[CharInfo]) -> float:
    """A reading's confidence: the geometric mean of its characters' (0 for none)."""
    if not chars:
        return 0.0
    return float(np.exp(np.mean(np.log(np.maximum([c.confidence for c in chars], 1e-12)))))


def greedy_decode(logp: np.ndarray, vocab: Vocab) -> Prediction:
    """Best path decoding: the most likely class per frame, repeats merged, blanks dropped.

    Args:
        logp: (T, K) log-probabilities (or logits: the argmax is the same, confidences are not).
    """
    return path_to_prediction(np.argmax(logp, axis=1), logp, vocab)


def _extended(label: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Blank-interleaved label and, per position, whether the skip transition from s-2 is allowed."""
    ext = np.zeros(2 * len(label) + 1, dtype=np.int64)
    ext[1::2] = label
    skip = np.zeros(len(ext), dtype=bool)
    skip[2:] = (ext[2:] != BLANK) & (ext[2:] != ext[:-2])
    return ext, skip


def _shifted(scores: np.ndarray, k: int) -> np.ndarray:
    """scores moved k positions right, -inf filled in; same length (so a one-state lattice stays one state)."""
    out = np.full(len(scores), -np.inf)
    if k < len(scores):
        out[k:] = scores[: len(scores) - k]
    return out


def ctc_log_likelihood(logp: np.ndarray, label: Sequence[int]) -> float:
    """log P(label | frames) summed over all CTC alignments (the forward algorithm)."""
    return float(ctc_log_likelihoods(logp, [label])[0])


def ctc_log_likelihoods(logp: np.ndarray, labels: Sequence[Sequence[int]]) -> np.ndarray:
    """`ctc_log_likelihood` of many labels over the same frames at once (one forward pass, labels padded)."""
    T, M = len(logp), len(labels)
    out = np.full(M, -np.inf)
    if M == 0:
        return out
    lengths = np.array([len(label) for label in labels])
    fits = np.array([required_frames(label) <= T for label in labels])
    if T == 0:
        return np.where(fits, 0.0, -np.inf)  # only the empty label fits, certainly
    S = 2 * int(lengths.max()) + 1
    ext = np.zeros((M, S), dtype=np.int64)
    skip = np.zeros((M, S), dtype=bool)
    for m, label in enumerate(labels):
        e, k = _extended(label)
        ext[m, : len(e)], skip[m, : len(e)] = e, k
    emit = np.where(np.arange(S) < (2 * lengths + 1)[:, None], logp[:, ext], -np.inf)  # (T, M, S)
    alpha = np.full((M, S), -np.inf)
    alpha[:, :2] = emit[0, :, :2]
    for t in range(1, T):
        step = np.full((M, S), -np.inf)
        step[:, 1:] = alpha[:, :-1]
        jump = np.full((M, S), -np.inf)
        jump[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, step), jump) + emit[t]
    rows = np.arange(M)
    last = alpha[rows, 2 * lengths]
    before_last = np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], -np.inf)
    return np.where(fits, np.logaddexp(last, before_last), -np.inf)


def viterbi_align(logp: np.ndarray, label: Sequence[int]) -> np.ndarray | None:
    """The most likely frame-level path that collapses to `label`, or None if the label cannot fit."""
    T = len(logp)
    if required_frames(label) > T:
        return None
    if T == 0:
        return np.empty(0, dtype=np.int64)
    ext, skip = _extended(label)
    S = len(ext)
    score = np.full(S, -np.inf)
    score[0] = logp[0, BLANK]
    if S > 1:
        score[1] = logp[0, ext[1]]
    back = np.zeros((T, S), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, T):
        candidates = np.stack(
            [
                score,
                _shifted(score, 1),
                np.where(skip, _shifted(score, 2), -np.inf),
            ]
        )
        back[t] = np.argmax(candidates, axis=0)
        score = candidates[back[t], np.arange(S)] + logp[t, ext]
    s = S - 1 if S == 1 or score[-1] >= score[-2] else S - 2
    path = np.empty(T, dtype=np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = ext[s]
        s -= int(back[t, s])  # int(): numpy 2 would keep int8 and overflow past 127 states
    return path


def beam_decode(
    logp: np.ndarray, vocab: Vocab, beam_width: int = 10, prune: float | None = 1e-4
) -> Prediction:
    """CTC prefix beam search; the winning label's best alignment gives confidences and spans.

    Args:
        logp: (T, K) log-probabilities.
        beam_width: prefixes kept after each frame.
        prune: characters below this probability at a frame are not extended (None: consider all).
    """
    if beam_width < 1:
        raise ValueError("beam_width must be at least 1")
    logp = np.asarray(logp, dtype=np.float64)
    neg_inf = -np.inf
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, neg_inf)}  # prefix -> (log p blank-end, non-blank-end)
    log_prune = np.log(prune) if prune else None
    for t in range(len(logp)):
        row = logp[t]
        if log_prune is None:
            candidates = range(1, len(row))
        else:
            candidates = [int(c) for c in np.nonzero(row > log_prune)[0] if c != BLANK]
        nxt: defaultdict[tuple[int, ...], list[float]] = defaultdict(lambda: [neg_inf, neg_inf])
        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            entry = nxt[prefix]
            entry[0] = np.logaddexp(entry[0], total + row[BLANK])
            last = prefix[-1] if prefix else None
            for c in candidates:
                extended = nxt[prefix + (c,)]
                if c == last:
                    extended[1] = np.logaddexp(extended[1], pb + row[c])
                    entry[1] = np.logaddexp(entry[1], pnb + row[c])
                else:
                    extended[1] = np.logaddexp(extended[1], total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: np.logaddexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    best = max(beams.items(), key=lambda kv: np.logaddexp(*kv[1]))[0] if beams else ()
    return aligned_prediction(logp, list(best), vocab)


def aligned_prediction(logp: np.ndarray, label: list[int], vocab: Vocab) -> Prediction:
    """`label` read from `logp` along its best alignment (no characters if it cannot fit)."""
    path = viterbi_align(logp, label)
    if path is None:
        return Prediction(vocab.decode(label), 0.0, [], len(logp))
    return path_to_prediction(path, logp, vocab)


class BKTree:
    """Burkhard-Keller tree over edit distance: finds lexicon words near a string without scanning them all."""

    def __init__(self, words: Iterable[str]):
        self.root: tuple[str, dict] | None = None
        for w in words:
            self.add(w)

    def add(self, word: str) -> None:
        if self.root is None:
            self.root = (word, {})
            return
        node = self.root
        while True:
            d = levenshtein(word, node[0])
            if d == 0:
                return
            child = node[1].get(d)
            if child is None:
                node[1][d] = (word, {})
                return
            node = child

    def search(self, word: str, max_distance: int) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        stack = [self.root] if self.root else []
        while stack:
            node = stack.pop()
            d = levenshtein(word, node[0])
            if d <= max_distance:
                found.append((d, node[0]))
            for k, child in node[1].items():
                if d - max_distance <= k <= d + max_distance:
                    stack.append(child)
        return sorted(found)


class LexiconDecoder:
    """Lexicon-constrained decoding as in the CRNN paper: the lexicon word with the highest CTC likelihood.

    Candidates are the words within `max_distance` edits of the greedy reading (a BK-tree search); if there
    are none, or none of them fits in the frames, every word is scored. Words with characters the vocabulary
    lacks can never be read and are left out (`skipped` counts them).

    >>> import numpy as np
    >>> v = Vocab("abc")
    >>> logp = np.log(np.full((4, 4), 0.25))
    >>> LexiconDecoder(["ab", "cab"], v).decode(logp).text in {"ab", "cab"}
    True
    """

    def __init__(self, words: Iterable[str], vocab: Vocab, max_distance: int = 3):
        self.vocab = vocab
        self.max_distance = max_distance
        self.encoded: dict[str, list[int]] = {}
        self.skipped = 0
        for word in words:
            word = unicodedata.normalize("NFC", word.strip().lstrip("\ufeff"))  # a BOM may open a word list
            if not word or word in self.encoded:
                continue
            if vocab.unknown(word):
                self.skipped += 1
                continue
            self.encoded[word] = vocab.encode(word)
        if not self.encoded:
            raise VocabError("lexicon has no word the vocabulary can encode")
        self.tree = BKTree(self.encoded)

    @classmethod
    def from_file(cls, path: str | Path, vocab: Vocab, **kwargs) -> LexiconDecoder:
        try:
            words = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise VocabError(f"cannot read lexicon {path}: {e}") from e
        return cls(words, vocab, **kwargs)

    def decode(self, logp: np.ndarray) -> Prediction:
        logp = np.asarray(logp, dtype=np.float64)
        greedy = greedy_decode(logp, self.vocab).text
        candidates = [w for _, w in self.tree.search(greedy, self.max_distance)]
        scored = [(ctc_log_likelihood(logp, self.encoded[w]), w) for w in candidates]
        if not scored or max(s for s, _ in scored) == -np.inf:  # no near word fits in the frames: score them all
            scored = [(ctc_log_likelihood(logp, ids), w) for w, ids in self.encoded.items()]
        best_score, best = max(scored, key=lambda s: s[0])
        if best_score == -np.inf:
            return Prediction("", 0.0, [], len(logp))
        return aligned_prediction(logp, self.encoded[best], self.vocab)


class Decoder:
    """Decodes batches of model output with one configured rule; used by the torch and ONNX paths alike.

    Args:
        vocab: the model's vocabulary.
        method: "greedy" or "beam".
        beam_width: for "beam".
        lexicon: if given, lexicon-constrained decoding replaces `method`.
        dictionary: if given (a `crnn_ocr.text.dictionary.Dictionary`), misread words of the reading are corrected.
    """

    def __init__(
        self, vocab: Vocab, method: str = "greedy", beam_width: int = 10, lexicon: LexiconDecoder | None = None,
        dictionary=None,
    ):
        if method not in ("greedy", "beam"):
            raise ValueError(f"unknown decoder {method!r}: use greedy or beam")
        self.vocab, self.method, self.beam_width, self.lexicon = vocab, method, beam_width, lexicon
        self.dictionary = dictionary

    def decode_one(self, logp: np.ndarray) -> Prediction:
        if self.lexicon is not None:
            return self.lexicon.decode(logp)
        if self.method == "beam":
            reading = beam_decode(logp, self.vocab, self.beam_width)
        else:
            reading = greedy_decode(logp, self.vocab)
        return reading if self.dictionary is None else self.dictionary.correct(logp, reading)

    def decode_batch(self, logits: np.ndarray, lengths: Sequence[int] | None = None) -> list[Prediction]:
        """Decode (B, T, K) logits; `lengths[i]` frames of item i are real, the rest is padding."""
        logp = log_softmax(logits)
        out = []
        for i in range(len(logp)):
            n = len(logp[i]) if lengths is None else max(1, min(int(lengths[i]), logp.shape[1]))
            out.append(self.decode_one(logp[i, :n]))
        return out
