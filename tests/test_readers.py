"""Readers of the real releases, on fixtures built in their exact formats (tests/db_fixtures.py)."""
import json
import subprocess
import sys

import pytest

from pipelines.extract_features import dry_run
from tests import db_fixtures as fx
from tscnn_tf.databases import read_database, sheets


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every fixture, built once: {name: (data_dir, expected)}."""
    root = tmp_path_factory.mktemp("releases")
    out = {}
    for name, builder in (("casme2", fx.casme2), ("smic", fx.smic), ("samm", fx.samm),
                          ("casme", fx.casme), ("casme_sq", fx.casme_sq),
                          ("megc2019", fx.megc2019)):
        out[name] = (root / name, builder(root / name))
    return out


def reasons(summary) -> str:
    return " | ".join(d["reason"] for d in summary["dropped"])


@pytest.mark.parametrize("db, samples, subjects", [
    ("casme2", 247, 26), ("smic", 164, 16), ("samm", 136, 28), ("casme", 171, 19),
    ("megc2019", 442, 68)])
def test_paper_sized_selections(built, db, samples, subjects):
    data_dir, expected = built[db]
    summary = dry_run(db, data_dir)
    assert (summary["num_samples"], summary["num_subjects"]) == (samples, subjects)
    assert len(summary["dropped"]) == expected["dropped"], reasons(summary)
    if "per_class" in expected:
        assert summary["per_class"] == expected["per_class"]
    assert sum(summary["dropped_per_reason"].values()) == expected["dropped"]


def test_casme2_quirks(built):
    data_dir, _ = built["casme2"]
    database = read_database("casme2", data_dir)
    by_id = {s.sample_id: s for s in database.samples}
    assert database.class_names == list(fx.CASME2_PAPER)
    # Subject written 1 and 01 is the same folder; '/' apex is kept and left to spotting.
    assert {s.subject for s in database.samples} == {f"sub{i:02d}" for i in range(1, 27)}
    assert sum(s.apex is None for s in database.samples) >= 20
    # Row i=4 has its apex outside onset..offset: kept, apex to be spotted, with a warning.
    outside = [s for s in database.samples if any("outside" in w for w in s.warnings)]
    assert len(outside) == 1 and outside[0].apex is None
    # Clip folders with and without the trailing f were both found.
    assert any(s.clip.endswith("f") for s in by_id.values())
    summary = dry_run("casme2", data_dir)
    text = reasons(summary)
    for reason in ("unknown label: 'contempt'", "selected classes): 'fear'",
                   "selected classes): 'sadness'", "no frame folder or video",
                   "onset after offset: onset 9, offset 7"):
        assert reason in text
    assert "CASME2-coding-20140508.xlsx row" in text  # every drop names its sheet row


def test_casme2_xls_release_and_cropped_frames(tmp_path):
    expected = fx.casme2(tmp_path, counts={"happiness": 3, "others": 4}, subjects=3,
                         sheet="CASME2_label_Ver_2.xls", cropped=True, extra_labels=())
    summary = dry_run("casme2", tmp_path, {"image_set": "cropped"})
    assert summary["num_samples"] == 7 and len(summary["dropped"]) == expected["dropped"]
    with pytest.raises(FileNotFoundError, match="CASME2_RAW_selected"):
        read_database("casme2", tmp_path, image_set="raw")


def test_smic_labels_from_folders_and_gaps(built, tmp_path):
    data_dir, _ = built["smic"]
    database = read_database("smic", data_dir)
    assert all(s.apex is None for s in database.samples)          # never given
    sample = next(s for s in database.samples if sorted(s.frames) != list(range(s.onset, s.offset + 1)))
    assert len(sample.frames) == 3                                  # a clip with a missing frame
    assert "s1_ne_99" in reasons(dry_run("smic", data_dir))         # the empty folder
    fx.smic(tmp_path, counts={"negative": 2, "surprise": 1}, subjects=2, cropped=True)
    # HS given directly, and a cropped release.
    assert dry_run("smic", tmp_path / "SMIC_all_cropped" / "HS")["num_samples"] == 3
    assert dry_run("smic", tmp_path, {"image_set": "cropped"})["num_samples"] == 3


def test_samm_header_in_row_one_and_other_spellings(built, tmp_path):
    data_dir, _ = built["samm"]
    database = read_database("samm", data_dir)
    assert database.samples[0].subject == "006"
    assert any(any("outside" in w for w in s.warnings) for s in database.samples)
    fx.samm(tmp_path, counts={"others": 4, "anger": 2}, subjects=2, notes_above_header=False,
            extra_labels=())
    summary = dry_run("samm", tmp_path)
    assert summary["per_class"]["others"] == 4 and summary["num_samples"] == 6


def test_casme_sections_and_apex_fallback(built):
    data_dir, _ = built["casme"]
    database = read_database("casme", data_dir)
    a = [s for s in database.samples if s.subject <= "sub07"]
    b = [s for s in database.samples if s.subject >= "sub08"]
    assert a and b
    assert all(s.apex is not None for s in database.samples)  # ApexF1 '/' falls back to ApexF2
    assert "selected classes): 'contempt'" in reasons(dry_run("casme", data_dir))  # 'comtempt' (sic)


def test_casme_sq_naming_rules_and_selections(built):
    data_dir, expected = built["casme_sq"]
    for selection in ("all", "micro"):
        summary = dry_run("casme_sq", data_dir, {"expression_type": selection})
        assert summary["num_samples"] == expected[selection]["num_samples"], reasons(summary)
        assert summary["per_class"] == expected[selection]["per_class"]
        assert summary["num_subjects"] == expected[selection]["num_subjects"]
    assert "micro-only selection" in reasons(dry_run("casme_sq", data_dir,
                                                     {"expression_type": "micro"}))
    database = read_database("casme_sq", data_dir)
    assert len({s.subject for s in database.samples}) == 22


def test_casme_sq_reads_each_participant_from_their_own_folder(built):
    """naming rule1 maps participant 4 to s20 and participant 20 to s37: the code sheet's
    participant number is not the folder number."""
    data_dir, _ = built["casme_sq"]
    database = read_database("casme_sq", data_dir)
    for sample in database.samples:
        folder = next(iter(sample.frames.values())).split("/rawpic/")[1].split("/")[0]
        assert folder == sample.subject
        video = next(iter(sample.frames.values())).split("/")[-2]
        assert video.startswith(f"{int(folder[1:])}_") and sample.clip.split("_")[0] in video
    rows = sheets.read_rows(next(data_dir.glob("*.xlsx")), 0)
    expected = {(fx.CASME_SQ_FOLDERS[int(r[0]) - 1], r[1]) for r in rows}
    assert {(s.subject, s.clip) for s in database.samples} == expected
    assert fx.CASME_SQ_FOLDERS[4 - 1] == "s20" and fx.CASME_SQ_FOLDERS[20 - 1] == "s37"
    offset_zero = [s for s in database.samples if s.offset == s.apex and s.apex is not None]
    assert len(offset_zero) == 44  # offset 0: "use the apex"
    assert sum(s.apex is None for s in database.samples) == 1  # apex 0: spotted


def test_casme_sq_without_naming_rule1_is_refused(tmp_path):
    fx.write_sheet(tmp_path / "CAS(ME)^2code_final.xlsx",
                   [[1, "anger1_1", 5, 7, 9, "", "", "micro-expression", ""]])
    with pytest.raises(ValueError, match="naming rule1"):
        read_database("casme_sq", tmp_path)


def test_megc2019_maps_labels_and_prefixes_subjects(built):
    data_dir, _ = built["megc2019"]
    database = read_database("megc2019", data_dir)
    assert database.class_names == ["negative", "positive", "surprise"]
    subjects = {s.subject for s in database.samples}
    assert {"casme2_sub01", "smic_s1", "samm_006"} <= subjects
    by_db = {p: sum(s.subject.startswith(p) for s in database.samples) for p in ("casme2", "smic", "samm")}
    assert by_db == {"casme2": 145, "smic": 164, "samm": 133}
    text = reasons(dry_run("megc2019", data_dir))
    assert "unknown dataset: 'casmex'" in text and "unknown class: '7'" in text
    assert "no casme2 annotation or frames" in text


def test_missing_parts_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir does not exist"):
        read_database("casme2", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="CASME II coding sheet"):
        read_database("casme2", tmp_path)
    with pytest.raises(FileNotFoundError, match="HS folder"):
        read_database("smic", tmp_path)


def test_drop_reasons_group_by_kind(built):
    """The per-reason counts group rows by what went wrong, never by row, value or path."""
    summary = dry_run("casme2", built["casme2"][0])
    assert summary["dropped_per_reason"] == {
        "unused label (not one of the selected classes)": 9, "unknown label": 1,
        "no frame folder or video": 1, "onset after offset": 1}
    smic = dry_run("smic", built["smic"][0])
    assert smic["dropped_per_reason"] == {"fewer than 3 frames between onset and offset": 1}


@pytest.mark.parametrize("db", ["casme2", "smic", "samm", "casme", "casme_sq", "megc2019"])
def test_dry_run_cli_with_flagfile(built, db, tmp_path):
    data_dir, expected = built[db]
    out = tmp_path / "summary.json"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract_features", f"--db={db}",
                          f"--data_dir={data_dir}", "--dry_run", f"--summary_json={out}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(out.read_text())
    want = expected["all"] if db == "casme_sq" else expected
    assert summary["num_samples"] == want["num_samples"]
    assert summary["fps"] == {"casme2": 200, "smic": 100, "samm": 200, "casme": 60,
                              "casme_sq": 30, "megc2019": None}[db]
    assert "drop reason" in run.stdout or not summary["dropped"]


def test_casme_keeps_every_expression_of_a_clip_and_uncoded_offsets(built):
    data_dir, _ = built["casme"]
    database = read_database("casme", data_dir)
    clip = {s.sample_id: s for s in database.samples if s.clip == "EP01_12"}
    assert set(clip) == {"casme/sub01/EP01_12@73-91", "casme/sub01/EP01_12@163-177",
                         "casme/sub01/EP01_12@190-220"}
    late = clip["casme/sub01/EP01_12@190-220"]
    assert (late.onset, late.offset, late.apex) == (190, 199, 193)  # cut at the last frame
    assert any("offset not coded" in w for w in late.warnings)
    assert clip["casme/sub01/EP01_12@73-91"].apex == 80  # ApexF2 `\` is not needed


def test_sheet_quirks_of_real_releases_are_kept_or_dropped_by_reason(tmp_path):
    """AU strings, fractional frame numbers, apex -1 / 0 / `/` / outside / equal to the onset,
    offset 0, frames missing at the start and in the middle, an absent annotated frame."""
    frames = tmp_path / "s1"
    fx.write_frames(frames / "full", range(10, 40), lambda n: f"img{n}.jpg")
    fx.write_frames(frames / "gappy", [n for n in range(10, 40) if n not in (10, 11, 12, 25, 26)],
                    lambda n: f"img{n}.jpg")
    rows = [["subject", "clip", "onset", "apex", "offset", "label", "au"],
            ["s1", "full", "566.4", "", 600, "a", "4+L10"],            # 566..600: no frames
            ["s1", "full", "12.4", "15", "30.6", "a", "R12"],          # 12, 31: kept, warned
            ["s1", "full", 10, -1, 20, "a", "4(B/C)+7B"],              # apex -1: spotted
            ["s1", "full", 11, 0, 21, "a", ""],                         # apex 0: spotted
            ["s1", "full", 13, "/", 23, "b", ""],                       # apex /: spotted
            ["s1", "full", 14, 14, 24, "b", ""],                        # onset == apex: spotted
            ["s1", "full", 15, 5, 25, "b", ""],                         # apex outside: spotted
            ["s1", "full", 16, 18, 0, "b", ""],                         # offset 0: dropped
            ["s1", "gappy", 10, 25, 30, "b", ""]]                       # start and apex absent
    fx.write_sheet(tmp_path / "annotations.csv", rows)
    database = read_database("custom", tmp_path)
    kept = {s.part or s.clip: s for s in database.samples}
    assert {d.kind for d in database.dropped} == {"fewer than 3 frames between onset and offset",
                                                  "offset 0 (not coded)"}
    fractional = kept["12-31"]
    assert (fractional.onset, fractional.offset, fractional.apex) == (12, 31, 15)
    assert sum("fractional frame number" in w for w in fractional.warnings) == 2
    for part in ("10-20", "11-21", "13-23", "14-24", "15-25"):
        assert kept[part].apex is None, part  # spotted
    assert any("equals the onset" in w for w in kept["14-24"].warnings)
    gappy = next(s for s in database.samples if s.clip == "gappy")
    assert gappy.onset == 13 and 25 not in gappy.frames and gappy.apex == 25
    assert any("onset/offset frame missing" in w for w in gappy.warnings)


@pytest.fixture(scope="module")
def newer(tmp_path_factory):
    root = tmp_path_factory.mktemp("newer")
    return {name: (root / name, builder(root / name)) for name, builder in
            (("casme3", fx.casme3), ("casme3_c", fx.casme3_c), ("mmew", fx.mmew),
             ("fourdme", fx.fourdme))}


def test_casme3_part_a_counts_quirks_and_protocols(newer):
    data_dir, expected = newer["casme3"]
    summary = dry_run("casme3", data_dir, {"protocol": "7"})
    assert (summary["num_samples"], summary["num_subjects"]) == (858, 94)
    assert summary["per_class"] == expected["7"]["per_class"]
    assert summary["dropped_per_reason"] == {"offset 0 (not coded)": 2}  # the documented rule
    for protocol in ("3", "4"):
        assert dry_run("casme3", data_dir, {"protocol": protocol})["num_samples"] == \
            expected[protocol]["num_samples"]
    three = dry_run("casme3", data_dir, {"protocol": "3"})
    assert three["per_class"] == expected["3"]["per_class"]
    assert three["dropped_per_reason"]["unused label (not one of the selected classes)"] > 0
    database = read_database("casme3", data_dir, protocol="7")
    assert len({(s.subject, s.clip) for s in database.samples}) == 463 - 0  # videos kept
    spotted = [s for s in database.samples if s.apex is None]
    assert len(spotted) == 1 + 2 + 55  # apex 0, apex < onset, onset == apex
    assert all(min(s.frames) >= 8 for s in database.samples)  # frames 1-7 never exist


def test_casme3_dry_run_cli_and_part_c(newer, tmp_path):
    data_dir, _ = newer["casme3"]
    out = tmp_path / "s.json"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract_features", "--db=casme3",
                          f"--data_dir={data_dir}", "--dry_run", f"--summary_json={out}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["config"]["data"]["protocol"] == "3" and summary["fps"] == 30
    assert list(summary["per_class"]) == ["negative", "positive", "surprise"]
    c_dir, c_expected = newer["casme3_c"]
    part_c = dry_run("casme3_c", c_dir, {"protocol": "7"})
    assert (part_c["num_samples"], part_c["num_subjects"]) == (c_expected["num_samples"], 30)
    assert all(s.apex is None for s in read_database("casme3_c", c_dir).samples)


@pytest.mark.parametrize("db", ["mmew", "fourdme"])
def test_mmew_and_fourdme_layouts(newer, db):
    data_dir, expected = newer[db]
    summary = dry_run(db, data_dir)
    assert (summary["num_samples"], summary["num_subjects"]) == (expected["num_samples"],
                                                                 expected["num_subjects"])
    assert len(summary["dropped"]) == expected.get("dropped", 0), reasons(summary)
