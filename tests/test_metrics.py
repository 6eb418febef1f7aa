"""Metrics agree with scikit-learn on fixed predictions."""
import numpy as np
import pytest
from sklearn import metrics as sk

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
