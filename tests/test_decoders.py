"""CTC decoders (greedy, prefix beam, lexicon, forward algorithm, Viterbi) against brute force; text metrics."""

from __future__ import annotations

import itertools
import math
import string
from collections import defaultdict

import numpy as np
import pytest

import crnn_ocr.text.vocab as vocab_module
from crnn_ocr.errors import VocabError
from crnn_ocr.text.metrics import PROTOCOLS, TextScores, alignment_pairs, levenshtein, normalize_scene
from crnn_ocr.text.vocab import (
    BLANK,
    BKTree,
    Decoder,
    LexiconDecoder,
    Vocab,
    beam_decode,
    ctc_log_likelihood,
    greedy_decode,
    log_softmax,
    required_frames,
    viterbi_align,
)

# ---------------------------------------------------------------- helpers


def collapse(path) -> tuple[int, ...]:
    """CTC many-to-one map: merge repeats, then drop blanks."""
    out = []
    prev = None
    for c in path:
        if c != prev and c != BLANK:
            out.append(int(c))
        prev = c
    return tuple(out)


def brute_force(probs: np.ndarray) -> tuple[dict[tuple[int, ...], float], dict[tuple[int, ...], float]]:
    """By enumerating all K^T frame paths: P(label) for every label, and its best single path's probability."""
    T, K = probs.shape
    totals: dict[tuple[int, ...], float] = defaultdict(float)
    best: dict[tuple[int, ...], float] = defaultdict(float)
    for path in itertools.product(range(K), repeat=T):
        p = float(np.prod(probs[np.arange(T), path]))
        label = collapse(path)
        totals[label] += p
        best[label] = max(best[label], p)
    return totals, best


def random_probs(rng: np.random.Generator, T: int, K: int, sharp: float = 1.0) -> np.ndarray:
    logits = rng.normal(size=(T, K)) * sharp
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def frames(vocab: Vocab, spec: list[tuple[str, float]]) -> np.ndarray:
    """(T, K) log-probabilities: frame t puts probability p on class spec[t][0] ('' = blank), the rest spread evenly."""
    K = vocab.num_classes
    rows = []
    for ch, p in spec:
        cls = BLANK if ch == "" else vocab.index(ch)
        row = np.full(K, (1.0 - p) / (K - 1))
        row[cls] = p
        rows.append(row)
    return np.log(np.array(rows))


def spell(vocab: Vocab, text: str, p: float = 0.9) -> np.ndarray:
    """Frames that read `text`: each character, then a blank."""
    spec: list[tuple[str, float]] = []
    for c in text:
        spec += [(c, p), ("", p)]
    return frames(vocab, spec)


# ---------------------------------------------------------------- greedy


def test_greedy_merges_repeats_drops_blanks_and_reports_spans():
    v = Vocab("ab")
    logp = frames(v, [("a", 0.9), ("a", 0.6), ("", 0.8), ("a", 0.7), ("b", 0.8), ("b", 0.95), ("", 0.9)])
    pred = greedy_decode(logp, v)
    assert pred.text == "aab"
    assert pred.frames == 7
    assert [(c.char, c.start, c.end) for c in pred.chars] == [("a", 0, 2), ("a", 3, 4), ("b", 4, 6)]
    assert [c.confidence for c in pred.chars] == pytest.approx([0.9, 0.7, 0.95])
    assert pred.confidence == pytest.approx((0.9 * 0.7 * 0.95) ** (1 / 3))
    d = pred.to_dict()
    assert d["text"] == "aab" and len(d["chars"]) == 3 and d["chars"][0]["char"] == "a"


def test_greedy_all_blank_is_empty_text():
    v = Vocab("ab")
    logp = frames(v, [("", 0.8), ("", 0.5)])
    pred = greedy_decode(logp, v)
    assert pred.text == "" and pred.chars == []
    assert pred.confidence == pytest.approx(math.sqrt(0.8 * 0.5))


def test_greedy_is_argmax_collapse_on_random_input():
    rng = np.random.default_rng(0)
    v = Vocab("abcde")
    for _ in range(20):
        logp = np.log(random_probs(rng, 12, 6))
        pred = greedy_decode(logp, v)
        assert pred.text == v.decode(collapse(np.argmax(logp, axis=1)))
        for c in pred.chars:
            assert 0 <= c.start < c.end <= 12
            assert 0 < c.confidence <= 1
        starts = [c.start for c in pred.chars]
        assert starts == sorted(starts)


# ---------------------------------------------------------------- forward algorithm, Viterbi, beam vs brute force


