"""Metrics agree with scikit-learn on fixed predictions."""
import numpy as np
import pytest
from sklearn import metrics as sk

from tscnn_tf import metrics, spot
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
    # Two true positives: label a right, label b predicted a. Over the truth classes {a, b}:
    # a: P 1/2, R 1; b: P 0, R 0 -> mean P 1/4, mean R 1/2, analysis F1 1/3 (UF1 also 1/3).
    recognised = metrics.strs(scores, ["a", "b"])
    assert recognised["num_true_positives"] == 2 and recognised["classes"] == ["a", "b"]
    assert abs(recognised["analysis_f1"] - 1 / 3) < 1e-12
    assert abs(recognised["strs"] - 2 / 3 * 1 / 3) < 1e-12


def iv(k, label, kind="micro"):
    """The k-th of a video's well-separated intervals."""
    return {"onset": 10 + 100 * k, "offset": 30 + 100 * k, "type": kind, "label": label}


def strs_of(truth_labels, spotted_labels, class_names=("negative", "positive", "surprise")):
    """STRS of one video whose k-th spotted interval lies on its k-th ground truth."""
    video = {"truth": [iv(k, label) for k, label in enumerate(truth_labels)],
             "spotted": [iv(k, label) for k, label in enumerate(spotted_labels)]}
    return metrics.strs(metrics.spotting_scores([video]), list(class_names))


def test_analysis_f1_is_the_harmonic_mean_of_the_mean_precision_and_recall():
    # (true -> predicted): negative -> negative, positive -> negative, positive -> positive.
    # negative: P 1/2, R 1; positive: P 1, R 1/2 -> mean P = mean R = 3/4, F1 3/4.
    # The mean per-class F1 (UF1) is (2/3 + 2/3) / 2 = 2/3; the old analysis F1 was that.
    r = strs_of(["negative", "positive", "positive"], ["negative", "negative", "positive"])
    assert r["analysis_f1"] == pytest.approx(0.75) and r["strs"] == pytest.approx(0.75)
    assert r["analysis_precision"] == pytest.approx(0.75)
    assert r["analysis_recall"] == r["analysis_uar"] == pytest.approx(0.75)
    assert r["analysis_uf1"] == pytest.approx(2 / 3)
    assert r["classes"] == ["negative", "positive"] and r["num_true_positives"] == 3


def test_a_ground_truth_class_never_spotted_counts_zero():
    # Truths negative, positive, surprise; surprise is missed (spotting F1 4/5). Analysis over
    # all three classes: P = R = (1 + 1 + 0) / 3 -> 2/3 (the old analysis F1 was 1.0).
    r = strs_of(["negative", "positive", "surprise"], ["negative", "positive"],
                ["negative", "positive"])
    assert r["analysis_f1"] == pytest.approx(2 / 3) and r["analysis_uf1"] == pytest.approx(2 / 3)
    assert r["analysis_uar"] == pytest.approx(2 / 3)
    assert r["strs"] == pytest.approx(0.8 * 2 / 3)
    assert r["classes"] == ["negative", "positive", "surprise"]
    assert r["classes_not_in_model"] == ["surprise"] and r["num_true_positives"] == 2


def test_a_predicted_label_outside_the_truth_classes_is_a_miss_of_its_true_class():
    # negative -> others, positive -> negative, positive -> positive; classes {negative, positive}
    # ("others" is no class: it is nobody's false positive). negative: P 0 (tp 0, fp 1), R 0;
    # positive: P 1, R 1/2 -> mean P 1/2, mean R 1/4, F1 1/3; UF1 (0 + 2/3) / 2 = 1/3.
    # UAR is the mean recall 1/4 (the organisers' "UAR analysis" prints the mean precision).
    r = strs_of(["negative", "positive", "positive"], ["others", "negative", "positive"],
                ["negative", "others", "positive"])
    assert r["analysis_precision"] == pytest.approx(0.5)
    assert r["analysis_recall"] == r["analysis_uar"] == pytest.approx(0.25)
    assert r["analysis_f1"] == pytest.approx(1 / 3) and r["analysis_uf1"] == pytest.approx(1 / 3)
    assert set(r["analysis_per_class"]) == {"negative", "positive"}


def test_a_truth_class_the_model_lacks_is_scored_and_named():
    # The ground truth has "others", the 3-class model cannot say it: others P 0, R 0;
    # positive P 1, R 1 -> F1 1/2 (the old code raised a KeyError).
    r = strs_of(["others", "positive"], ["negative", "positive"])
    assert r["classes"] == ["others", "positive"] and r["classes_not_in_model"] == ["others"]
    assert r["analysis_f1"] == pytest.approx(0.5)


