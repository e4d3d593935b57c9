"""Dictionary correction: a word the model misread becomes the dictionary word it could just as well have read.

For each run of letters in a reading that is not a dictionary word, the dictionary words within one or two
edits (lower case, Capitalised or UPPER) are scored by their CTC likelihood over the run's own frames. The best
one replaces the run if its likelihood, plus a fixed bonus for being a word, beats the reading's. A reading the
frames support much better than any word (a name, a code) stays as it is. Runs touching a digit are parts of
codes and are left alone, and so are runs of up to four capitals in a reading that holds a digit (plates, IBANs,
serials: "YQN 474" would become "YON 474"). A dictionary word in an odd mix of cases ("maximUm", "oF") is scored against its
lower-case, Capitalised and UPPER spellings the same way. A full stop between words that goes on in lower case
becomes a comma where the frames nearly support one. numpy only: the ONNX runtime uses it too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from crnn_ocr.errors import UnknownCharacterError, VocabError
from crnn_ocr.text.vocab import (
    CharInfo,
    Prediction,
    Vocab,
    aligned_prediction,
    chars_confidence,
    ctc_log_likelihoods,
)

LETTER_RUN = re.compile(r"[^\W\d_]+")
DEFAULT_BONUS = 5.0
CODE_CAPITALS = 4  # a run of at most this many capitals in a reading with a digit is part of a code ("YQN 474");
                   # 4, not 3: IBAN groups (benchmarks/results/codes.md); costs 1 of 1000 SROIE training crops
# In running English text a comma before a lower-case word is about 26 times as common as a full stop
# (685 to 26 in /usr/share/common-licenses' GPL, LGPL, Apache, MPL, CC0 and Artistic texts): log(26) nats.
DEFAULT_COMMA_PRIOR = 3.3
FULL_STOP_BEFORE_LOWER = re.compile(r"(?<=[^\W\d_]{2})\.(?= [^\W\d_])")
ABBREVIATIONS = frozenset("""
al approx ca cf co dept dr ed eds eq etc fig figs inc jr ltd mr mrs ms no nos pp prof resp sr st vol vs viz
""".split())


class Dictionary:
    """Words a reading may be corrected to.

    Args:
        words: the word list (any case; only words of letters are kept, lower-cased).
        vocab: the model's vocabulary (words it cannot spell are left out).
        bonus: log-likelihood (nats) a word gets over a non-word; larger corrects more readily.
        min_letters: shorter runs are never corrected.
        comma_prior: log-likelihood (nats) a comma gets over a full stop before a lower-case word; 0: never.

    >>> from crnn_ocr.text.vocab import greedy_decode
    >>> v = Vocab("ehlo")
    >>> probs = np.full((6, 5), 0.01)
    >>> for t, c in enumerate("hell"): probs[t, v.index(c)] = 0.96
    >>> probs[3, v.index("l")], probs[3, 0], probs[4, v.index("l")], probs[5, v.index("o")] = 0.55, 0.41, 0.96, 0.96
    >>> reading = greedy_decode(np.log(probs), v)                 # the blank between the l's was missed
    >>> reading.text, Dictionary(["hello", "help"], v).correct(np.log(probs), reading).text
    ('helo', 'hello')
    """

    def __init__(self, words: Iterable[str], vocab: Vocab, bonus: float = DEFAULT_BONUS, min_letters: int = 3,
                 comma_prior: float = DEFAULT_COMMA_PRIOR):
        self.vocab, self.bonus, self.min_letters, self.comma_prior = vocab, bonus, min_letters, comma_prior
        known = {unicodedata.normalize("NFC", w.strip().lstrip("\ufeff")).lower() for w in words}
        known = {w for w in known if LETTER_RUN.fullmatch(w)}
        unspellable = set(vocab.unknown("".join({c for w in known for c in w})))
        if unspellable:
            known = {w for w in known if unspellable.isdisjoint(w)}
        if not known:
            raise VocabError("the dictionary has no word of letters the vocabulary can spell")
        self.known = known
        self.column = {c: i for i, c in enumerate(sorted({c for w in known for c in w}))}
        # one more column counts the letters of a query that no word has
        groups: dict[int, list[str]] = {}
        for w in sorted(known):
            groups.setdefault(len(w), []).append(w)
        self.by_length: dict[int, tuple[list[str], np.ndarray, np.ndarray]] = {}
        for length, group in groups.items():
            codes = np.array([[self.column[c] for c in w] for w in group], dtype=np.int32)
            self.by_length[length] = (group, codes, self._histograms(codes))

    def __len__(self) -> int:
        return len(self.known)

    def _histograms(self, codes: np.ndarray) -> np.ndarray:
        counts = np.zeros((len(codes), len(self.column) + 1), dtype=np.int16)
        rows = np.arange(len(codes))
        for position in range(codes.shape[1]):
            counts[rows, codes[:, position]] += 1
        return counts

    def near(self, word: str, max_edits: int) -> list[str]:
        """Dictionary words within `max_edits` insertions, deletions or substitutions of `word` (lower case)."""
        word = word.lower()
        query = np.array([self.column.get(c, len(self.column)) for c in word], dtype=np.int32)
        letters, query_counts = np.unique(query, return_counts=True)
        found = []
        for length in range(max(1, len(word) - max_edits), len(word) + max_edits + 1):
            if length not in self.by_length:
                continue
            group, codes, counts = self.by_length[length]
            shared = counts[:, letters]
            # letter-count distance (an edit changes it by 2 at most): the query's letters, plus the word's others
            distance = np.abs(shared - query_counts).sum(axis=1) + (length - shared.sum(axis=1))
            close = np.nonzero(distance <= 2 * max_edits)[0]
            if len(close):
                distances = edit_distances(query, codes[close])
                found += [group[i] for i in close[distances <= max_edits]]
        return found

    def correct(self, logp: np.ndarray, prediction: Prediction) -> Prediction:
        """`prediction` (decoded from `logp`, (T, K) log-probabilities) with misread words corrected."""
        chars = list(prediction.chars)
        text = "".join(c.char for c in chars)
        if text != prediction.text:
            return prediction
        changed = False
        has_digit = any(ch.isdigit() for ch in text)
        for run in reversed(list(LETTER_RUN.finditer(text))):
            a, b = run.span()
            token = run.group()
            known = token.lower() in self.known
            if known and token in spellings(token.lower()):
                continue
            if len(token) < (2 if known else self.min_letters):
                continue
            if (a > 0 and text[a - 1].isdigit()) or (b < len(text) and text[b].isdigit()):
                continue
            if len(token) <= CODE_CAPITALS and token.isupper() and has_digit:
                continue
            t0 = chars[a - 1].end if a > 0 else 0
            t1 = chars[b].start if b < len(chars) else len(logp)
            words = [token.lower()] if known else self.near(token, edit_budget(len(token)))
            replacement = self._best_word(logp[t0:t1], token, words)
            if replacement is not None:
                for c in replacement:
                    c.start, c.end = c.start + t0, c.end + t0
                chars[a:b] = replacement
                changed = True
        changed = self._commas_before_lower_case(logp, chars) or changed
        if not changed:
            return prediction
        return Prediction("".join(c.char for c in chars), chars_confidence(chars), chars, prediction.frames)

    def _commas_before_lower_case(self, logp: np.ndarray, chars: list[CharInfo]) -> bool:
        """Replace, in place, a full stop between words that goes on in lower case ("monsters. moonlighting") by
        a comma where the frames nearly support one: prose writes the comma far more often."""
        if self.comma_prior <= 0 or not {".", ","} <= set(self.vocab.chars):
            return False
        text = "".join(c.char for c in chars)
        changed = False
        for stop in FULL_STOP_BEFORE_LOWER.finditer(text):
            i = stop.start()
            word = text[text.rfind(" ", 0, i) + 1:i]
            if not text[i + 2].islower() or "." in word or word.lower().lstrip("([\"'“‘") in ABBREVIATIONS:
                continue
            t0, t1 = chars[i - 1].end, chars[i + 1].start
            labels = [self.vocab.encode(","), self.vocab.encode(".")]
            comma, full_stop = ctc_log_likelihoods(logp[t0:t1], labels)
            if comma + self.comma_prior > full_stop:
                replacement = aligned_prediction(logp[t0:t1], labels[0], self.vocab).chars[0]
                replacement.start, replacement.end = replacement.start + t0, replacement.end + t0
                chars[i] = replacement
                changed = True
        return changed

    def _best_word(self, window: np.ndarray, token: str, words: list[str]) -> list[CharInfo] | None:
        candidates, labels = [], []
        for word in words:
            for spelled in spellings(word):
                try:
                    labels.append(self.vocab.encode(spelled))
                except UnknownCharacterError:
                    continue
                candidates.append(spelled)
        if not candidates:
            return None
        labels.append(self.vocab.encode(token))
        scores = ctc_log_likelihoods(window, labels)
        best = int(np.argmax(scores[:-1]))
        if not scores[best] + self.bonus > scores[-1]:
            return None
        return aligned_prediction(window, labels[best], self.vocab).chars  # the best fits: its score is finite


def edit_budget(letters: int) -> int:
    """How many edits away a misread run of `letters` letters may be from the word it replaces."""
    return 1 if letters <= 4 else 2


def spellings(word: str) -> set[str]:
    """The ways running text writes a word: lower case, Capitalised, UPPER."""
    return {word, word.capitalize(), word.upper()}


def edit_distances(query: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Levenshtein distance from `query` (L,) to each row of `words` (N, M), all rows at once.

    >>> edit_distances(np.array([1, 2, 3]), np.array([[1, 2, 3], [1, 3, 3], [3, 2, 1]])).tolist()
    [0, 1, 2]
    """
    n, m = words.shape
    positions = np.arange(m + 1)
    previous = np.broadcast_to(positions, (n, m + 1))
    for i, q in enumerate(query, 1):
        through = np.minimum(previous[:, :-1] + (words != q), previous[:, 1:] + 1)  # substitute/match, or delete
        start = np.concatenate([np.full((n, 1), i), through - positions[1:]], axis=1)
        previous = positions + np.minimum.accumulate(start, axis=1)  # then any run of insertions
    return previous[:, m]


def load_dictionary(name_or_path: str | Path, vocab: Vocab, **kwargs) -> Dictionary:
    """A shipped word list by language code (`crnn_ocr.defaults.WORD_LIST_LANGUAGES`) or a word-list file."""
    from crnn_ocr.defaults import word_list

    path = word_list(str(name_or_path)) or Path(name_or_path)
    try:
        words = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise VocabError(f"cannot read dictionary {name_or_path}: {e}") from e
    return Dictionary(words, vocab, **kwargs)
