"""SMIC-HS: `SMIC_all_raw/HS/s1/micro/negative/s1_ne_01/image000123.bmp` (or `SMIC_all_cropped/
HS/.../reg_image000123.bmp`). No sheet: the label is the folder, onset and offset are the first
and last frames, and the apex is always spotted. Paper: 3 classes, 164 samples, 16 subjects."""
from __future__ import annotations

from pathlib import Path

from tscnn_tf.databases import sheets
from tscnn_tf.databases.base import Database, class_selection, list_frames
from tscnn_tf.databases.custom import build_samples

CLASSES = ("negative", "positive", "surprise")
FRAME_DIRS = {"raw": ("SMIC_all_raw", "SMIC_raw"), "cropped": ("SMIC_all_cropped", "SMIC_cropped")}
CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}


def hs_root(data_dir, image_set: str = "auto") -> Path:
    """The `HS` folder: under the raw/cropped release folder, or `data_dir` itself."""
    data_dir = Path(data_dir)
    if data_dir.name.upper() == "HS" or any(data_dir.glob("s*/micro")):
        return data_dir
    try:
        release = sheets.frames_root(data_dir, FRAME_DIRS, image_set)
    except FileNotFoundError:
        release = data_dir
    hs = sheets.find_dir(release, ("HS",))
    if hs is None:
        raise FileNotFoundError(f"no SMIC HS folder (SMIC_all_raw/HS/s1/micro/...) under {data_dir}")
    return hs


def folder_rows(data_dir, image_set: str = "auto") -> list[dict]:
    """One row per clip folder, in the custom reader's form."""
    hs = hs_root(data_dir, image_set)
    out = []
    for clip_dir in sorted(hs.glob("s*/micro/*/*")):
        if not clip_dir.is_dir():
            continue
        subject, label = clip_dir.parts[-4], sheets.normalise_label(clip_dir.parts[-2])
        frames = list_frames(clip_dir)
        out.append({"subject": subject, "clip": clip_dir.name, "label": CODES.get(label, label),
                    "onset": str(min(frames, default=0)), "apex": "",
                    "offset": str(max(frames, default=0)), "media": clip_dir,
                    "where": f"folder {clip_dir.relative_to(hs)}"})
    return out


def read_smic(data_dir, classes=None, image_set: str = "auto", db: str = "smic") -> Database:
    """The 3 classes of the folders (`classes=[]` keeps every label)."""
    selected = class_selection(classes, CLASSES)
    return build_samples(db, data_dir, folder_rows(data_dir, image_set), selected, CLASSES)
