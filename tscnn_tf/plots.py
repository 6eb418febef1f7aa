"""Images for people: the confusion matrix as a PNG and for TensorBoard.

Drawn with OpenCV, which the feature stage needs anyway, so no plotting library is installed.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def confusion_matrix_image(cm, class_names: list[str], title: str = "",
                           cell: int = 72) -> np.ndarray:
    """An RGB uint8 image of a confusion matrix: rows are true labels, columns predictions.

    Each cell shows its count and, shaded by it, the share of its row (the per-class recall).
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    label_w = max(cv2.getTextSize(c, _FONT, 0.5, 1)[0][0] for c in class_names) + 16
    top = 40 + label_w
    width = max(24 + label_w + k * cell + 8, cv2.getTextSize(title, _FONT, 0.55, 1)[0][0] + 16)
    img = np.full((top + k * cell + 24, width, 3), 255, np.uint8)
    cv2.putText(img, title, (8, 22), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    x0, y0 = 24 + label_w, top
    for i in range(k):
        for j in range(k):
            shade = int(255 - 200 * share[i, j])
            p, q = (x0 + j * cell, y0 + i * cell), (x0 + (j + 1) * cell, y0 + (i + 1) * cell)
            cv2.rectangle(img, p, q, (shade, shade, 255) if i != j else (shade, 255, shade), -1)
            cv2.rectangle(img, p, q, (160, 160, 160), 1)
            text = f"{cm[i, j]}"
            (tw, th), _ = cv2.getTextSize(text, _FONT, 0.6, 1)
            cv2.putText(img, text, (p[0] + (cell - tw) // 2, p[1] + (cell + th) // 2), _FONT,
                        0.6, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, class_names[i], (8, y0 + i * cell + cell // 2 + 5), _FONT, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    # Column labels, written vertically so long class names fit.
    strip = np.full((k * cell, label_w, 3), 255, np.uint8)
    for j, name in enumerate(class_names):
        cv2.putText(strip, name, (8, j * cell + cell // 2 + 5), _FONT, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    img[40:40 + label_w, x0:x0 + k * cell] = np.rot90(strip)
    cv2.putText(img, "true \\ predicted", (8, 40 + label_w - 8), _FONT, 0.4, (90, 90, 90), 1,
                cv2.LINE_AA)
    return img


def write_png(path, rgb: np.ndarray) -> None:
    """Write an RGB image atomically (a finished PNG or none)."""
    path = Path(path)
    tmp = path.with_name("partial-" + path.name)
    if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    os.replace(tmp, path)
