"""The confusion matrix image (results' PNG, TensorBoard, inspect) in its colours."""
import cv2
import numpy as np

from tscnn_tf import plots


def test_confusion_matrix_hits_are_green_and_errors_red(tmp_path):
    img = plots.confusion_matrix_image([[3, 1], [0, 4]], ["negative", "positive"], cell=72)
    label_w = max(cv2.getTextSize(c, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
                  for c in ("negative", "positive")) + 16
    x0, y0 = 24 + label_w, 40 + label_w

    def corner(i, j):  # a pixel inside the cell, away from its count
        return img[y0 + i * 72 + 6, x0 + j * 72 + 6].astype(int)
    hit, error, empty = corner(0, 0), corner(0, 1), corner(1, 0)
    assert hit[1] == 255 and hit[0] < 255 and hit[2] < 255          # green
    assert error[0] == 255 and error[1] < 255 and error[2] < 255    # red (RGB)
    assert (empty == 255).all()                                     # no share: white
    plots.write_png(tmp_path / "cm.png", img)
    bgr = cv2.imread(str(tmp_path / "cm.png"))
    assert (bgr[y0 + 6, x0 + 72 + 6] == error[::-1]).all()          # red in the file too