@pytest.mark.parametrize("seed", range(12))
def test_ctc_log_likelihood_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    T, K = int(rng.integers(1, 6)), int(rng.integers(2, 5))
    probs = random_probs(rng, T, K)
    totals, _ = brute_force(probs)
    assert sum(totals.values()) == pytest.approx(1.0)
    logp = np.log(probs)
    for label, p in totals.items():
        assert ctc_log_likelihood(logp, list(label)) == pytest.approx(math.log(p), rel=1e-6, abs=1e-9)
    # A label that cannot fit in T frames has probability 0.
    too_long = [1] * (T + 1)
    assert ctc_log_likelihood(logp, too_long) == -np.inf
    # A label that fits but no path produces (e.g. repeats needing separating blanks) is absent from totals.
    for length in range(T + 1):
        for label in itertools.product(range(1, K), repeat=length):
            if label not in totals:
                assert required_frames(label) > T


@pytest.mark.parametrize("seed", range(12))
def test_viterbi_align_collapses_to_label_and_is_the_best_path(seed):
    rng = np.random.default_rng(100 + seed)
    T, K = int(rng.integers(1, 6)), int(rng.integers(2, 5))
    probs = random_probs(rng, T, K)
    logp = np.log(probs)
    _, best = brute_force(probs)
    labels = [lab for n in range(T + 1) for lab in itertools.product(range(1, K), repeat=n) if required_frames(lab) <= T]
    for label in labels:
        path = viterbi_align(logp, list(label))
        assert path is not None and len(path) == T
        assert collapse(path) == label
        score = float(np.prod(probs[np.arange(T), path]))
        assert score == pytest.approx(best[label], rel=1e-6)
    assert viterbi_align(logp, [1] * (T + 1)) is None


@pytest.mark.parametrize("seed", range(25))
def test_prefix_beam_search_finds_the_most_probable_label(seed):
    rng = np.random.default_rng(1000 + seed)
    T, K = int(rng.integers(1, 6)), int(rng.integers(2, 5))
    probs = random_probs(rng, T, K, sharp=float(rng.choice([0.5, 1.0, 2.0])))
    v = Vocab("abc"[: K - 1])
    totals, _ = brute_force(probs)
    best_label, best_p = max(totals.items(), key=lambda kv: kv[1])
    logp = np.log(probs)
    pred = beam_decode(logp, v, beam_width=1000, prune=None)
    assert pred.text == v.decode(best_label)
    label = v.encode(pred.text)
    assert math.exp(ctc_log_likelihood(logp, label)) == pytest.approx(best_p, rel=1e-6)
    # Its characters come from the label's best alignment.
    assert "".join(c.char for c in pred.chars) == pred.text
    assert pred.frames == T


def test_long_labels_align_and_decode():
    # More than 127 lattice states (labels over 63 characters): the back-pointers must not overflow.
    rng = np.random.default_rng(5)
    v = Vocab("abcdefgh")
    text = "".join(rng.choice(list("abcdefgh"), size=150))
    logp = spell(v, text)
    label = v.encode(text)
    path = viterbi_align(logp, label)
    assert path is not None and collapse(path) == tuple(label)
    assert beam_decode(logp, v, beam_width=3).text == text
    assert LexiconDecoder([text, text[:-1]], v).decode(logp).text == text
    assert np.isfinite(ctc_log_likelihood(logp, label))


def test_beam_can_beat_greedy():
    # Classic case: the best path is blank,blank but "a" has more total probability.
    v = Vocab("a")
    probs = np.array([[0.6, 0.4], [0.6, 0.4]])
    logp = np.log(probs)
    assert greedy_decode(logp, v).text == ""
    pred = beam_decode(logp, v, beam_width=4, prune=None)
    assert pred.text == "a"  # P(a) = 0.4*0.4 + 2*0.6*0.4 = 0.64 > P('') = 0.36
    assert pred.confidence > 0


def test_wide_beam_never_worse_than_greedy_on_random_input():
    # (A narrow beam may lose the greedy label; a wide one, with the default pruning, should not.)
    rng = np.random.default_rng(7)
    v = Vocab("abcd")
    for _ in range(10):
        logp = np.log(random_probs(rng, 10, 5, sharp=2.0))
        greedy = greedy_decode(logp, v).text
        beam = beam_decode(logp, v, beam_width=256).text
        assert ctc_log_likelihood(logp, v.encode(beam)) >= ctc_log_likelihood(logp, v.encode(greedy)) - 1e-9


def test_beam_width_must_be_positive():
    v = Vocab("ab")
    with pytest.raises(ValueError):
        beam_decode(np.log(np.full((3, 3), 1 / 3)), v, beam_width=0)


def test_decoders_accept_zero_frames():
    v = Vocab("ab")
    logp = np.zeros((0, 3))
    assert greedy_decode(logp, v).text == ""
    assert beam_decode(logp, v).text == ""
    assert ctc_log_likelihood(logp, []) == 0.0
    assert ctc_log_likelihood(logp, [1]) == -np.inf
    assert viterbi_align(logp, [1]) is None