def test_an_unrecognised_true_positive_is_a_miss_not_dropped():
    # The spotted negative could not be recognised (no face): negative P 0, R 0; positive 1, 1.
    r = strs_of(["negative", "positive"], [None, "positive"])
    assert r["num_true_positives"] == 2 and r["num_unrecognised"] == 1
    assert r["analysis_f1"] == pytest.approx(0.5)


def test_a_truth_without_a_label_is_no_class_and_not_analysed():
    r = strs_of(["negative", None, "positive"], ["negative", "positive", "positive"])
    assert r["classes"] == ["negative", "positive"] and r["num_true_positives"] == 2
    assert r["analysis_f1"] == 1.0


def test_the_organisers_readme_example_gives_strs_0_2():
    """The example of genbing99/STRS-Metric's README (STRS 0.2): 3 of 5 spotted, every truth
    class averaged: others right, repression predicted happiness twice -> P = R = 1/3."""
    rows = [("EP02_01f", 10, 70, "happiness", 45, 85, "happiness"),
            ("EP03_02", 100, 170, "others", 130, 160, "others"),
            ("EP04_02", 0, 70, "others", 20, 75, "others"),
            ("EP01_11f", 20, 90, "happiness", 45, 95, "repression"),
            ("EP02_04f", 70, 140, "happiness", 30, 140, "repression")]
    videos = [{"spotted": [{"onset": a, "offset": b, "type": "micro", "label": p}],
               "truth": [{"onset": c, "offset": d, "type": "micro", "label": t}]}
              for _, a, b, p, c, d, t in rows]
    scores = metrics.spotting_scores(videos)
    r = metrics.strs(scores, ["happiness", "others", "repression"])
    assert scores["overall"]["f1"] == pytest.approx(0.6)
    assert r["analysis_f1"] == pytest.approx(1 / 3) and r["strs"] == pytest.approx(0.2)


# Where the organisers' scorer fails, the project's answer stands (README, "STRS").
def test_one_class_all_right_is_1_not_nan():
    assert strs_of(["negative", "negative"], ["negative", "negative"])["analysis_f1"] == 1.0


def test_all_wrong_is_0_not_nan():
    r = strs_of(["negative", "positive"], ["positive", "negative"])
    assert r["analysis_f1"] == 0.0 and r["strs"] == 0.0


def test_nothing_spotted_is_0_not_a_crash():
    r = strs_of(["negative", "positive"], [])
    assert r == {**r, "strs": 0.0, "analysis_f1": 0.0, "num_true_positives": 0}
    assert r["classes"] == ["negative", "positive"]


def test_matching_depends_on_neither_row_order_nor_crosses_types():
    """Truths [10, 30] and [20, 40]; spotted [15, 35] (IoU 16/26 with both) and [10, 30]. The
    organisers' scorer, in this row order, gives [15, 35] both truths and [10, 30] none
    (TP 2, FP 1, STRS 0.267), in the other order TP 2, FP 0 (STRS 1.0). Here: in onset order,
    each spotted interval takes one truth, the free one of largest IoU."""
    truth = [{"onset": 10, "offset": 30, "type": "micro", "label": "negative"},
             {"onset": 20, "offset": 40, "type": "micro", "label": "positive"}]
    spotted = [{"onset": 15, "offset": 35, "type": "micro", "label": "positive"},
               {"onset": 10, "offset": 30, "type": "micro", "label": "negative"}]
    for rows in (spotted, spotted[::-1]):
        scores = metrics.spotting_scores([{"truth": truth, "spotted": rows}])
        assert (scores["overall"]["tp"], scores["overall"]["fp"]) == (2, 0)
        assert metrics.strs(scores, ["negative", "positive"])["strs"] == 1.0
    # A micro interval on a macro truth is a false positive and a miss, not a match.
    c = metrics.spotting_scores([{"truth": [iv(1, "positive", "macro")],
                                  "spotted": [iv(1, "positive")]}])
    assert (c["micro"]["fp"], c["macro"]["fn"], c["overall"]["tp"]) == (1, 1, 0)


def test_a_ground_truth_without_emotion_labels_is_not_measurable_not_0():
    """SAMM-LV and CAS(ME)³ long videos carry no emotion labels: STRS is None, not 0."""
    truth = [{"onset": 10, "offset": 30, "type": "micro", "label": None}]
    spotted = [{"onset": 10, "offset": 30, "type": "micro", "label": "negative"}]
    r = metrics.strs(metrics.spotting_scores([{"truth": truth, "spotted": spotted}]),
                     ["negative", "positive"])
    assert r["strs"] is None and r["analysis_f1"] is None and r["classes"] == []
    assert "not measurable" in spot.format_scores({
        **{k: metrics.prf(1, 0, 0) for k in ("micro", "macro", "overall", "apex_hits")},
        "recognition": r, "frames_per_s": 1.0})
