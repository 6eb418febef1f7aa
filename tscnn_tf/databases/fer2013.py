"""FER2013 (`fer2013.csv`, or its `icml_face_data.csv` variant) for pretraining the S stream.

Columns `emotion, pixels, Usage` (the variant writes ` Usage`, ` pixels` with leading
spaces); `pixels` holds 2304 space-separated grey values of a 48 x 48 face, row-major.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
from pathlib import Path

import numpy as np

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SIZE = 48

log = logging.getLogger("tscnn_tf")


@dataclasses.dataclass
class FerData:
    """Images (N, 48, 48) uint8, labels (N,), usage per row, and the rows that were skipped."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    dropped: list[tuple[int, str]]

    def split(self, *usages: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of the rows whose Usage is one of `usages`."""
        keep = np.isin(self.usage, usages)
        return self.images[keep], self.labels[keep]


def read_fer2013(path) -> FerData:
    """Read the CSV, skipping (and reporting) rows with a wrong pixel count or unknown emotion."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 CSV not found: {path}")
    images, labels, usage, dropped = [], [], [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = {"emotion", "pixels"} - set(header)
        if missing:
            raise ValueError(f"{path}: not a FER2013 CSV, no column(s) {sorted(missing)} "
                             f"in header {header}")
        col = {name: header.index(name) for name in ("emotion", "pixels", "usage") if name in header}
        for line, row in enumerate(reader, start=2):
            try:
                emotion = int(row[col["emotion"]])
                if not 0 <= emotion < len(FER_CLASSES):
                    raise ValueError(f"unknown emotion id {emotion}")
                pixels = np.array(row[col["pixels"]].split(), dtype=np.float64)
                if pixels.size != FER_SIZE * FER_SIZE:
                    raise ValueError(f"{pixels.size} pixel values, expected {FER_SIZE * FER_SIZE}")
                if pixels.min() < 0 or pixels.max() > 255:
                    raise ValueError("pixel values outside 0..255")
            except (ValueError, IndexError) as e:
                dropped.append((line, str(e)))
                continue
            images.append(pixels.astype(np.uint8).reshape(FER_SIZE, FER_SIZE))
            labels.append(emotion)
            usage.append(row[col["usage"]].strip() if "usage" in col else "Training")
    for line, reason in dropped[:20]:
        log.warning("%s line %d skipped: %s", path.name, line, reason)
    if len(dropped) > 20:
        log.warning("%s: %d more rows skipped", path.name, len(dropped) - 20)
    return FerData(np.asarray(images, np.uint8).reshape(-1, FER_SIZE, FER_SIZE),
                   np.asarray(labels, np.int64), np.asarray(usage), dropped)
