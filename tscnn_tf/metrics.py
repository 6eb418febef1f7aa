"""Evaluation (Section III.A): accuracy (eq. 9), mean F1 (eq. 10), UF1/UAR (MEGC), confusion."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def evaluate(y_true, y_pred, class_names: list[str]) -> dict:
    """Metrics over pooled leave-one-subject-out predictions.

    accuracy: eq. 9, Σ T_i / Σ N_i over the folds.
    f1_macro: eq. 10, the mean over classes of 2 p_i r_i / (p_i + r_i), with p_i or r_i taken as 0
      when undefined.
    uf1: MEGC's unweighted F1, the mean over classes of 2TP / (2TP + FP + FN). It equals f1_macro
      except for a class that is neither present nor predicted, which MEGC skips.
    uar: the mean per-class recall over classes present in y_true.
    """
    c = len(class_names)
    cm = confusion_matrix(y_true, y_pred, c)
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(c), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c),
                   where=precision + recall > 0)
    denom = 2 * tp + (predicted - tp) + (support - tp)
    present = denom > 0
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "f1_macro": float(f1.mean()),
        "uf1": float((2 * tp[present] / denom[present]).mean()) if present.any() else 0.0,
        "uar": float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        "num_samples": int(cm.sum()),
        "class_names": list(class_names),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])}
                      for i, name in enumerate(class_names)},
        "confusion_matrix": cm.tolist(),
    }


# Spotting in long videos (MEGC 2022-2025), from the protocol's definitions.
SPOT_TYPES = ("micro", "macro")


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Frame IoU of two inclusive [onset, offset] intervals."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


def match_intervals(truth: list[tuple[int, int]], spotted: list[tuple[int, int]],
                    threshold: float = 0.5) -> list[tuple[int, int]]:
    """(spotted index, truth index) of the true positives: in onset order, each spotted interval
    takes the not-yet-matched ground-truth interval of largest IoU, if that IoU ≥ threshold."""
    matched: dict[int, int] = {}
    for i in sorted(range(len(spotted)), key=lambda k: spotted[k][0]):
        best, best_iou = None, threshold
        for j, gt in enumerate(truth):
            if j in matched.values():
                continue
            iou = interval_iou(spotted[i], gt)
            if iou >= best_iou:
                best, best_iou = j, iou
        if best is not None:
            matched[i] = best
    return sorted(matched.items())


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def spotting_scores(videos: list[dict], threshold: float = 0.5) -> dict:
    """MEGC spotting scores over a database's videos, each {"truth": [...], "spotted": [...]}
    of {"onset", "offset", "type"} (type micro or macro; "label" optional).

    Intervals are matched within their type (IoU ≥ threshold, one truth per spotted interval);
    TP, FP and FN are pooled over all videos; precision, recall and F1 per type, and overall
    from the summed counts. Returns also, for STRS, the matched (spotted, truth) pairs per video
    and `truth_classes`, the sorted labels of every ground-truth interval.
    """
    counts = {t: [0, 0, 0] for t in SPOT_TYPES}
    pairs = []
    for video in videos:
        video_pairs = []
        for kind in SPOT_TYPES:
            truth = [v for v in video["truth"] if v["type"] == kind]
            spotted = [v for v in video["spotted"] if v["type"] == kind]
            found = match_intervals([(v["onset"], v["offset"]) for v in truth],
                                    [(v["onset"], v["offset"]) for v in spotted], threshold)
            counts[kind][0] += len(found)
            counts[kind][1] += len(spotted) - len(found)
            counts[kind][2] += len(truth) - len(found)
            video_pairs += [(spotted[i], truth[j]) for i, j in found]
        pairs.append(video_pairs)
    out = {kind: prf(*counts[kind]) for kind in SPOT_TYPES}
    out["overall"] = prf(*(sum(counts[k][n] for k in SPOT_TYPES) for n in range(3)))
    out["pairs"] = pairs
    out["truth_classes"] = sorted({t["label"] for video in videos for t in video["truth"]
                                   if t.get("label") is not None})
    return out


def analysis_scores(labels: list[tuple], classes: list[str]) -> dict:
    """Recognition of the spotted true positives as the MEGC 2023-2025 scorer defines it.

    labels: (true, predicted) label of each true positive (predicted None: not recognised);
    classes: the classes averaged over, every emotion class of the ground truth. Per class c,
    precision and recall of "is c" among the true positives (0 where undefined, so a class that
    no true positive involves counts 0); a predicted label outside `classes` is a miss of its
    true class and a false positive of none. f1 (the published analysis F1) is the harmonic mean
    of the mean precision and the mean recall; uf1 the mean per-class F1; uar the mean
    per-class recall.
    """
    per_class = {c: prf(sum(t == c == p for t, p in labels),
                        sum(p == c != t for t, p in labels),
                        sum(t == c != p for t, p in labels)) for c in classes}

    def mean(key):
        return float(np.mean([r[key] for r in per_class.values()])) if classes else 0.0
    precision, recall = mean("precision"), mean("recall")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall, "uf1": mean("f1"),
            "uar": recall, "per_class": per_class}


def strs(scores: dict, class_names: list[str]) -> dict:
    """Spot-then-recognise score (MEGC 2023-2025): the overall spotting F1 x the analysis F1
    (`analysis_scores`) of the true positives whose ground truth has a label, averaged over
    `scores["truth_classes"]`. `class_names` (the model's) only serve to name the ground-truth
    classes the model cannot predict. A ground truth without emotion labels (SAMM-LV, CAS(ME)³
    long videos) gives None for STRS and the analysis figures: not measurable, rather than 0."""
    tps = [(t["label"], s.get("label")) for video in scores["pairs"] for s, t in video
           if t.get("label") is not None]
    classes = scores["truth_classes"]
    analysis = analysis_scores(tps, classes)
    if not classes:  # no emotion label in the ground truth: there is nothing to score, not 0
        analysis = {k: None for k in analysis}
    return {"strs": None if not classes else scores["overall"]["f1"] * analysis["f1"],
            **{f"analysis_{k}": v for k, v in analysis.items()},
            "num_true_positives": len(tps),
            "num_unrecognised": sum(p is None for _, p in tps),
            "classes": classes,
            "classes_not_in_model": [c for c in classes if c not in class_names]}
