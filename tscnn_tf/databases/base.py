"""What every database reader produces: `Sample`s, and the rows it had to drop and why."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

import cv2

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov")
MIN_FRAMES = 3  # onset, apex and offset

log = logging.getLogger("tscnn_tf")


@dataclasses.dataclass
class Sample:
    """One annotated clip. Frame indices are file-name integers, or 0-based for videos."""

    db: str
    subject: str
    clip: str
    label_name: str
    label: int
    onset: int
    offset: int
    apex: int | None = None             # the annotated apex; None when the sheet gives none
    frames: dict[int, str] | None = None  # frame index -> path, for frame folders
    video: str | None = None              # or a video file
    warnings: list[str] = dataclasses.field(default_factory=list)
    part: str = ""  # tells apart several expressions annotated in one clip (`<onset>-<offset>`)

    @property
    def sample_id(self) -> str:
        base = f"{self.db}/{self.subject}/{self.clip}"
        return f"{base}@{self.part}" if self.part else base

    def fingerprint(self) -> str:
        """What a record of this sample depends on besides the feature parameters: its label,
        frame range and apex, and its media (frame file names, or the video's name and size)."""
        if self.frames is not None:
            media = "|".join(f"{i}:{Path(p).name}" for i, p in self.frames.items())
        elif self.video is not None and Path(self.video).is_file():
            media = f"{Path(self.video).name}:{Path(self.video).stat().st_size}"
        else:
            media = ""
        digest = hashlib.sha1(media.encode()).hexdigest()[:8]
        return f"{self.label_name}|{self.onset}|{self.apex}|{self.offset}|{digest}"


@dataclasses.dataclass
class Dropped:
    """A row or clip that could not be used, with the reason."""

    subject: str
    clip: str
    reason: str     # the full text: where (sheet row, folder), what, and the values involved
    kind: str = ""  # the reason without row, values or paths: the key of the per-reason counts

    def __post_init__(self):
        self.kind = self.kind or self.reason

    @classmethod
    def of(cls, subject: str, clip: str, where: str, kind: str, detail: str = "") -> "Dropped":
        """A drop whose reason reads `<where>: <kind>[: <detail>]` and counts under `kind`."""
        return cls(subject, clip, f"{where}: {kind}" + (f": {detail}" if detail else ""), kind)


@dataclasses.dataclass
class Interval:
    """One ground-truth expression of a long video (0-based frames, inclusive)."""

    onset: int
    apex: int | None
    offset: int
    type: str                 # micro or macro
    label: str | None = None


@dataclasses.dataclass
class LongVideo:
    """A long recording (a video file or a frame folder) and its ground-truth intervals."""

    name: str
    subject: str
    path: str
    fps: float
    intervals: list[Interval]


@dataclasses.dataclass
class Database:
    """A reader's result: the usable samples and everything it dropped."""

    name: str
    class_names: list[str]
    samples: list[Sample]
    dropped: list[Dropped]
    fps: float | None = None  # frame rate, when the flagfile or the user gives it

    def content_fingerprint(self) -> str:
        """A cheap fingerprint of what the database holds: classes, and every sample's id,
        label, frame range, apex and media (no pixel is read)."""
        rows = sorted(f"{s.sample_id}={s.fingerprint()}" for s in self.samples)
        return hashlib.sha1("\n".join([",".join(self.class_names), *rows]).encode()).hexdigest()[:12]


def frame_number(path: str | Path) -> int | None:
    """The frame index in a file name: its last integer (`img46.jpg` -> 46, `006_05562` -> 5562)."""
    numbers = re.findall(r"\d+", Path(path).stem)
    return int(numbers[-1]) if numbers else None


def list_frames(folder: str | Path) -> dict[int, str]:
    """Image files of a folder keyed by the integer in their names (never sorted as text)."""
    frames: dict[int, str] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        index = frame_number(path)
        if index is not None:
            frames.setdefault(index, str(path))
    return dict(sorted(frames.items()))


def video_frame_count(path: str | Path) -> int:
    """Number of frames the container reports, 0 when the file cannot be opened."""
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def video_fps(path: str | Path) -> float | None:
    """The frame rate the container reports, None when unknown."""
    cap = cv2.VideoCapture(str(path))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    return fps if fps and fps > 0 else None


def parse_frame(value) -> tuple[int | None, str | None]:
    """A frame-number cell as (int, warning): `12`, `12.0` -> 12; a fractional `566.4` (as
    SAMM long-video sheets hold) -> 566 with a warning; (None, None) when empty or not a number."""
    exact = parse_int(value)
    if exact is not None:
        return exact, None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None, None
    if number != number or number in (float("inf"), float("-inf")):
        return None, None
    return int(round(number)), f"fractional frame number {str(value).strip()} read as {round(number)}"


def parse_int(value) -> int | None:
    """An annotation cell as an int (`12`, `12.0`, ` 12 `); None when empty or not a number."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


OUTSIDE = "outside the database folder"


class Scope:
    """Where a reader may look. By default nothing that resolves outside `root` (the database
    folder) is opened or listed: sheets, folders and frame files alike. `follow_symlinks`
    lets a release keep parts on another disk. Each refused sheet or folder is kept once in
    `refused`, a drop of kind `sheet outside the database folder` (or `folder ...`)."""

    def __init__(self, root, follow_symlinks: bool = False):
        self.root, self.follow_symlinks = Path(root), follow_symlinks
        self._resolved = self.root.resolve()
        self.refused: list[Dropped] = []

    def allows(self, path) -> bool:
        """Whether `path` may be opened or listed (checked before it is)."""
        return self.follow_symlinks or Path(path).resolve().is_relative_to(self._resolved)

    def admit(self, path, what: str) -> bool:
        """`allows(path)`, counting a refusal of the `what` (sheet, folder) otherwise."""
        if self.allows(path):
            return True
        if all(d.clip != str(path) for d in self.refused):
            self.refused.append(Dropped.of("", str(path), str(path), f"{what} {OUTSIDE}",
                                           f"links to {Path(path).resolve()}"))
        return False

    def outside_frames(self, paths) -> list[str]:
        """The frame files among `paths` (of an admitted folder) that link outside."""
        if self.follow_symlinks:
            return []
        return [str(p) for p in paths if os.path.islink(p) and not self.allows(p)]

    def note(self) -> str:
        """For a 'not found' error: what was not searched, and how to opt in."""
        if not self.refused:
            return ""
        return (f"; not searched, as they resolve outside {self.root}: "
                f"{', '.join(d.clip for d in self.refused)} (--follow_symlinks opts in)")


def scope_of(root, scope: "Scope | None" = None) -> Scope:
    """`scope`, or the default rule for `root` (nothing outside it)."""
    return scope if scope is not None else Scope(root)


def unsafe_name(text: str) -> bool:
    """A sheet cell that would act as a path (`..`, `/etc`, `a/b`) rather than one folder name."""
    return text in (".", "..") or any(c in text for c in "/\\\0") or Path(text).is_absolute()


def resolve_media(sample: Sample, clip_dir: Path, root: "Path | Scope") -> tuple[str, str] | None:
    """Attach frames (folder) or a video to `sample` and check onset..offset against them.

    Returns a drop reason as (kind, detail), or None when the sample is usable (possibly
    repaired, with warnings). Media (folder, frame files, video) that resolve outside `root`
    (the database folder, or a `Scope`) are neither listed nor read.
    """
    scope = root if isinstance(root, Scope) else Scope(root)
    if not scope.allows(clip_dir):
        return f"media {OUTSIDE}", str(clip_dir)
    if clip_dir.is_dir():
        frames = list_frames(clip_dir)
        in_range = [i for i in frames if sample.onset <= i <= sample.offset]
        if len(in_range) < MIN_FRAMES:
            return (f"fewer than {MIN_FRAMES} frames between onset and offset",
                    f"{len(in_range)} in {sample.onset}..{sample.offset} in {clip_dir}")
        linked = scope.outside_frames(frames[i] for i in in_range)
        if linked:
            return f"media {OUTSIDE}", f"{len(linked)} frame file(s) link out, e.g. {linked[0]}"
        if in_range[0] != sample.onset or in_range[-1] != sample.offset:
            sample.warnings.append(
                f"onset/offset frame missing; using frames {in_range[0]}..{in_range[-1]}")
            sample.onset, sample.offset = in_range[0], in_range[-1]
        sample.frames = {i: frames[i] for i in in_range}
    else:
        video = next((clip_dir.with_suffix(ext) for ext in VIDEO_EXTENSIONS + tuple(
            e.upper() for e in VIDEO_EXTENSIONS) if clip_dir.with_suffix(ext).is_file()), None)
        if video is None:
            return "no frame folder or video", str(clip_dir)
        if not scope.allows(video):
            return f"media {OUTSIDE}", str(video)
        count = video_frame_count(video)
        if count == 0:
            return "unreadable video", str(video)
        if sample.onset >= count:
            return "onset beyond the video", f"onset {sample.onset}, {count} frames"
        if sample.offset >= count:
            sample.warnings.append(f"offset {sample.offset} beyond the video; using {count - 1}")
            sample.offset = count - 1
        if sample.offset - sample.onset + 1 < MIN_FRAMES:
            return (f"fewer than {MIN_FRAMES} frames between onset and offset",
                    f"{sample.onset}..{sample.offset}")
        sample.video = str(video)
    if sample.apex is not None and not sample.onset <= sample.apex <= sample.offset:
        sample.warnings.append(
            f"given apex {sample.apex} outside onset..offset; it will be spotted instead")
        sample.apex = None
    return None


def class_selection(classes, default) -> list[str] | None:
    """The classes a reader keeps: `default` (the paper's) unless `classes` are given; an empty
    list keeps every label (as MEGC2019 needs from its parts)."""
    return None if classes == [] else list(classes or default)
