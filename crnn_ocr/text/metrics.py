"""Text metrics shared by evaluation, training and benchmarks (numpy-free, torch-free)."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1).

    >>> levenshtein("kitten", "sitting")
    3
    """
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def alignment_pairs(truth: str, pred: str) -> list[tuple[str, str]]:
    """Character pairs (truth, prediction) of a minimal edit script; '' marks an insertion or deletion."""
    n, m = len(truth), len(pred)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(
                cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (truth[i - 1] != pred[j - 1])
            )
    pairs: list[tuple[str, str]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]):
            pairs.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((truth[i - 1], ""))
            i -= 1
        else:
            pairs.append(("", pred[j - 1]))
            j -= 1
    return pairs[::-1]


_NON_ALNUM = re.compile(r"[^0-9a-z]")
_SPACES = re.compile(r"\s+")


def normalize_scene(text: str) -> str:
    """The scene-text protocol of the literature: lower-case, keep only [0-9a-z]."""
    return _NON_ALNUM.sub("", text.lower())


def normalize_upper_spaces(text: str) -> str:
    """SROIE protocol: upper-case both sides, collapse runs of spaces."""
    return _SPACES.sub(" ", text.upper()).strip()


def normalize_case_insensitive(text: str) -> str:
    return _SPACES.sub(" ", text.lower()).strip()


def normalize_exact(text: str) -> str:
    return unicodedata.normalize("NFC", text)


PROTOCOLS = {
    "exact": normalize_exact,
    "scene": normalize_scene,
    "upper": normalize_upper_spaces,
    "nocase": normalize_case_insensitive,
}


@dataclass
class TextScores:
    """Accumulates word (string) accuracy and character error rate over pairs of strings.

    >>> s = TextScores(); s.add("hello", "hallo"); s.add("a", "a")
    >>> round(s.accuracy, 2), round(s.cer, 3)
    (0.5, 0.167)
    """

    count: int = 0
    correct: int = 0
    edits: int = 0
    truth_chars: int = 0
    errors: list[tuple[str, str, int]] = field(default_factory=list)
    confusions: Counter = field(default_factory=Counter)
    keep_errors: bool = False

    def add(self, truth: str, pred: str) -> None:
        self.count += 1
        distance = levenshtein(truth, pred)
        self.edits += distance
        self.truth_chars += len(truth)
        if distance == 0:
            self.correct += 1
        elif self.keep_errors:
            self.errors.append((truth, pred, distance))
            for t, p in alignment_pairs(truth, pred):
                if t != p:
                    self.confusions[(t, p)] += 1

    def extend(self, pairs: Iterable[tuple[str, str]]) -> None:
        for truth, pred in pairs:
            self.add(truth, pred)

    @property
    def accuracy(self) -> float:
        return self.correct / self.count if self.count else 0.0

    @property
    def cer(self) -> float:
        return self.edits / max(self.truth_chars, 1)

    def worst(self, n: int = 10) -> list[tuple[str, str, int]]:
        return sorted(self.errors, key=lambda e: (-e[2], e[0]))[:n]
