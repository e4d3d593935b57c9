"""Dictionary correction: candidate search, batched CTC scoring, and what it may and may not change."""

from __future__ import annotations

import string

import numpy as np
import pytest

from crnn_ocr.defaults import word_list
from crnn_ocr.errors import VocabError
from crnn_ocr.text.dictionary import Dictionary, edit_distances, load_dictionary
from crnn_ocr.text.metrics import levenshtein
from crnn_ocr.text.vocab import BLANK, Decoder, Vocab, ctc_log_likelihood, ctc_log_likelihoods, greedy_decode

VOCAB = Vocab(string.ascii_letters + string.digits + " -.")


def frames(text_per_frame: list[tuple[str, float]], vocab: Vocab = VOCAB) -> np.ndarray:
    """(T, K) log-probabilities: frame t gives probability p to its character ('' = blank), the rest share 1 - p."""
    rows = []
    for ch, p in text_per_frame:
        row = np.full(vocab.num_classes, (1 - p) / (vocab.num_classes - 1))
        row[BLANK if ch == "" else vocab.index(ch)] = p
        rows.append(row)
    return np.log(np.array(rows))


def spell(text: str, p: float = 0.95) -> list[tuple[str, float]]:
    out = []
    for c in text:
        out += [(c, p), ("", p)]
    return out


def test_edit_distances_match_levenshtein_on_random_words():
    rng = np.random.default_rng(0)
    for _ in range(50):
        query = rng.integers(0, 4, rng.integers(1, 7))
        words = rng.integers(0, 4, (30, int(rng.integers(1, 8))))
        expected = [levenshtein(list(query), list(w)) for w in words]
        assert edit_distances(query, words).tolist() == expected


def test_near_finds_exactly_the_words_within_the_edit_budget():
    rng = np.random.default_rng(1)
    words = sorted({"".join(rng.choice(list("abcde"), rng.integers(2, 8))) for _ in range(400)})
    dictionary = Dictionary(words, VOCAB)
    for query in ["abc", "bead", "cabbage", "eeee", "zz", "dacbe"]:
        for budget in (1, 2):
            expected = {w for w in words if levenshtein(query, w) <= budget}
            assert set(dictionary.near(query, budget)) == expected


def test_batched_ctc_equals_one_at_a_time_including_empty_and_too_long_labels():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(7, VOCAB.num_classes))
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    labels = [[], [1], [1, 1], [3, 4, 5], [2] * 4, [1, 2, 3, 4, 5, 6, 7, 8]]
    batched = ctc_log_likelihoods(logp, labels)
    np.testing.assert_allclose(batched, [ctc_log_likelihood(logp, label) for label in labels], rtol=1e-9)
    assert batched[-1] == -np.inf and np.isfinite(batched[:-1]).all()


def uncertain_line() -> np.ndarray:
    """'the hause 42' where the 'a' of 'hause' is nearly an 'o'."""
    spec = spell("the ") + spell("h") + [("a", 0.5)] + [("", 0.95)] + spell("use 42")
    logp = frames(spec)
    logp[2 * 5, VOCAB.index("o")] = np.log(0.45)
    return logp


def test_corrects_a_misread_word_inside_a_line_and_keeps_its_neighbours():
    logp = uncertain_line()
    reading = greedy_decode(logp, VOCAB)
    assert reading.text == "the hause 42"
    corrected = Dictionary(["the", "house", "mouse"], VOCAB).correct(logp, reading)
    assert corrected.text == "the house 42"
    assert [c.char for c in corrected.chars] == list("the house 42")
    starts = [c.start for c in corrected.chars]
    assert starts == sorted(starts) and all(c.end > c.start for c in corrected.chars)
    assert corrected.chars[-1].start == reading.chars[-1].start  # '2' keeps its frames
    assert 0 < corrected.confidence <= 1


def test_a_reading_the_frames_support_well_is_not_forced_into_a_word():
    logp = frames(spell("Zorblax", 0.99))
    reading = greedy_decode(logp, VOCAB)
    assert Dictionary(["zorbles", "sorbet"], VOCAB).correct(logp, reading).text == "Zorblax"
    assert Dictionary(["zorbles"], VOCAB, bonus=100.0).correct(logp, reading).text == "Zorbles"


def test_case_follows_the_frames_and_codes_next_to_digits_are_left_alone():
    logp = frames(spell("HOUSF"))
    logp[2 * 4, VOCAB.index("E")] = np.log(0.3)
    assert Dictionary(["house"], VOCAB).correct(logp, greedy_decode(logp, VOCAB)).text == "HOUSE"
    code = frames(spell("HOUSF7"))
    code[2 * 4, VOCAB.index("E")] = np.log(0.3)
    assert Dictionary(["house"], VOCAB).correct(code, greedy_decode(code, VOCAB)).text == "HOUSF7"


