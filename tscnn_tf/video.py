"""Reading a clip's grey frames from a frame folder or a video file, tolerating bad frames."""
from __future__ import annotations

import cv2
import numpy as np

from tscnn_tf.databases.base import MIN_FRAMES, Sample


class ClipError(Exception):
    """A clip that cannot be used; the message is the reason recorded in the manifest."""


def read_clip(sample: Sample) -> tuple[list[int], list[np.ndarray]]:
    """Grey uint8 frames from onset to offset with their indices; unreadable frames are skipped
    with a warning in `sample.warnings`. Raises ClipError when fewer than 3 frames remain."""
    indices, frames = [], []
    if sample.frames is not None:
        for index, path in sample.frames.items():
            image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if image is None:
                sample.warnings.append(f"unreadable frame {index} ({path}) skipped")
                continue
            indices.append(index)
            frames.append(image)
    elif sample.video is not None:
        cap = cv2.VideoCapture(sample.video)
        if not cap.isOpened():
            raise ClipError(f"unreadable video {sample.video}")
        index = 0
        while index <= sample.offset:
            ok, image = cap.read()
            if not ok:
                break
            if index >= sample.onset:
                indices.append(index)
                frames.append(image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
            index += 1
        cap.release()
        if index <= sample.offset:
            sample.warnings.append(f"video ended at frame {index - 1}, before offset {sample.offset}")
    else:
        raise ClipError("sample has neither frames nor a video")
    if len(frames) < MIN_FRAMES:
        raise ClipError(f"only {len(frames)} readable frame(s) between onset and offset")
    if frames and any(f.shape != frames[0].shape for f in frames):
        raise ClipError("frames of different sizes in one clip")
    return indices, frames
