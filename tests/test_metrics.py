"""Metrics agree with scikit-learn on fixed predictions."""
import numpy as np
import pytest
from sklearn import metrics as sk

from tscnn_tf import metrics
from tscnn_tf.metrics import evaluate

Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1, 0, 2]
Y_PRED = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1, 0, 1]


def test_against_sklearn():
    r = evaluate(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(Y_TRUE, Y_PRED))
    assert r["f1_macro"] == pytest.approx(sk.f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert r["uf1"] == pytest.approx(sk.f1_score(Y_TRUE, Y_PRED, average="macro"))
    assert r["uar"] == pytest.approx(sk.recall_score(Y_TRUE, Y_PRED, average="macro"))
    assert r["confusion_matrix"] == sk.confusion_matrix(Y_TRUE, Y_PRED).tolist()
    p, rec, _, support = sk.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    for i, name in enumerate("abc"):
        assert r["per_class"][name]["precision"] == pytest.approx(p[i])
        assert r["per_class"][name]["recall"] == pytest.approx(rec[i])
        assert r["per_class"][name]["support"] == support[i]


def test_class_never_predicted_nor_present():
    y_true, y_pred = [0, 0, 1], [0, 1, 1]
    r = evaluate(y_true, y_pred, ["a", "b", "c"])
    assert r["f1_macro"] == pytest.approx(sk.f1_score(y_true, y_pred, labels=[0, 1, 2],
                                                      average="macro", zero_division=0))
    assert r["uf1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro"))  # c skipped
    assert r["uar"] == pytest.approx(sk.recall_score(y_true, y_pred, average="macro"))
    assert np.array(r["confusion_matrix"]).shape == (3, 3)


def test_interval_iou_by_hand():
    assert metrics.interval_iou((10, 19), (10, 19)) == 1.0
    assert metrics.interval_iou((10, 19), (15, 24)) == 5 / 15   # 15..19 of 10..24
    assert metrics.interval_iou((0, 4), (5, 9)) == 0.0
    assert metrics.interval_iou((0, 9), (0, 4)) == 0.5


def test_matching_takes_each_truth_once():
    truth = [(10, 19), (40, 49)]
    spotted = [(10, 19), (11, 20), (41, 50), (70, 80)]
    # (10,19) matches truth 0; (11,20) would too (IoU 9/11) but it is taken; (41,50) matches 1.
    assert metrics.match_intervals(truth, spotted) == [(0, 0), (2, 1)]
    assert metrics.match_intervals(truth, [(15, 24)]) == []  # IoU 1/3 < 0.5


def test_spotting_scores_pool_counts_over_videos_by_hand():
    def iv(onset, offset, kind, label=None):
        return {"onset": onset, "offset": offset, "type": kind, "label": label}
    videos = [
        {"truth": [iv(10, 19, "micro", "a"), iv(100, 199, "macro", "b")],
         "spotted": [iv(11, 19, "micro", "a"), iv(300, 309, "micro", "a"),
                     iv(105, 199, "macro", "a")]},
        {"truth": [iv(50, 59, "micro", "b")], "spotted": []},
    ]
    scores = metrics.spotting_scores(videos)
    # micro: TP 1, FP 1, FN 1 -> P = R = F1 = 0.5; macro: TP 1 -> 1.0; overall: TP 2 FP 1 FN 1.
    assert (scores["micro"]["tp"], scores["micro"]["fp"], scores["micro"]["fn"]) == (1, 1, 1)
    assert scores["micro"]["f1"] == 0.5 and scores["macro"]["f1"] == 1.0
    assert scores["overall"]["precision"] == 2 / 3 and scores["overall"]["recall"] == 2 / 3
    assert abs(scores["overall"]["f1"] - 2 / 3) < 1e-12
    # Two true positives: label a right, label b predicted a -> UF1 over {a, b}: a: 2/3, b: 0.
    recognised = metrics.strs(scores, ["a", "b"])
    assert recognised["num_true_positives"] == 2
    assert abs(recognised["analysis_f1"] - (2 / 3 + 0) / 2) < 1e-12
    assert abs(recognised["strs"] - 2 / 3 * 1 / 3) < 1e-12
