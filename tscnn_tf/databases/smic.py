"""SMIC-HS: `SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image000123.bmp` (or `SMIC_all_cropped/
HS/.../reg_image000123.bmp`). No sheet: the label is the folder, onset and offset are the first
and last frames, and the apex is always spotted. Paper: 3 classes, 164 samples, 16 subjects."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, Scope, class_selection, list_frames
from tscnn_tf.databases.custom import build_samples

CLASSES = ("negative", "positive", "surprise")
FRAME_DIRS = {"raw": ("SMIC_all_raw", "SMIC_raw"), "cropped": ("SMIC_all_cropped", "SMIC_cropped")}
CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}


def hs_root(data_dir, image_set: str = "auto", scope: Scope | None = None) -> Path:
    """The `HS` folder: under the raw/cropped release folder, or `data_dir` itself."""
    data_dir = Path(data_dir)
    scope = scope or Scope(data_dir)
    if data_dir.name.upper() == "HS" or any((p / "micro").is_dir() for p in data_dir.glob("s*")):
        return data_dir
    try:
        release = sheets.frames_root(data_dir, FRAME_DIRS, image_set, scope)
    except FileNotFoundError:
        release = data_dir
    hs = sheets.find_dir(release, ("HS",), scope=scope)
    if hs is None:
        raise FileNotFoundError(f"no SMIC HS folder (SMIC_all_raw/HS/s1/micro/...) under "
                                f"{data_dir}{scope.note()}")
    return hs


def folder_rows(data_dir, image_set: str = "auto", scope: Scope | None = None) -> list[dict]:
    """One row per clip folder, in the custom reader's form (a clip folder outside the scope
    is not listed: its row is dropped as media outside the database folder)."""
    scope = scope or Scope(data_dir)
    hs = hs_root(data_dir, image_set, scope)
    out = []
    for clip_dir in [clip for subject in sheets.subfolders(hs, scope, "s*")
                     for micro in sheets.subfolders(subject, scope, "micro")
                     for label in sheets.subfolders(micro, scope)
                     for clip in sorted(label.iterdir()) if clip.is_dir()]:
        subject, label = clip_dir.parts[-4], sheets.normalise_label(clip_dir.parts[-2])
        frames = list_frames(clip_dir) if scope.allows(clip_dir) else {}
        out.append({"subject": subject, "clip": clip_dir.name, "label": CODES.get(label, label),
                    "onset": str(min(frames, default=0)), "apex": "",
                    "offset": str(max(frames, default=0)), "media": clip_dir,
                    "where": f"folder {clip_dir.relative_to(hs)}"})
    return out


def read_smic(data_dir, classes=None, image_set: str = "auto", db: str = "smic",
              follow_symlinks: bool = False) -> Database:
    """The 3 classes of the folders (`classes=[]` keeps every label)."""
    selected = class_selection(classes, CLASSES)
    scope = Scope(data_dir, follow_symlinks)
    return build_samples(db, data_dir, folder_rows(data_dir, image_set, scope), selected,
                         CLASSES, scope)