# ---------------------------------------------------------------- lexicon


def test_lexicon_corrects_a_misreading():
    v = Vocab(string.ascii_lowercase)
    logp = spell(v, "hellp")
    logp[-2] = frames(v, [("o", 0.45)])[0]  # the last letter: 'o' is almost as likely as 'p'
    logp[-2, v.index("p")] = np.log(0.5)
    assert greedy_decode(logp, v).text == "hellp"
    lex = LexiconDecoder(["world", "hello", "help", "yellow"], v)
    pred = lex.decode(logp)
    assert pred.text == "hello"
    assert len(pred.chars) == 5 and pred.confidence > 0


def test_lexicon_large_uses_bk_tree_and_scores_few_words(monkeypatch):
    v = Vocab(string.ascii_lowercase)
    rng = np.random.default_rng(0)
    words = {"".join(rng.choice(list(string.ascii_lowercase), size=int(rng.integers(6, 11)))) for _ in range(1500)}
    words.discard("receipt")
    words |= {"receipt", "recipe", "deceit"}
    lex = LexiconDecoder(sorted(words), v)
    assert lex.tree.root is not None
    scored: list[list[int]] = []
    real = vocab_module.ctc_log_likelihood

    def counting(logp, label):
        scored.append(list(label))
        return real(logp, label)

    monkeypatch.setattr(vocab_module, "ctc_log_likelihood", counting)
    logp = spell(v, "receipt")
    logp[10] = frames(v, [("s", 0.6)])[0]  # greedy reads "receipt" with one wrong letter
    assert greedy_decode(logp, v).text == "receist"
    pred = lex.decode(logp)
    assert pred.text == "receipt"
    assert 0 < len(scored) < len(lex.encoded) // 10  # only the BK-tree neighbours were scored
    assert v.encode("receipt") in scored


def test_bk_tree_search_matches_linear_scan():
    rng = np.random.default_rng(1)
    words = ["".join(rng.choice(list("abcd"), size=int(rng.integers(1, 7)))) for _ in range(300)]
    tree = BKTree(words)
    for query in ["abc", "dddd", "a", "bacdab", ""]:
        for k in (0, 1, 2):
            expected = sorted({(levenshtein(query, w), w) for w in words if levenshtein(query, w) <= k})
            assert tree.search(query, k) == expected
    assert BKTree([]).search("abc", 3) == []


def test_lexicon_scores_every_word_when_none_is_near():
    v = Vocab("abcxyz")
    logp = spell(v, "xyzxyz")
    lex = LexiconDecoder(["ab", "xyzxy", "c"], v, max_distance=0)
    assert lex.decode(logp).text == "xyzxy"


def test_lexicon_falls_back_when_near_words_cannot_fit():
    # Greedy reads 8 letters in 8 frames; the only near word has 9 letters and cannot fit, another word can.
    v = Vocab("abcdefghiwxyz")
    logp = frames(v, [(c, 0.9) for c in "abcdefgh"])
    assert greedy_decode(logp, v).text == "abcdefgh"
    lex = LexiconDecoder(["abcdefghi", "wxyz"], v, max_distance=1)
    pred = lex.decode(logp)
    assert pred.text == "wxyz"


def test_lexicon_empty_when_no_word_fits():
    v = Vocab("ab")
    logp = spell(v, "a")[:1]
    pred = LexiconDecoder(["aa", "abab"], v).decode(logp)
    assert pred.text == "" and pred.confidence == 0.0


def test_lexicon_skips_and_counts_words_outside_the_vocab(tmp_path):
    v = Vocab("abc")
    lex = LexiconDecoder(["abc", "abX", "  cab  ", "", "Ωa", "abc", "ba"], v)
    assert lex.skipped == 2
    assert set(lex.encoded) == {"abc", "cab", "ba"}
    assert lex.encoded["cab"] == [3, 1, 2]
    with pytest.raises(VocabError):
        LexiconDecoder(["xyz", "q"], v)
    p = tmp_path / "words.txt"
    p.write_text("cab\nzzz\nabc\n", encoding="utf-8")
    lex = LexiconDecoder.from_file(p, v)
    assert set(lex.encoded) == {"cab", "abc"} and lex.skipped == 1
    with pytest.raises(VocabError):
        LexiconDecoder.from_file(tmp_path / "missing.txt", v)
    p.write_bytes("\ufeffcab\nabc\n".encode())  # saved with a byte order mark
    lex = LexiconDecoder.from_file(p, v)
    assert set(lex.encoded) == {"cab", "abc"} and lex.skipped == 0