def test_short_capital_runs_of_a_reading_with_digits_are_code_parts():
    plate = frames(spell("YQN 474"))
    plate[2 * 1, VOCAB.index("O")] = np.log(0.3)  # the frames allow "YON", a word
    assert Dictionary(["yon"], VOCAB).correct(plate, greedy_decode(plate, VOCAB)).text == "YQN 474"
    word = frames(spell("YQN"))
    word[2 * 1, VOCAB.index("O")] = np.log(0.3)
    assert Dictionary(["yon"], VOCAB).correct(word, greedy_decode(word, VOCAB)).text == "YON"  # no digit: a word
    total = frames(spell("TOTAI 12"))
    total[2 * 4, VOCAB.index("L")] = np.log(0.3)
    assert Dictionary(["total"], VOCAB).correct(total, greedy_decode(total, VOCAB)).text == "TOTAL 12"


def test_a_known_word_in_an_odd_mix_of_cases_takes_the_spelling_its_frames_allow():
    logp = frames(spell("maximUm oF iT"))
    logp[2 * 5, VOCAB.index("u")] = np.log(0.04)
    logp[2 * 9, VOCAB.index("f")] = np.log(0.04)
    reading = greedy_decode(logp, VOCAB)
    assert reading.text == "maximUm oF iT"
    fixed = Dictionary(["maximum", "of"], VOCAB).correct(logp, reading)
    assert fixed.text == "maximum of iT"  # "it" is not in this dictionary
    confident = frames(spell("maximUm", 0.999))
    assert Dictionary(["maximum"], VOCAB).correct(confident, greedy_decode(confident, VOCAB)).text == "maximUm"


def test_short_runs_and_known_words_are_untouched():
    logp = frames(spell("ox is"))
    reading = greedy_decode(logp, VOCAB)
    assert Dictionary(["on", "it", "ax"], VOCAB).correct(logp, reading) is reading


def test_decoder_applies_the_dictionary_after_greedy_and_beam():
    logp = uncertain_line()
    logits = logp[None]
    for method in ("greedy", "beam"):
        decoder = Decoder(VOCAB, method, 5, dictionary=Dictionary(["house"], VOCAB))
        assert decoder.decode_batch(logits)[0].text == "the house 42"
    assert Decoder(VOCAB).decode_batch(logits)[0].text == "the hause 42"


def test_shipped_word_lists_load_and_bad_ones_say_why(tmp_path):
    assert word_list("en") is not None and word_list("../en") is None
    english = load_dictionary("en", Vocab.default())
    assert len(english) > 30000 and "house" in english.known
    with pytest.raises(VocabError, match="cannot read dictionary"):
        load_dictionary(tmp_path / "missing.txt", VOCAB)
    digits_only = tmp_path / "digits.txt"
    digits_only.write_text("123\n4-5\n", encoding="utf-8")
    with pytest.raises(VocabError, match="no word"):
        load_dictionary(digits_only, VOCAB)
    with pytest.raises(VocabError, match="no word"):
        load_dictionary("en", Vocab("0123456789"))


PUNCT_VOCAB = Vocab(string.ascii_letters + " .,")


def stop_or_comma(before: str, after: str, p_stop: float, p_comma: float) -> np.ndarray:
    """Frames of `before` + a mark read as '.' with p_stop and ',' with p_comma + `after`."""
    logp = frames(spell(before) + [(".", p_stop)] + [("", 0.95)] + spell(after), PUNCT_VOCAB)
    mark = np.full(PUNCT_VOCAB.num_classes, (1 - p_stop - p_comma) / (PUNCT_VOCAB.num_classes - 2))
    mark[PUNCT_VOCAB.index(".")], mark[PUNCT_VOCAB.index(",")] = p_stop, p_comma
    logp[2 * len(before)] = np.log(mark)
    return logp


@pytest.mark.parametrize(("before", "after", "p_stop", "p_comma", "expected"), [
    ("monsters", " moonlighting", 0.7, 0.25, "monsters, moonlighting"),  # prose: comma before lower case
    ("monsters", " Moonlighting", 0.7, 0.25, "monsters. Moonlighting"),  # a new sentence
    ("monsters", " moonlighting", 0.995, 0.001, "monsters. moonlighting"),  # the frames are sure of the stop
    ("etc", " and", 0.7, 0.25, "etc. and"),  # an abbreviation
    ("e.g", " the", 0.7, 0.25, "e.g. the"),
    ("N", " and", 0.7, 0.25, "N. and"),  # an initial
])
def test_a_full_stop_before_a_lower_case_word_becomes_a_comma_only_where_prose_wants_one(
        before, after, p_stop, p_comma, expected):
    logp = stop_or_comma(before, after, p_stop, p_comma)
    reading = greedy_decode(logp, PUNCT_VOCAB)
    assert reading.text == before + "." + after
    corrected = Dictionary(["monsters", "moonlighting", "and", "the"], PUNCT_VOCAB).correct(logp, reading)
    assert corrected.text == expected
    assert [c.char for c in corrected.chars] == list(expected)
    assert all(a.end <= b.start for a, b in zip(corrected.chars, corrected.chars[1:]))


def test_the_comma_prior_can_be_switched_off():
    logp = stop_or_comma("monsters", " moonlighting", 0.7, 0.25)
    reading = greedy_decode(logp, PUNCT_VOCAB)
    words = Dictionary(["monsters", "moonlighting"], PUNCT_VOCAB, comma_prior=0)
    assert words.correct(logp, reading).text == "monsters. moonlighting"
