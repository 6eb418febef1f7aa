"""Images for people: the confusion matrix as a PNG and for TensorBoard.

Drawn with OpenCV, which the feature stage needs anyway, so no plotting library is installed.
"""
from __future__ import annotations


import cv2
import numpy as np

from tscnn_tf.artifacts import atomic_write

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
    with atomic_write(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {path}")


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """A (H, W, 2) flow field in the usual colour code: hue = direction, brightness = magnitude."""
    magnitude, angle = cv2.cartToPolar(flow[..., 0].astype(np.float32),
                                       flow[..., 1].astype(np.float32), angleInDegrees=True)
    top = max_magnitude or float(magnitude.max()) or 1.0
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(255 * magnitude / top, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def apex_and_flow_image(apex_face: np.ndarray, landmarks: np.ndarray, flow_raw: np.ndarray,
                        title: str, grid: int = 6) -> np.ndarray:
    """In the manner of the paper's Fig. 6: the aligned apex face with its landmarks and block
    grid, beside the colour-coded onset->apex and apex->offset flows (shared colour scale)."""
    size = apex_face.shape[0]
    face = cv2.cvtColor(apex_face, cv2.COLOR_GRAY2RGB)
    for k in range(1, grid):
        p = round(k * size / grid)
        cv2.line(face, (p, 0), (p, size - 1), (0, 200, 255), 1)
        cv2.line(face, (0, p), (size - 1, p), (0, 200, 255), 1)
    for x, y in landmarks:
        cv2.circle(face, (int(round(x)), int(round(y))), 1, (255, 40, 40), -1)
    top = float(np.hypot(flow_raw[..., 0::2], flow_raw[..., 1::2]).max()) or 1.0
    flows = [cv2.resize(flow_to_rgb(flow_raw[..., c:c + 2], top), (size, size),
                        interpolation=cv2.INTER_NEAREST) for c in (0, 2)]
    panel = np.concatenate([face, np.full((size, 4, 3), 255, np.uint8), flows[0],
                            np.full((size, 4, 3), 255, np.uint8), flows[1]], axis=1)
    out = np.full((size + 44, panel.shape[1], 3), 255, np.uint8)
    out[44:] = panel
    cv2.putText(out, title, (4, 16), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for k, text in enumerate(("apex, landmarks, grid", "onset->apex", "apex->offset")):
        cv2.putText(out, text, (4 + k * (size + 4), 38), _FONT, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
    return out


def spotting_image(trace: dict, intervals: list[dict], fps: float, width: int = 1200,
                   height: int = 360) -> np.ndarray:
    """The spotting signal of each scale over time (micro blue, macro orange, each scaled to
    its maximum), with the spotted intervals shaded (micro green, macro red) and labelled."""
    img = np.full((height, width, 3), 255, np.uint8)
    stamps = [np.asarray(trace[k][0], float) for k in trace if len(trace[k][0])]
    if not stamps:
        return img
    first = min(s[0] for s in stamps)
    last = max(max(s[-1] for s in stamps), max((i["offset"] for i in intervals), default=0))
    def x_of(i):
        return int(8 + (width - 16) * (i - first) / max(last - first, 1))
    top, bottom = 40, height - 30
    for interval in intervals:
        colour = (200, 240, 200) if interval["type"] == "micro" else (200, 200, 250)
        cv2.rectangle(img, (x_of(interval["onset"]), top), (x_of(interval["offset"]), bottom),
                      colour, -1)
        label = interval.get("label") or interval["type"]
        cv2.putText(img, label, (x_of(interval["onset"]), top - 6), _FONT, 0.35, (60, 60, 60), 1,
                    cv2.LINE_AA)
    for name, colour in (("micro", (200, 90, 20)), ("macro", (20, 120, 230))):
        index, values = (np.asarray(a, float) for a in trace.get(name, ([], [])))
        if len(values) < 2:
            continue
        scaled = values / max(values.max(), 1e-12)
        points = [(x_of(i), int(bottom - (bottom - top) * v)) for i, v in zip(index, scaled)]
        cv2.polylines(img, [np.array(points, np.int32)], False, colour, 1, cv2.LINE_AA)
    seconds = (last - first) / fps
    cv2.putText(img, f"spotting signal, {seconds:.1f} s at {fps:g} fps: micro scale (blue), "
                     "macro scale (orange)", (8, 18), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
