"""Scoring whole-image detection and end-to-end reading on hand-made cases whose counts are checked by hand."""

from __future__ import annotations

import json

import pytest

from crnn_ocr.detect.scoring import (
    DetectionCounts,
    default_level,
    hmean,
    polygon,
    precision,
    read_labels,
    recall,
    score_dataset,
    score_detections,
)
from crnn_ocr.errors import ConfigError, DatasetError


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def region(quad, text="word", level="word", ignore=False) -> dict:
    return {"quad": quad, "text": text, "level": level, "ignore": ignore}


def counts(c: DetectionCounts) -> tuple[int, int, int]:
    return c.tp, c.fp, c.fn


def test_perfect_match():
    truth = [region(box(0, 0, 100, 20)), region(box(0, 40, 50, 60))]
    c = score_detections([box(0, 0, 100, 20), box(0, 40, 50, 60)], truth)
    assert counts(c) == (2, 0, 0)
    assert (c.precision, c.recall, c.hmean) == (1.0, 1.0, 1.0)
    assert sorted((m.prediction, m.truth) for m in c.matches) == [(0, 0), (1, 1)]


def test_shifted_box_matches_only_above_half_iou():
    truth = [region(box(0, 0, 100, 20))]
    # shifted by 30: intersection 70*20, union 130*20, IoU 0.54
    assert counts(score_detections([box(30, 0, 130, 20)], truth)) == (1, 0, 0)
    # shifted by 40: intersection 60*20, union 140*20, IoU 0.43
    assert counts(score_detections([box(40, 0, 140, 20)], truth)) == (0, 1, 1)
    assert counts(score_detections([box(40, 0, 140, 20)], truth, iou=0.4)) == (1, 0, 0)


def test_two_predictions_for_one_region_make_one_hit_and_one_false_alarm():
    truth = [region(box(0, 0, 100, 20))]
    c = score_detections([box(5, 0, 100, 20), box(0, 0, 100, 20)], truth)
    assert counts(c) == (1, 1, 0)
    assert [m.prediction for m in c.matches] == [1]  # the higher IoU wins


def test_greedy_matching_takes_the_best_pair_first():
    truth = [region(box(0, 0, 100, 20)), region(box(60, 0, 160, 20))]
    # prediction 0 overlaps truth 0 best; prediction 1 overlaps truth 1 only
    c = score_detections([box(10, 0, 110, 20), box(60, 0, 160, 20)], truth)
    assert counts(c) == (2, 0, 0)


def test_prediction_inside_an_ignore_region_counts_neither_way():
    truth = [region(box(0, 0, 100, 20)), region(box(0, 100, 200, 140), text=None, ignore=True)]
    inside = box(10, 105, 80, 135)  # IoU with the ignore region below 0.5 but wholly inside it
    c = score_detections([box(0, 0, 100, 20), inside], truth)
    assert counts(c) == (1, 0, 0)
    # an ignore region that nothing finds is not a miss; a prediction mostly outside it is a false alarm
    c = score_detections([box(150, 100, 300, 140)], truth)
    assert counts(c) == (0, 1, 1)


def test_empty_image_with_a_false_positive():
    c = score_detections([box(0, 0, 10, 10)], [])
    assert counts(c) == (0, 1, 0)
    assert (c.precision, c.recall, c.hmean) == (0.0, 1.0, 0.0)
    empty = score_detections([], [])
    assert (empty.precision, empty.recall, empty.hmean) == (1.0, 1.0, 1.0)


def test_self_intersecting_quad_is_its_convex_hull():
    bow_tie = [[0, 0], [100, 20], [100, 0], [0, 20]]
    assert polygon(bow_tie).area == pytest.approx(2000)
    assert counts(score_detections([bow_tie], [region(box(0, 0, 100, 20))])) == (1, 0, 0)
    assert polygon([[0, 0], [10, 10], [20, 20], [30, 30]]).area == 0
    assert counts(score_detections([[[0, 0], [5, 5], [9, 9], [1, 1]]], [region(box(0, 0, 100, 20))])) == (0, 1, 1)


def test_level_filter():
    truth = [region(box(0, 0, 40, 20), "Hello", "word"), region(box(60, 0, 100, 20), "world", "word"),
             region(box(0, 0, 100, 20), "Hello world", "line")]
    assert counts(score_detections([box(0, 0, 100, 20)], truth, level="line")) == (1, 0, 0)
    assert counts(score_detections([box(0, 0, 100, 20)], truth, level="word")) == (0, 1, 2)
    with pytest.raises(ConfigError):
        score_detections([], truth, level="char")


def test_end_to_end_needs_the_normalised_text():
    truth = [region(box(0, 0, 100, 20), "Hello!"), region(box(0, 40, 100, 60), "World")]
    c = score_detections([(box(0, 0, 100, 20), "hello"), {"quad": box(0, 40, 100, 60), "text": "w0rld"}], truth)
    assert counts(c) == (2, 0, 0)
    assert (c.e2e_tp, c.e2e_fp, c.e2e_fn) == (1, 1, 1)
    assert [m.text_correct for m in c.matches] == [True, False]
    no_text = score_detections([box(0, 0, 100, 20)], truth)
    assert (no_text.e2e_tp, no_text.e2e_fp, no_text.e2e_fn, no_text.texted_predictions) == (0, 1, 2, 0)


