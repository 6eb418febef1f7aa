"""The MEGC2019 composite as a user has it: `combined_3class_gt.csv` written in the real list's
naming (`casme2,sub01,EP02_01f,1`, `smic,s01,s01_ne_01,0`, `samm,006,006_1_2,0`) over CASME II,
SMIC-HS and SAMM trees in their release layouts (SMIC-HS folders unpadded: `HS/s1/micro/
negative/s1_ne_01/`). CASME II sub17 holds the two clips `EP05_03` (happiness, frames 21-101)
and `EP05_03f` (repression, frames 11-76), both listed. Full size: 442 rows over 68 subjects.
"""
from __future__ import annotations

from pathlib import Path

from tests.db_fixtures import spread, write_frames, write_sheet

# The composite's classes per part (MEGC2019): CASME II 145 rows / 24 subjects, SMIC-HS 164 / 16,
# SAMM 133 / 28; 250 negative, 109 positive, 83 surprise.
CASME2_ROWS = {"disgust": 60, "repression": 28, "happiness": 32, "surprise": 25}
SMIC_ROWS = {"negative": 70, "positive": 51, "surprise": 43}
SAMM_ROWS = {"anger": 57, "contempt": 12, "disgust": 9, "fear": 8, "sadness": 6,
             "happiness": 26, "surprise": 15}
CLASS = {"happiness": 1, "positive": 1, "surprise": 2}  # every other label is negative (0)
CASME2_SUBJECTS = [n for n in range(1, 27) if n not in (18, 21)]  # 18 and 21: `others` only
SMIC_SUBJECTS = [n for n in range(1, 21) if n not in (7, 10, 16, 17)]
SAMM_SUBJECTS = list(range(6, 34))
SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}
TWINS = {"EP05_03": ("happiness", 21, 101), "EP05_03f": ("repression", 11, 76)}


def class_of(label: str) -> int:
    return CLASS.get(label, 0)


def casme2_part(root: Path, counts: dict, subjects: list, twins: dict,
                no_folder=()) -> list[list]:
    """`CASME2_RAW_selected/subNN/<clip>/img<N>.jpg` + `CASME2-coding-20140508.xlsx`; returns
    the composite rows. Sheet and folder names agree; the composite writes row 3 without its
    trailing f and row 4 with one the clip lacks. `twins`: sub17's clips {name: (label, onset,
    offset)}, a frame every 10; those in `no_folder` are in the sheet but have no frames."""
    frames = root / "CASME2_RAW_selected"
    rows = [["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", None,
             "Action Units", "Estimated Emotion"]]
    composite = []
    named = [(s, label, f"EP{k:02d}_{10 + i % 7}" + ("f" if i % 3 == 0 else ""))
             for i, (s, label, k) in enumerate(spread(counts, subjects))]
    named += [(s, "others", f"EP{90 + s}_01") for s in (18, 21, 1, 2)]  # not in the composite
    for i, (subject, label, clip) in enumerate(named):
        onset = 40 + i
        write_frames(frames / f"sub{subject:02d}" / clip, range(onset, onset + 3),
                     lambda n: f"img{n}.jpg")
        rows.append([subject, clip, onset, onset + 1, onset + 2, None, "AU4", label])
        if label != "others":
            shown = {3: clip[:-1], 4: clip + "f"}.get(i, clip)
            composite.append(["casme2", f"sub{subject:02d}", shown, class_of(label)])
    for clip, (label, onset, offset) in twins.items():
        numbers = sorted({*range(onset, offset, 10), offset})
        if clip not in no_folder:
            write_frames(frames / "sub17" / clip, numbers, lambda n: f"img{n}.jpg")
        rows.append([17, clip, onset, numbers[len(numbers) // 2], offset, None, "AU12", label])
        composite.append(["casme2", "sub17", clip, class_of(label)])
    write_sheet(root / "CASME2-coding-20140508.xlsx", rows)
    return composite


def smic_part(root: Path, counts: dict, subjects: list, width: int) -> list[list]:
    """`SMIC_all_raw/HS/s<N>/micro/<label>/s<N>_<code>_<k>/image<6 digits>.bmp`; the composite
    names subjects and clips with `width`-digit subject numbers (2: the real list)."""
    hs = root / "SMIC_all_raw" / "HS"
    composite, per_code = [], {}
    for i, (subject, label, _) in enumerate(spread(counts, subjects)):
        code = SMIC_CODES[label]
        k = per_code[subject, code] = per_code.get((subject, code), 0) + 1
        start = 100000 + 37 * i
        write_frames(hs / f"s{subject}" / "micro" / label / f"s{subject}_{code}_{k:02d}",
                     range(start, start + 3), lambda n: f"image{n:06d}.bmp")
        name = f"s{subject:0{width}d}"
        composite.append(["smic", name, f"{name}_{code}_{k:02d}", class_of(label)])
    (hs / "s1" / "micro" / "negative" / "s1_ne_99").mkdir(parents=True)  # no frames
    return composite


def samm_part(root: Path, counts: dict, subjects: list) -> list[list]:
    """`SAMM/NNN/NNN_k_m/NNN_<frame>.jpg` + `SAMM_Micro_FACS_Codes_v2.xlsx` with note rows above
    the header; `Other` rows are not in the composite."""
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
              "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
              "Objective Classes", "Notes"]
    rows = [["SAMM micro-movement FACS codes"], [None], header]
    composite = []
    for i, (subject, label, k) in enumerate(spread({**counts, "other": 3}, subjects)):
        clip, onset = f"{subject:03d}_{k}_{i % 5 + 1}", 5562 + i
        write_frames(root / "SAMM" / f"{subject:03d}" / clip, range(onset, onset + 3),
                     lambda n: f"{subject:03d}_{n:05d}.jpg")
        rows.append([f"{subject:03d}", clip, 1, onset, onset + 1, onset + 2, 3, "Micro - 1/2",
                     "AU4", label.capitalize(), "VII", ""])
        if label != "other":
            composite.append(["samm", f"{subject:03d}", clip, class_of(label)])
    write_sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
    return composite


BAD_ROWS = [["casme2", "sub01", "EP77_01", 0],    # no such clip
            ["smic", "s01", "s01_ne_99", 0],      # a clip folder without frames
            ["samm", "006", "006_1_1", 0]]        # the same clip as an earlier row


def megc2019_release(root: Path, smic_width: int = 2, casme2=CASME2_ROWS, smic=SMIC_ROWS,
                     samm=SAMM_ROWS, twins=TWINS, no_folder=(), bad_rows=BAD_ROWS) -> dict:
    """Build the three trees and the composite; returns the expected figures."""
    counts = dict(casme2)
    for label, *_ in twins.values():
        counts[label] -= 1
    rows = (casme2_part(root, counts, CASME2_SUBJECTS, twins, no_folder)
            + smic_part(root, smic, SMIC_SUBJECTS, smic_width)
            + samm_part(root, samm, SAMM_SUBJECTS))
    write_sheet(root / "combined_3class_gt.csv", rows + list(bad_rows))
    per_class = {"negative": 0, "positive": 0, "surprise": 0}
    for row in rows:
        per_class[list(per_class)[row[3]]] += 1
    return {"rows": len(rows) + len(bad_rows), "num_samples": len(rows),
            "num_subjects": len({(r[0], r[1]) for r in rows}),
            "per_class": per_class,
            "per_db": {db: (sum(r[0] == db for r in rows), len({r[1] for r in rows if r[0] == db}))
                       for db in ("casme2", "smic", "samm")},
            "smic_below_10": sum(r[0] == "smic" and int(r[1][1:]) < 10 for r in rows)}
