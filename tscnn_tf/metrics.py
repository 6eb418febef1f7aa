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
