"""Reading a clip's grey frames from a frame folder or a video file, tolerating bad frames.

Frames are read one at a time (`iter_frames`), so a caller that keeps only what it needs (the
aligned face crops) never holds a clip's full-resolution frames in memory.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from tscnn_tf.databases.base import MIN_FRAMES, Sample
from tscnn_tf.errors import ToolkitError


class ClipError(ToolkitError):
    """A clip that cannot be used; the message is the reason recorded in the manifest."""


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def iter_frames(sample: Sample, warnings: list[str] | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """(index, grey uint8 frame) from onset to offset, one at a time. Unreadable frames are
    skipped with a warning appended to `warnings` (default `sample.warnings`)."""
    warnings = sample.warnings if warnings is None else warnings
    if sample.frames is not None:
        for index, path in sample.frames.items():
            image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            if image is None:
                warnings.append(f"unreadable frame {index} ({path}) skipped")
                continue
            yield index, image
    elif sample.video is not None:
        cap = cv2.VideoCapture(sample.video)
        if not cap.isOpened():
            raise ClipError("unreadable video")
        try:
            index = 0
            while index <= sample.offset:
                if index < sample.onset:
                    ok = cap.grab()  # no colour conversion for frames before the onset
                    image = None
                else:
                    ok, image = cap.read()
                if not ok:
                    warnings.append(f"video ended at frame {index - 1}, before offset "
                                    f"{sample.offset}")
                    break
                if image is not None:
                    yield index, to_gray(image)
                index += 1
        finally:
            cap.release()
    else:
        raise ClipError("sample has neither frames nor a video")


def read_frame(sample: Sample, index: int) -> np.ndarray | None:
    """One grey frame of the clip by its index, or None when it cannot be read."""
    if sample.frames is not None:
        path = sample.frames.get(index)
        return None if path is None else cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    one = Sample(sample.db, sample.subject, sample.clip, "", -1, index, index, video=sample.video)
    try:
        return next((frame for _, frame in iter_frames(one, [])), None)
    except ClipError:
        return None


def read_clip(sample: Sample) -> tuple[list[int], list[np.ndarray]]:
    """Grey uint8 frames from onset to offset with their indices; unreadable frames are skipped
    with a warning in `sample.warnings`. Raises ClipError when fewer than 3 frames remain."""
    pairs = list(iter_frames(sample))
    check_frames([frame for _, frame in pairs])
    return [i for i, _ in pairs], [frame for _, frame in pairs]


def check_frames(frames: list[np.ndarray]) -> None:
    """A clip needs at least 3 readable frames of one size."""
    if len(frames) < MIN_FRAMES:
        raise ClipError(f"only {len(frames)} readable frame(s) between onset and offset")
    if any(f.shape != frames[0].shape for f in frames):
        raise ClipError("frames of different sizes in one clip")


class Stream:
    """Grey frames of a long input as they arrive: a video file or a camera (decoded in a
    background thread, so decoding overlaps the caller's work), or a frame folder. Iterating
    yields (index, frame): the frame's own 0-based index in the input (the decoding order, or
    the position in the folder's listing sorted by the number in the file names); nothing but
    a short queue of frames is held.

    A frame that cannot be read is skipped, counted and warned about, and keeps its index: the
    frames after it are never renumbered (`index_of` maps the n-th frame read to its index).
    After iterating, `counts()` says how many frames were read, declared and unreadable, and
    `warnings` why some were not read."""

    QUEUE = 8  # frames decoded ahead: 66 MB of 4K grey at most
    LISTED = 10  # unreadable frames named one by one in the warnings; the rest are counted

    def __init__(self, video=None, frames=None, camera: int | None = None,
                 fps: float | None = None):
        if sum(x is not None for x in (video, frames, camera)) != 1:
            raise ClipError("give exactly one of --video, --frames and --camera")
        if fps is not None and not (math.isfinite(fps) and fps > 0):
            raise ClipError(f"the frame rate must be a positive number of frames per second, "
                            f"got {fps} (--fps)")
        self.video, self.folder, self.camera = video, frames, camera
        self.count = None  # frames the container or the folder declares (None: a camera)
        self.read = 0
        self.skipped: list[int] = []  # indices of unreadable frames, increasing
        self.warnings: list[str] = []
        if frames is not None and not Path(frames).is_dir():
            raise ClipError(f"no frame folder {frames}")
        if video is not None and not Path(video).is_file():
            raise ClipError(f"no video file {video}")
        from tscnn_tf.databases.base import IMAGE_EXTENSIONS
        stills = IMAGE_EXTENSIONS + (".tif", ".tiff", ".webp", ".gif")
        if video is not None and Path(video).suffix.lower() in stills:
            # FFmpeg opens a still image as a one-frame "video" of 25 fps declaring -2^63 frames.
            raise ClipError(f"{video} is a still image, not a video: give a video file, or a "
                            "folder of frames with --frames and --fps")
        if frames is not None:
            from tscnn_tf.databases.base import list_frames
            self.paths = list_frames(frames)
            if not self.paths:
                raise ClipError(f"no image frames in {frames}")
            self.count = len(self.paths)
            self.fps = fps
        else:
            source = video if video is not None else camera
            cap = cv2.VideoCapture(str(source) if video is not None else int(camera))
            if not cap.isOpened():
                raise ClipError(f"cannot open {'video ' + str(video) if video is not None else 'camera ' + str(camera)}")
            reported = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps or (reported if reported and math.isfinite(reported) and reported > 0
                               else None)
            if video is not None:
                declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
                self.count = declared if declared > 0 else None  # not declared: unknown
            self._cap = cap
        if not self.fps:
            raise ClipError("the input has no frame rate: give --fps")

    def index_of(self, position):
        """The input's own index of the `position`-th frame read (0-based; an int or an array):
        the position plus the unreadable frames before it."""
        if not self.skipped:
            return position
        shifted = np.asarray(self.skipped) - np.arange(len(self.skipped))
        index = position + np.searchsorted(shifted, position, side="right")
        return int(index) if np.ndim(index) == 0 else index

    def counts(self) -> dict:
        """frames_read, frames_declared (None for a camera) and frames_unreadable: listed or
        declared frames that were not read (corrupt images, a video cut short)."""
        missing = max(self.count - self.read, 0) if self.count is not None else 0
        return {"frames_read": self.read, "frames_declared": self.count,
                "frames_unreadable": missing}

    def _unreadable(self, index: int, path: str) -> None:
        self.skipped.append(index)
        if len(self.skipped) <= self.LISTED:
            self.warnings.append(f"unreadable frame {index} ({path}) skipped; the frames after "
                                 "it keep their numbers")

    def _ended(self) -> None:
        """The warnings of a finished iteration: frames declared but not read."""
        if self.folder is not None and len(self.skipped) > self.LISTED:
            self.warnings.append(f"{len(self.skipped)} of the {self.count} frames in "
                                 f"{self.folder} are unreadable and were skipped")
        elif self.video is not None and self.count is not None and self.read < self.count:
            self.warnings.append(f"video {self.video} ended after {self.read} of the {self.count} "
                                 "frames its container declares (cut short or damaged)")
        elif self.camera is not None:
            self.warnings.append(f"camera {self.camera} stopped delivering frames after "
                                 f"{self.read} frame(s)")

    def __iter__(self):
        self.read, self.skipped, self.warnings = 0, [], []
        if self.folder is not None:
            for index, path in enumerate(self.paths.values()):
                image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
                if image is None:
                    self._unreadable(index, path)
                    continue
                self.read += 1
                yield index, image
            self._ended()
            return
        import queue
        import threading
        frames: queue.Queue = queue.Queue(self.QUEUE)
        stop = threading.Event()

        def decode():
            index = 0
            try:
                while not stop.is_set():
                    ok, image = self._cap.read()
                    if not ok:
                        break
                    frames.put((index, to_gray(image)))
                    index += 1
            finally:
                frames.put(None)

        worker = threading.Thread(target=decode, daemon=True)
        worker.start()
        try:
            while (item := frames.get()) is not None:
                self.read += 1
                yield item
            self._ended()
        finally:
            stop.set()
            while worker.is_alive():  # unblock a decoder waiting on a full queue
                try:
                    frames.get_nowait()
                except queue.Empty:
                    pass
                worker.join(timeout=0.05)
            self._cap.release()