def test_lexicon_output_always_a_lexicon_word_on_random_input():
    rng = np.random.default_rng(3)
    v = Vocab("abcde")
    words = ["ab", "bad", "cede", "decade", "ace", "e"]
    lex = LexiconDecoder(words, v)
    for _ in range(20):
        logp = np.log(random_probs(rng, int(rng.integers(6, 14)), 6))
        assert lex.decode(logp).text in words


# ---------------------------------------------------------------- Decoder (batches)


def test_decode_batch_honours_lengths():
    v = Vocab("abc")
    T = 8
    a = spell(v, "ab")  # 4 frames
    b = spell(v, "cab")  # 6 frames
    pad = frames(v, [("c", 0.99)] * T)
    logits = np.stack([np.concatenate([a, pad[: T - 4]]), np.concatenate([b, pad[: T - 6]])])
    dec = Decoder(v)
    assert [p.text for p in dec.decode_batch(logits)] == ["abc", "cabc"]
    preds = dec.decode_batch(logits, [4, 6])
    assert [p.text for p in preds] == ["ab", "cab"]
    assert [p.frames for p in preds] == [4, 6]
    # Over-long lengths are clipped, zero becomes one frame.
    preds = dec.decode_batch(logits, np.array([100, 0]))
    assert [p.frames for p in preds] == [T, 1]
    beam = Decoder(v, "beam", beam_width=5).decode_batch(logits, [4, 6])
    assert [p.text for p in beam] == ["ab", "cab"]
    lex = Decoder(v, lexicon=LexiconDecoder(["ab", "cab", "cabc"], v)).decode_batch(logits, [4, 6])
    assert [p.text for p in lex] == ["ab", "cab"]


def test_decode_batch_takes_raw_logits():
    v = Vocab("ab")
    logits = np.array([[[0.0, 5.0, 0.0], [3.0, 0.0, 0.0], [0.0, 0.0, 9.0]]], dtype=np.float32)
    pred = Decoder(v).decode_batch(logits)[0]
    assert pred.text == "ab"
    assert all(0 < c.confidence <= 1 for c in pred.chars)  # probabilities, not exp(logit)
    np.testing.assert_allclose(np.exp(log_softmax(logits)).sum(-1), 1.0, rtol=1e-5)


def test_decoder_rejects_unknown_method():
    with pytest.raises(ValueError, match="greedy or beam"):
        Decoder(Vocab("ab"), "viterbi")


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    "a, b, d",
    [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3), ("flaw", "lawn", 2), ("abc", "abc", 0),
     ("abc", "acb", 2), ("intention", "execution", 5)],
)
def test_levenshtein(a, b, d):
    assert levenshtein(a, b) == d
    assert levenshtein(b, a) == d
    assert levenshtein(list(a), list(b)) == d


def test_alignment_pairs_reconstruct_both_strings():
    for truth, pred in [("hello", "hallo"), ("abc", ""), ("", "xy"), ("kitten", "sitting"), ("receipt", "recipe")]:
        pairs = alignment_pairs(truth, pred)
        assert "".join(t for t, _ in pairs) == truth
        assert "".join(p for _, p in pairs) == pred
        assert sum(t != p for t, p in pairs) == levenshtein(truth, pred)


def test_text_scores():
    s = TextScores(keep_errors=True)
    s.extend([("hello", "hallo"), ("a", "a"), ("abc", ""), ("xy", "xy")])
    assert s.count == 4 and s.correct == 2
    assert s.accuracy == 0.5
    assert s.edits == 4 and s.truth_chars == 11
    assert s.cer == pytest.approx(4 / 11)
    assert s.worst(1) == [("abc", "", 3)]
    assert len(s.errors) == 2
    assert s.confusions[("e", "a")] == 1
    assert s.confusions[("a", "")] == 1
    empty = TextScores()
    assert empty.accuracy == 0.0 and empty.cer == 0.0
    quiet = TextScores()
    quiet.add("ab", "b")
    assert quiet.errors == [] and not quiet.confusions


def test_scene_protocol():
    assert normalize_scene("Hello, World! 42") == "helloworld42"
    assert normalize_scene("COFFEE-Shop's") == "coffeeshops"
    assert normalize_scene("Café") == "caf"
    assert normalize_scene("") == ""
    assert PROTOCOLS["scene"]("A-b C") == "abc"
    assert PROTOCOLS["upper"]("  total   due ") == "TOTAL DUE"
    assert PROTOCOLS["nocase"]("Total  Due") == "total due"
    assert PROTOCOLS["exact"]("cafe\u0301") == "café"
    s = TextScores()
    s.add(normalize_scene("Hello!"), normalize_scene("hello"))
    assert s.accuracy == 1.0
