"""The MEGC2019 composite on the real release layout (tests/megc_fixtures.py): every row of
`combined_3class_gt.csv` is read from its own clip or counted by reason."""
import json
import subprocess
import sys

import pytest

from pipelines.extract_features import dry_run
from tests import megc_fixtures as mf
from tscnn_tf.databases import Database, Sample, read_database
from tscnn_tf.databases.megc2019 import find_clip, index_part

SMALL = {"casme2": {"disgust": 2, "repression": 2, "happiness": 2, "surprise": 1},
         "smic": {"negative": 2, "positive": 1, "surprise": 1},
         "samm": {"anger": 1, "happiness": 1, "surprise": 1}}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The full-size composite in the real list's naming: (data_dir, expected)."""
    root = tmp_path_factory.mktemp("megc2019")
    return root, mf.megc2019_release(root)


def small(root, **options):
    """A few clips per part, the twins of sub17 included, no bad rows."""
    return mf.megc2019_release(root, **SMALL, bad_rows=(), **options)


def by_clip(database) -> dict:
    return {(s.subject, s.clip): s for s in database.samples}


def test_every_row_is_read_or_counted(release):
    data_dir, expected = release
    assert expected["num_samples"] == 442 and expected["num_subjects"] == 68
    summary = dry_run("megc2019", data_dir)
    assert (summary["num_samples"], summary["num_subjects"]) == (442, 68), \
        summary["dropped_per_reason"]
    assert summary["per_class"] == {"negative": 250, "positive": 109, "surprise": 83}
    assert summary["dropped_per_reason"] == {"no casme2 annotation or frames": 1,
                                             "fewer than 3 frames between onset and offset": 1,
                                             "duplicate row in the ground truth": 1}
    assert summary["num_samples"] + len(summary["dropped"]) == expected["rows"]
    per_db = {db: (sum(n for s, n in summary["per_subject"].items() if s.startswith(db + "_")),
                   sum(s.startswith(db + "_") for s in summary["per_subject"]))
              for db in ("casme2", "smic", "samm")}
    assert per_db == {"casme2": (145, 24), "smic": (164, 16), "samm": (133, 28)}


def test_subjects_keep_their_database_prefix_and_folder_names(release):
    database = read_database("megc2019", release[0])
    subjects = {s.subject for s in database.samples}
    assert {s for s in subjects if s.startswith("smic_")} == {
        f"smic_s{n}" for n in mf.SMIC_SUBJECTS}  # the release's `s1`, not the list's `s01`
    assert {s for s in subjects if s.startswith("casme2_")} == {
        f"casme2_sub{n:02d}" for n in mf.CASME2_SUBJECTS}
    assert {s for s in subjects if s.startswith("samm_")} == {
        f"samm_{n:03d}" for n in mf.SAMM_SUBJECTS}
    smic = [s for s in database.samples if s.subject == "smic_s1"]
    assert smic and all(s.clip.startswith("s1_") for s in smic)


def test_casme2_twin_clips_each_keep_their_frames_and_label(release):
    database = read_database("megc2019", release[0])
    clips = by_clip(database)
    happy, repressed = clips["casme2_sub17", "EP05_03"], clips["casme2_sub17", "EP05_03f"]
    assert (happy.label_name, min(happy.frames), max(happy.frames)) == ("positive", 21, 101)
    assert (repressed.label_name, min(repressed.frames), max(repressed.frames)) == (
        "negative", 11, 76)
    assert all("/EP05_03/" in p for p in happy.frames.values())
    assert all("/EP05_03f/" in p for p in repressed.frames.values())
    assert not happy.warnings and not repressed.warnings
    # Where only one spelling is a clip, the list's other spelling finds it, with a word.
    spelled = [s for s in database.samples if any("ground truth names" in w for w in s.warnings)]
    assert sorted(s.clip[-1] == "f" for s in spelled) == [False, True]


@pytest.mark.parametrize("width", [1, 2])
def test_smic_subject_numbers_padded_or_not(tmp_path, width):
    expected = small(tmp_path, smic_width=width)
    summary = dry_run("megc2019", tmp_path)
    assert summary["num_samples"] == expected["num_samples"], summary["dropped"]
    smic_subjects = [s for s in summary["per_subject"] if s.startswith("smic_")]
    assert len(smic_subjects) == expected["per_db"]["smic"][1]


def test_a_clip_without_frames_is_counted_not_given_its_twins_frames(tmp_path):
    expected = small(tmp_path, no_folder=("EP05_03f",))
    summary = dry_run("megc2019", tmp_path)
    assert summary["num_samples"] == expected["num_samples"] - 1
    assert summary["dropped_per_reason"] == {"no frame folder or video": 1}
    assert "EP05_03f" in summary["dropped"][0]["reason"]
    happy = by_clip(read_database("megc2019", tmp_path))["casme2_sub17", "EP05_03"]
    assert (min(happy.frames), max(happy.frames)) == (21, 101)


def test_a_class_other_than_the_clips_own_label_is_warned(tmp_path):
    small(tmp_path)
    gt = tmp_path / "combined_3class_gt.csv"
    gt.write_text(gt.read_text().replace("sub17,EP05_03,1", "sub17,EP05_03,2"))
    sample = by_clip(read_database("megc2019", tmp_path))["casme2_sub17", "EP05_03"]
    assert sample.label_name == "surprise"
    assert sample.warnings == [
        "ground truth class surprise, but casme2 labels the clip 'happiness'"]


def test_several_samples_of_one_clip_are_not_guessed():
    twice = [Sample("casme", "sub01", "EP01_12", "tense", 0, a, b, part=f"{a}-{b}")
             for a, b in ((73, 91), (163, 177))]
    index = index_part(Database("casme", ["tense"], twice, []))
    kind, reason = find_clip(index, "casme", "01", "EP01_12")
    assert kind.startswith("several samples") and "@73-91" in reason and "@163-177" in reason


def test_dry_run_cli_reports_the_counts(release, tmp_path):
    data_dir, expected = release
    out = tmp_path / "summary.json"
    run = subprocess.run([sys.executable, "-m", "pipelines.extract_features", "--db=megc2019",
                          f"--data_dir={data_dir}", "--dry_run", f"--summary_json={out}"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert (summary["num_samples"], summary["num_subjects"]) == (442, 68)
    assert sum(summary["dropped_per_reason"].values()) == expected["rows"] - 442
    assert "duplicate row in the ground truth" in run.stdout


def test_the_list_and_the_parts_follow_the_symlink_rule(tmp_path):
    """A ground-truth list or a part folder reached through a link out of data_dir is not
    read by default, and the refusal is counted; --follow_symlinks opts in."""
    outside, data_dir = tmp_path / "elsewhere", tmp_path / "release"
    small(outside)
    data_dir.mkdir()
    for entry in outside.iterdir():
        (data_dir / entry.name).symlink_to(entry)
    with pytest.raises(FileNotFoundError, match="follow_symlinks"):
        read_database("megc2019", data_dir)  # the list itself is a link out
    (data_dir / "combined_3class_gt.csv").unlink()
    (data_dir / "combined_3class_gt.csv").write_bytes(
        (outside / "combined_3class_gt.csv").read_bytes())
    refused = read_database("megc2019", data_dir)  # every part's sheet is a link out
    assert not refused.samples and refused.dropped
    assert all("--follow_symlinks opts in" in d.reason for d in refused.dropped)
    followed = read_database("megc2019", data_dir, follow_symlinks=True)
    assert len(followed.samples) == len(read_database("megc2019", outside).samples) > 0
