"""Tiny fixtures in the exact on-disk formats of the real releases (see databases.md).

Each builder writes 3 tiny frames per clip, the annotation sheet in the release's format with
its quirks, and a few bad rows. It returns the expected dry-run figures.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np

FRAME = np.full((8, 8), 128, np.uint8)


def write_frames(folder: Path, numbers, name) -> None:
    """Frames `name(n)` for each frame number n (a callable giving the file name)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / name(n)), FRAME)


def write_sheet(path: Path, rows: list[list], sheets: dict[str, list[list]] | None = None) -> Path:
    """rows (and extra named sheets) as xlsx, xls or csv, cell types as given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    all_sheets = {**({"Sheet1": rows} if rows is not None else {}), **(sheets or {})}
    if path.suffix == ".csv":
        path.write_text("\n".join(",".join("" if c is None else str(c) for c in r) for r in rows)
                        + "\n")
    elif path.suffix == ".xls":
        import xlwt
        book = xlwt.Workbook()
        for name, sheet_rows in all_sheets.items():
            sheet = book.add_sheet(name)
            for i, r in enumerate(sheet_rows):
                for j, c in enumerate(r):
                    if c is not None:
                        sheet.write(i, j, c)
        book.save(str(path))
    else:
        import openpyxl
        book = openpyxl.Workbook()
        book.remove(book.active)
        for name, sheet_rows in all_sheets.items():
            sheet = book.create_sheet(name)
            for r in sheet_rows:
                sheet.append(list(r))
        book.save(path)
    return path


def spread(counts: dict[str, int], subjects: list) -> list[tuple]:
    """(subject, label, k) for every sample, dealing labels round-robin over subjects so every
    subject gets at least one sample."""
    labels = [label for label, n in counts.items() for _ in range(n)]
    cycle = itertools.cycle(subjects)
    per_subject: dict = {}
    out = []
    for label in labels:
        subject = next(cycle)
        per_subject[subject] = per_subject.get(subject, 0) + 1
        out.append((subject, label, per_subject[subject]))
    return out


CASME2_PAPER = {"happiness": 32, "surprise": 25, "disgust": 64, "repression": 27, "others": 99}


def casme2(root: Path, counts=CASME2_PAPER, subjects=26, sheet="CASME2-coding-20140508.xlsx",
           cropped=False, bad_rows=True, extra_labels=(("fear", 2), ("sadness", 7))) -> dict:
    """`CASME2_RAW_selected/CASME2_RAW_selected/subNN/EPxx_yy[f]/img<N>.jpg` + the coding sheet.

    Quirks: doubled folder, Subject as int and as text, `/` apexes, an apex outside
    onset..offset, label case and spaces, clip folders with and without the trailing `f`,
    unnamed blank columns and an `Objective Classes` column.
    """
    frames = root / ("Cropped" if cropped else "CASME2_RAW_selected/CASME2_RAW_selected")
    prefix = "reg_img" if cropped else "img"
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", None,
              "Action Units", "Estimated Emotion", "Objective Classes"]
    rows = [header]
    samples = spread({**counts, **dict(extra_labels)}, list(range(1, subjects + 1)))
    for i, (subject, label, k) in enumerate(samples):
        clip = f"EP{k:02d}_{i % 7:02d}"
        onset = 40 + i
        folder = clip + "f" if i % 3 == 0 else clip           # sheet name lacks the folder's f
        sheet_clip = clip + "f" if i % 5 == 1 else clip        # or the sheet has it, the folder not
        folder = clip if i % 5 == 1 else folder
        write_frames(frames / f"sub{subject:02d}" / folder, range(onset, onset + 3),
                     lambda n: f"{prefix}{n}.jpg")
        apex = "/" if i % 11 == 0 else (onset + 9 if i == 4 else onset + 1)  # i=4: outside
        cell_subject = subject if i % 2 else f"{subject:02d}"
        shown = {0: label.capitalize(), 1: f" {label} ", 2: label}[i % 3]
        rows.append([cell_subject, sheet_clip, onset, apex, onset + 2, None, "AU4", shown, "3"])
    expected_drops = sum(n for _, n in extra_labels)
    if bad_rows:
        write_frames(frames / "sub01" / "EP99_01", range(5, 8), lambda n: f"{prefix}{n}.jpg")
        rows += [[1, "EP99_01", 5, 6, 7, None, "", "contempt", ""],   # unknown label
                 [1, "EP99_02", 5, 6, 7, None, "", "others", ""],     # no clip folder
                 [1, "EP99_01", 9, 6, 7, None, "", "others", ""],     # onset after offset
                 [None, None, None, None, None, None, None, None, None]]  # blank row
        expected_drops += 3
    write_sheet(root / sheet, rows)
    return {"num_samples": sum(counts.values()), "num_subjects": subjects,
            "per_class": dict(counts), "dropped": expected_drops}


SMIC_PAPER = {"negative": 70, "positive": 51, "surprise": 43}
SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur"}


def smic(root: Path, counts=SMIC_PAPER, subjects=16, cropped=False) -> dict:
    """`SMIC_all_raw/HS/s<N>/micro/<label>/s<N>_<code>_<k>/image<6 digits>.bmp`; subjects
    numbered 1..20 with gaps, one clip missing a frame, one empty clip folder."""
    release = root / ("SMIC_all_cropped" if cropped else "SMIC_all_raw") / "HS"
    prefix = "reg_image" if cropped else "image"
    numbers = [n for n in range(1, 21) if n not in (7, 10, 16, 17)][:subjects]
    for i, (subject, label, k) in enumerate(spread(counts, numbers)):
        start = 100000 + 37 * i
        frames = [start, start + 1, start + 3] if i == 5 else range(start, start + 3)  # a gap
        clip = f"s{subject}_{SMIC_CODES[label]}_{k:02d}"
        write_frames(release / f"s{subject}" / "micro" / label / clip, frames,
                     lambda n: f"{prefix}{n:06d}.bmp")
    (release / "s1" / "micro" / "negative" / "s1_ne_99").mkdir(parents=True)  # no frames
    return {"num_samples": sum(counts.values()), "num_subjects": len(numbers),
            "per_class": dict(counts), "dropped": 1}


SAMM_PAPER = {"anger": 57, "contempt": 12, "happiness": 26, "surprise": 15, "others": 26}


def samm(root: Path, counts=SAMM_PAPER, subjects=28, notes_above_header=True,
         extra_labels=(("disgust", 9), ("fear", 8), ("sadness", 6))) -> dict:
    """`SAMM/SAMM/NNN/NNN_k_m/NNN_<frame>.jpg` + `SAMM_Micro_FACS_Codes_v2.xlsx` with note rows
    above the header; Subject as text and int; `Other`/`Others`; frame numbers of 4-5 digits;
    a few apexes outside onset..offset."""
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
              "Offset Frame", "Duration", "Micro", "Action Units", "Estimated Emotion",
              "Objective Classes", "Notes"]
    rows = ([["SAMM micro-movement FACS codes"], ["Notes: frames are 1-based"], [None]]
            if notes_above_header else []) + [header]
    numbers = list(range(6, 6 + subjects))
    for i, (subject, label, k) in enumerate(spread({**counts, **dict(extra_labels)}, numbers)):
        clip = f"{subject:03d}_{k}_{i % 5 + 1}"
        onset = 5562 + i if i % 4 else 812 + i  # frame numbers of 5 and of 3-4 digits
        write_frames(root / "SAMM" / "SAMM" / f"{subject:03d}" / clip, range(onset, onset + 3),
                     lambda n: f"{subject:03d}_{n:05d}.jpg" if n > 5000 else f"{subject:03d}_{n}.jpg")
        apex = onset + 7 if i % 40 == 3 else onset + 1
        shown = {"others": "Other" if i % 2 else "Others"}.get(label, label.capitalize())
        rows.append([f"{subject:03d}" if i % 2 else subject, clip, 1, onset, apex, onset + 2, 3,
                     "Micro - 1/2", "AU4", shown, "VII", ""])
    write_sheet(root / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
    return {"num_samples": sum(counts.values()), "num_subjects": subjects,
            "per_class": dict(counts), "dropped": sum(n for _, n in extra_labels)}


CASME_PAPER = {"tense": 69, "disgust": 44, "repression": 38, "surprise": 20}


def casme(root: Path, counts=CASME_PAPER,
          extra_labels=(("happiness", 5), ("comtempt", 2), ("fear", 2), ("sadness", 6))) -> dict:
    """Sections A (subjects 1-7, `EP01_5-12.jpg`) and B (8-19, `img12.jpg`) with `Section A.xls`
    and `Section B.xls`; `tense`/`tenseness`, `comtempt`, ApexF1 `/` with ApexF2 given; the
    `Onset` and `Total` columns (durations in ms); as in the real sheets, one clip folder with
    two expressions (sub01 `EP01_12` at 73-91 and 163-177) and `\\` where an offset or ApexF2
    was not coded (three of the tense rows below)."""
    header = ["Subject", "Filename", "OnsetF", "ApexF1", "ApexF2", "OffsetF", "Onset", "Total",
              "AU", "Emotion"]
    sections = {"A": [header], "B": [header]}
    counts = dict(counts)
    counts["tense"] -= 3  # the three rows of the real-sheet quirks below are tense
    folder = root / "CASME_A" / "Section A" / "sub01" / "EP01_12"
    write_frames(folder, range(60, 200), lambda n: f"EP01_12-{n}.jpg")
    sections["A"] += [[1, "EP01_12", 73, 80, "\\", 91, 50, 300, "4", "tense"],
                      [1, "EP01_12", 163, 170, "\\", 177, 67, 233, "4", "tense"],
                      [1, "EP01_12", 190, 193, "\\", "\\", 50, "", "4", "tense"]]
    for i, (subject, label, k) in enumerate(spread({**counts, **dict(extra_labels)},
                                                   list(range(1, 20)))):
        section = "A" if subject <= 7 else "B"
        clip = f"EP{k:02d}_{i % 9 + 1}"
        onset = 10 + i
        folder = root / f"CASME_{section}" / f"Section {section}" / f"sub{subject:02d}" / clip
        write_frames(folder, range(onset, onset + 3),
                     (lambda n, c=clip: f"{c}-{n}.jpg") if section == "A" else (lambda n: f"img{n}.jpg"))
        shown = "tenseness" if label == "tense" and i % 2 else label
        apex1, apex2 = ("/", onset + 1) if i % 6 == 0 else (onset + 1, "")
        sections[section].append([subject, clip, onset, apex1, apex2, onset + 2, 50, 200, "4",
                                  shown])
    for section, rows in sections.items():
        write_sheet(root / f"Section {section}.xls", rows)
    counts["tense"] += 3
    return {"num_samples": sum(counts.values()), "num_subjects": 19,
            "per_class": dict(counts), "dropped": sum(n for _, n in extra_labels)}


# naming rule1 of the real release: participant k of the code sheet -> its folder.
CASME_SQ_FOLDERS = ("s15", "s16", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27",
                    "s29", "s30", "s31", "s32", "s33", "s34", "s35", "s36", "s37", "s38", "s40")
CASME_SQ_STEMS = {"0101": "disgust1", "0102": "disgust2", "0401": "anger1", "0402": "anger2",
                  "0502": "happy1", "0503": "happy2", "0505": "happy3", "0507": "happy4",
                  "0508": "happy5"}


def casme_sq(root: Path, videos: int = 95, rows_total: int = 357, micro: int = 57,
             offset_zero: int = 44) -> dict:
    """`rawpic/s15/15_0101disgustingteeth/img1.jpg` + `CAS(ME)^2code_final.xlsx` as the real
    release has it: code sheet `CASFEcode_final` first, no header, participant numbers 1..22;
    `naming rule1` without header as (folder number, folder, participant), so participant 4 is
    `s20` and participant 20 is `s37` (a reader taking the participant as the folder number
    reads another person's frames); `naming rule2` codes that load as ints (0101 -> 101);
    video folders `<NN>_<code><description>`; 357 rows over 95 videos, 57 micro and 300 macro,
    44 macro rows with offset 0 ("use the apex") and one row with apex 0 (spotted)."""
    participants = {k: folder for k, folder in enumerate(CASME_SQ_FOLDERS, start=1)}
    rule1 = [[int(f[1:]), f, k] for k, f in participants.items()]
    rule2 = [[int(code), name] for code, name in CASME_SQ_STEMS.items()]
    video_list = [(k, code) for code in CASME_SQ_STEMS for k in participants][:videos]
    rows, per_video = [], {}
    for i in range(rows_total):
        k, code = video_list[i % len(video_list)]
        n = per_video[k, code] = per_video.get((k, code), 0) + 1
        onset = 10 + 30 * (n - 1)
        kind = "micro-expression" if i < micro else "macro-expression"
        apex, offset = onset + 3, onset + 8
        if micro <= i < micro + offset_zero:
            offset = 0
        if i == rows_total - 1:
            apex = 0
        rows.append([k, f"{CASME_SQ_STEMS[code]}_{n}", onset, apex, offset, "AU4+L10",
                     "negative", kind, "x"])
    for (k, code), n in per_video.items():
        folder = participants[k]
        write_frames(root / "rawpic" / folder / f"{int(folder[1:])}_{code}{CASME_SQ_STEMS[code]}"
                     f"video", range(1, 10 + 30 * n), lambda m: f"img{m}.jpg")
    write_sheet(root / "CAS(ME)^2code_final.xlsx", None, {"CASFEcode_final": rows,
                                                       "naming rule1": rule1,
                                                       "naming rule2": rule2})
    by_label = {"anger": 0, "happy": 0, "disgust": 0}
    by_label_micro = dict(by_label)
    for i, row in enumerate(rows):
        label = row[1].rstrip("_0123456789")
        by_label[label] += 1
        by_label_micro[label] += i < micro
    return {"all": {"num_samples": rows_total, "num_subjects": 22, "per_class": by_label},
            "micro": {"num_samples": micro, "num_subjects": len({r[0] for r in rows[:micro]}),
                      "per_class": by_label_micro}}


MEGC_PARTS = {"casme2": ({"disgust": 60, "repression": 28, "happiness": 32, "surprise": 25}, 24),
              "smic": (SMIC_PAPER, 16),
              "samm": ({"anger": 57, "contempt": 12, "disgust": 9, "fear": 8, "sadness": 6,
                        "happiness": 26, "surprise": 15}, 28)}
MEGC_CLASS = {"disgust": 0, "repression": 0, "anger": 0, "contempt": 0, "fear": 0, "sadness": 0,
              "negative": 0, "happiness": 1, "positive": 1, "surprise": 2}


def megc2019(root: Path) -> dict:
    """The three databases under one folder plus `combined_3class_gt.csv` listing 442 samples
    over 68 subjects, with subject ids written as in the MEGC file, and three bad rows."""
    casme2(root / "CASME2", MEGC_PARTS["casme2"][0], MEGC_PARTS["casme2"][1], bad_rows=False,
           extra_labels=(("others", 4),))
    smic(root / "SMIC")
    samm(root / "SAMM_release", MEGC_PARTS["samm"][0], MEGC_PARTS["samm"][1], extra_labels=())
    from tscnn_tf.databases import read_casme2, read_samm, read_smic
    rows = []
    for dataset, reader in (("casme2", read_casme2), ("smic", read_smic), ("samm", read_samm)):
        for s in reader(root, classes=[]).samples:
            if s.label_name in MEGC_CLASS:
                subject = {"casme2": s.subject[3:], "smic": s.subject, "samm": s.subject}[dataset]
                rows.append([dataset, subject, s.clip, MEGC_CLASS[s.label_name]])
    rows += [["casme2", "01", "EP77_01", 0],   # no such clip
             ["casmeX", "01", "EP01_01", 1],   # unknown dataset
             ["smic", "s1", "s1_ne_01", 7]]    # unknown class
    write_sheet(root / "combined_3class_gt.csv", rows)
    return {"num_samples": 442, "num_subjects": 68, "dropped": 3}


CASME3_EMOTIONS = ("happy", "surprise", "sad", "disgust", "fear", "anger", "others")


def casme3(root: Path, rows_total: int = 860, subjects: int = 94, videos: int = 463) -> dict:
    """`part_A/spNO.<k>/<task>/color/<N>.jpg` + `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`
    (sheet `label`, header row 1) as the real release: 860 rows, 94 subjects, 463 videos with
    one or two expressions each; frames 1-7 missing at the start of every video and more
    missing later (only the frames around each expression exist, and one annotated apex frame
    is absent); quirks: offset 0 (2 rows, dropped), apex 0 (1), apex < onset (2),
    onset == apex (55; all four spotted), `Others` written capitalised 3 times."""
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows, per_class = [header], {e: 0 for e in CASME3_EMOTIONS}
    letters = "abcdefghijklm"
    for i in range(rows_total):
        v = i % videos
        subject, task = f"spNO.{v % subjects + 1}", letters[v // subjects]
        n = i // videos
        onset = 20 + 40 * n
        apex, offset = onset + 3, onset + 8
        if i < 2:
            offset = 0
        elif i == 2:
            apex = 0
        elif i < 5:
            apex = onset - 5
        elif i < 60:
            apex = onset
        emotion = CASME3_EMOTIONS[i % 7]
        shown = "Others" if emotion == "others" and i < 30 else emotion
        rows.append([subject, task, onset, apex, offset, "AU4+L10", "1", shown])
        numbers = [m for m in range(onset - 1, onset + 10) if not (i == 70 and m == apex)]
        write_frames(root / "part_A" / subject / task / "color", numbers, lambda m: f"{m}.jpg")
        if i >= 2:
            per_class[emotion] += 1
    write_sheet(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", None, {"label": rows})
    three = {"negative": sum(per_class[e] for e in ("sad", "disgust", "fear", "anger")),
             "positive": per_class["happy"], "surprise": per_class["surprise"]}
    return {"7": {"num_samples": rows_total - 2, "num_subjects": subjects, "per_class": per_class},
            "3": {"num_samples": sum(three.values()), "per_class": three},
            "4": {"num_samples": sum(three.values()) + per_class["others"]}}


def casme3_c(root: Path, rows_total: int = 165, subjects: int = 30) -> dict:
    """`CAS(ME)3_part_C_ME.xlsx` (sub, count, onset, offset, au, emotion; no apex) and frames
    `<sub:02d>/<count>/color/<N>.jpg`."""
    rows = [["sub", "count", "onset", "offset", "au", "emotion"]]
    for i in range(rows_total):
        sub, count = i % subjects + 1, i // subjects + 1
        onset = 10 + 5 * count
        rows.append([sub, count, onset, onset + 6, "12", CASME3_EMOTIONS[i % 7]])
        write_frames(root / f"{sub:02d}" / str(count) / "color", range(onset, onset + 7),
                     lambda m: f"{m}.jpg")
    write_sheet(root / "CAS(ME)3_part_C_ME.xlsx", rows)
    return {"num_samples": rows_total, "num_subjects": subjects}


def mmew(root: Path) -> dict:
    """`S03/happiness/S03-01-002/1.jpg` + `MMEW_Micro_Exp.xlsx`; emotion folders in any case,
    `Other` for others, a blank `remarks` column, one row without frames."""
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
              "Estimated Emotion", "remarks"]
    rows = [header]
    emotions = ("happiness", "surprise", "anger", "disgust", "fear", "sadness", "others")
    for i in range(21):
        subject, emotion = f"S{i % 3 + 1:02d}", emotions[i % 7]
        clip = f"{subject}-{i % 7 + 1:02d}-{i:03d}"
        folder = emotion.capitalize() if i % 2 else emotion
        write_frames(root / subject / folder / clip, range(1, 12), lambda m: f"{m}.jpg")
        rows.append([subject, clip, 2, 5, 9, "AU4", "Other" if emotion == "others" else emotion,
                     None])
    rows.append(["S01", "S01-09-999", 2, 5, 9, "AU1", "happiness", "no frames"])
    write_sheet(root / "MMEW_Micro_Exp.xlsx", rows)
    return {"num_samples": 21, "num_subjects": 3, "dropped": 1}


def fourdme(root: Path) -> dict:
    """`gray_micro/<sub>/<fold>/` + `4DME_Labelling_Micro_release v1.xlsx` with AU markers."""
    rows = [["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"]]
    emotions = ("negative", "positive", "surprise", "repression", "others")
    for i in range(15):
        sub, fold = f"sub{i % 5 + 1:02d}", f"fold{i:02d}"
        write_frames(root / "gray_micro" / sub / fold, range(0, 10), lambda m: f"img{m}.jpg")
        rows.append([sub, fold, emotions[i % 5].capitalize(), 1, 4, 8, "AU4(2)+AU7"])
    write_sheet(root / "4DME_Labelling_Micro_release v1.xlsx", rows)
    return {"num_samples": 15, "num_subjects": 5}


def samm_lv(root: Path, videos: int = 147, subjects: int = 30, micro: int = 159,
            macro: int = 343) -> dict:
    """`SAMM_longvideos/006_1/006_1_00001.jpg` + `SAMM_LongVideos_V2_Release.xlsx` as released:
    9 note rows, the header on row 10, Filename `<video>_<k>`, Type `Macro` / `Micro - 1/2`,
    fractional frame numbers (566.4) in macro rows, apex -1 in six rows."""
    names = [f"{6 + v % subjects:03d}_{v // subjects + 1}" for v in range(videos)]
    for name in names:
        write_frames(root / "SAMM_longvideos" / name, range(1, 4), lambda m, n=name: f"{n}_{m:05d}.jpg")
    rows = [[f"note {k}"] for k in range(9)]
    rows.append(["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration",
                 "Type", "Action Units", "Notes"])
    count: dict[str, int] = {}
    for i in range(micro + macro):
        name = names[i % videos]
        count[name] = count.get(name, 0) + 1
        onset = 100 + 400 * count[name]
        kind = "Micro - 1/2" if i < micro else "Macro"
        apex, offset = onset + 30, onset + 80 if i < micro else onset + 300
        if i >= micro and i % 3 == 0:
            onset, apex, offset = onset + 0.4, apex + 0.6, offset + 0.2  # fractional
        if i in (5, 50, 170, 250, 300, 400):
            apex = -1
        rows.append([int(name[:3]) if i % 2 else name[:3], f"{name}_{count[name]}", 1, onset,
                     apex, offset, 0, kind, "AU12", ""])
    write_sheet(root / "SAMM_LongVideos_V2_Release.xlsx", rows)
    return {"num_videos": videos, "num_subjects": subjects,
            "intervals": {"micro": micro, "macro": macro}}


def casme3_long(root: Path, videos: int = 20, micro: int = 15, macro: int = 45) -> dict:
    """`part_A/spNO.<k>/<task>/color/<N>.jpg` + `CAS(ME)3_part_A_v2.xls`, sheets `AU+Emotion`
    (an `Expression type` column) and `eye blink`."""
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "emotion"]
    rows = [header]
    for i in range(micro + macro):
        subject, task = f"spNO.{i % videos % 7 + 1}", "abcdefghijklm"[i % videos // 7]
        onset = 50 + 200 * (i // videos)
        rows.append([subject, task, onset, onset + 5, onset + (10 if i < micro else 60), "AU4",
                     "micro-expression" if i < micro else "macro-expression", "happy"])
        write_frames(root / "part_A" / subject / task / "color", range(8, 11), lambda m: f"{m}.jpg")
    write_sheet(root / "CAS(ME)3_part_A_v2.xls", None,
                {"AU+Emotion": rows, "eye blink": [["Subject", "Filename", "Onset", "Offset"]]})
    return {"num_videos": videos, "intervals": {"micro": micro, "macro": macro}}