def test_regions_without_text_are_not_scored_end_to_end():
    truth = [region(box(0, 0, 100, 20), None, "line")]
    c = score_detections([(box(0, 0, 100, 20), "anything")], truth)
    assert counts(c) == (1, 0, 0)
    assert (c.e2e_images, c.e2e_tp, c.e2e_fp, c.e2e_fn, c.bow_truth) == (0, 0, 0, 0, 0)


def test_bag_of_words_f1_by_hand():
    truth = [region(box(0, 0, 100, 20), "The cat, the HAT", "line"), region(box(0, 40, 100, 60), "sat", "line")]
    # predicted words: the, cat, that, sat, sat, on -> 6; truth: the, cat, the, hat, sat -> 5
    # common (multiset): the x1, cat x1, sat x1 -> 3; F1 = 2 * 3 / (6 + 5)
    predicted = [(box(0, 0, 100, 20), "the Cat that"), (box(0, 40, 100, 60), "sat sat"), (box(0, 80, 100, 99), "On!")]
    c = score_detections(predicted, truth)
    assert (c.bow_tp, c.bow_predicted, c.bow_truth) == (3, 6, 5)
    assert c.bow_f1 == pytest.approx(6 / 11)
    assert (c.bow_precision, c.bow_recall) == (pytest.approx(3 / 6), pytest.approx(3 / 5))


def test_rate_helpers():
    assert precision(3, 1) == 0.75 and recall(3, 3) == 0.5
    assert hmean(0.75, 0.5) == pytest.approx(0.6)
    assert hmean(0.0, 0.0) == 0.0
    total = DetectionCounts(tp=1, fp=1, images=1) + DetectionCounts(tp=1, fn=2, images=1)
    assert (total.tp, total.fp, total.fn, total.images) == (2, 1, 2, 2)


def write_set(folder, records) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_score_dataset_sums_images(tmp_path):
    records = [
        {"image": "images/a.jpg", "width": 200, "height": 100, "regions": [
            region(box(0, 0, 40, 20), "Hello", "word"), region(box(50, 0, 100, 20), "world", "word"),
            region(box(0, 0, 100, 20), "Hello world", "line")]},
        {"image": "images/b.jpg", "width": 200, "height": 100, "regions": [
            region(box(0, 50, 60, 70), "Price:", "word"), region(box(0, 50, 60, 70), "Price:", "line")]},
        {"image": "images/c.jpg", "width": 200, "height": 100, "regions": []},
    ]
    write_set(tmp_path, records)
    assert default_level(read_labels(tmp_path)) == "word"
    predictions = {"images/a.jpg": [(box(0, 0, 40, 20), "hello"), (box(55, 0, 100, 20), "word")],
                   "b.jpg": [(box(0, 50, 60, 70), "PRICE")], "c.jpg": [(box(0, 0, 9, 9), "x")]}
    result = score_dataset(tmp_path, predictions)
    assert result["level"] == "word" and result["images"] == 3
    assert (result["tp"], result["fp"], result["fn"]) == (3, 1, 0)
    assert result["precision"] == 0.75 and result["recall"] == 1.0
    assert (result["e2e"]["tp"], result["e2e"]["fp"], result["e2e"]["fn"]) == (2, 2, 1)
    assert result["e2e"]["hmean"] == pytest.approx(hmean(0.5, 2 / 3))
    # words: predicted hello, word, price, x (4); truth hello, world, price (3); common 2
    assert result["bow"]["f1"] == pytest.approx(4 / 7)
    lines = score_dataset(tmp_path / "labels.jsonl", predictions, level="line")
    assert (lines["tp"], lines["fp"], lines["fn"]) == (1, 3, 1)


def test_score_dataset_without_transcriptions_skips_end_to_end(tmp_path):
    write_set(tmp_path, [{"image": "images/a.jpg", "width": 9, "height": 9,
                          "regions": [region(box(0, 0, 5, 5), None, "line")]}])
    result = score_dataset(tmp_path, {"a.jpg": [(box(0, 0, 5, 5), "hi")]})
    assert result["level"] == "line" and result["hmean"] == 1.0
    assert result["e2e"]["hmean"] is None and "transcription" in result["e2e"]["skipped"]
    assert result["bow"]["f1"] is None and result["e2e"]["skipped_images"] == 1


def test_score_dataset_refuses_unknown_images_and_bad_labels(tmp_path):
    write_set(tmp_path / "ok", [{"image": "images/a.jpg", "width": 9, "height": 9, "regions": []}])
    with pytest.raises(DatasetError, match="does not have"):
        score_dataset(tmp_path / "ok", {"images/zzz.jpg": []})
    write_set(tmp_path / "bad", [{"image": "images/a.jpg", "regions": [{"quad": [[0, 0]], "level": "word"}]}])
    with pytest.raises(DatasetError, match="quad"):
        read_labels(tmp_path / "bad")
    with pytest.raises(DatasetError):
        read_labels(tmp_path / "missing")
