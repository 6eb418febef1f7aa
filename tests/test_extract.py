"""The feature stage end to end: records, manifest, bad input, resuming, the command line."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from pipelines import extract_features as ef
from pipelines import extraction
from tscnn_tf import records
from tscnn_tf.databases import read_custom, synthetic
from tests.conftest import FAST

CLASSES = synthetic.CLASS_NAMES
ROOT = Path(__file__).resolve().parent.parent


def read_records(output_dir, n=3):
    files = sorted(str(p) for p in Path(output_dir).glob("*.tfrecord"))
    return list(tf.data.TFRecordDataset(files).map(lambda s: records.parse(s, n)))


def test_synthetic_end_to_end(tiny_synthetic, tmp_path):
    manifest = ef.extract_features("synthetic", tiny_synthetic, tmp_path, FAST,
                                   {"seed": 1, "num_subjects": 2, "clips_per_class": 1},
                                   num_workers=2, progress=False)
    assert manifest["num_samples"] == 6 and manifest["num_subjects"] == 2
    assert manifest["per_class"] == {c: 2 for c in CLASSES}
    assert manifest["params"]["flow"] == "dis" and manifest["versions"]["tensorflow"]
    assert manifest["apex_spotting"]["compared"] == 6
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk["samples"] == manifest["samples"]
    parsed = read_records(tmp_path)
    assert sorted(r["sample_id"].numpy().decode() for r in parsed) == \
        [e["sample_id"] for e in manifest["samples"]]
    first = parsed[0]
    assert first["blocks"].shape == (48, 48, 9) and first["flow"].shape == (48, 48, 4)
    # eq. 5: min-max per channel, so each channel that moves spans exactly [0, 1].
    lo = tf.reduce_min(first["flow"], axis=(0, 1)).numpy()
    hi = tf.reduce_max(first["flow"], axis=(0, 1)).numpy()
    assert list(lo) == [0, 0, 0, 0] and list(hi) == [1, 1, 1, 1]
    assert int(first["apex_given"]) >= int(first["onset"])
    assert not list(tmp_path.glob("*.partial"))


def copy_clip(src_db, src, dst_db, dst, drop_frame=None, corrupt_frame=None):
    shutil.copytree(src_db / src, dst_db / dst)
    frames = sorted((dst_db / dst).iterdir(), key=lambda p: int(p.stem[3:]))
    if drop_frame is not None:
        frames[drop_frame].unlink()
    if corrupt_frame is not None:
        frames[corrupt_frame].write_bytes(b"not an image")


def write_video(frames_dir, path):
    frames = sorted(Path(frames_dir).iterdir(), key=lambda p: int(p.stem[3:]))
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, first.shape[1::-1])
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    return len(frames)


@pytest.fixture
def messy_db(tiny_synthetic, tmp_path):
    """A custom database with each kind of bad input beside good clips."""
    rows = {(r["subject"], r["clip"]): r for r in
            __import__("csv").DictReader(open(tiny_synthetic / "annotations.csv"))}
    src = [(s, c) for s, c in rows][:3]
    db = tmp_path / "messy"
    (db / "A").mkdir(parents=True)
    (db / "B").mkdir()
    out = [["subject", "clip", "onset", "apex", "offset", "label"]]
    def add(subject, clip, r, **over):
        row = {**{k: r[k] for k in ("onset", "apex", "offset", "label")}, **over}
        out.append([subject, clip, row["onset"], row["apex"], row["offset"], row["label"]])
    r0, r1, r2 = (rows[k] for k in src)
    copy_clip(tiny_synthetic / src[0][0], src[0][1], db / "A", "good")
    add("A", "good", r0)
    copy_clip(tiny_synthetic / src[1][0], src[1][1], db / "A", "corrupt", corrupt_frame=4)
    add("A", "corrupt", r1)
    copy_clip(tiny_synthetic / src[2][0], src[2][1], db / "A", "no_onset", drop_frame=0)
    add("A", "no_onset", r2, apex="/")
    noface = db / "A" / "noface"
    noface.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 8):
        # 480 x 640: not shaped like a face crop, so no frame-box fallback either.
        cv2.imwrite(str(noface / f"img{i}.png"), rng.integers(0, 255, (480, 640), dtype=np.uint8))
    add("A", "noface", r0, onset=1, apex=4, offset=7)
    add("B", "bad_number", r0, onset="abc")
    copy_clip(tiny_synthetic / src[0][0], src[0][1], db / "B", "apex_out")
    add("B", "apex_out", r0, apex=int(r0["offset"]) + 50)
    add("B", "unknown_label", r0, label="joy")
    add("B", "missing", r0)
    add("B", "reversed", r0, onset=r0["offset"], offset=r0["onset"])
    (db / "B" / "broken_video.mp4").write_bytes(b"\x00" * 2048)
    add("B", "broken_video", r0, onset=0, apex="", offset=10)
    count = write_video(tiny_synthetic / src[1][0] / src[1][1], db / "B" / "video.avi")
    add("B", "video", r1, onset=0, apex=int(r1["apex"]) - int(r1["onset"]), offset=count - 1)
    with open(db / "annotations.csv", "w") as f:
        __import__("csv").writer(f).writerows(out)
    return db


def test_reader_validation(messy_db):
    database = read_custom(messy_db, classes=CLASSES)
    kept = {s.clip: s for s in database.samples}
    assert set(kept) == {"good", "corrupt", "no_onset", "noface", "apex_out", "video"}
    reasons = {d.clip: d.reason for d in database.dropped}
    assert set(reasons) == {"bad_number", "unknown_label", "missing", "reversed", "broken_video"}
    assert "unreadable video" in reasons["broken_video"]
    assert "invalid onset" in reasons["bad_number"]
    assert "unknown or unused label: 'joy'" in reasons["unknown_label"]
    assert "no frame folder or video" in reasons["missing"]
    assert "after offset" in reasons["reversed"]
    assert kept["apex_out"].apex is None and "outside" in kept["apex_out"].warnings[0]
    assert kept["no_onset"].apex is None  # the `/` apex
    assert "onset/offset frame missing" in kept["no_onset"].warnings[0]
    assert kept["video"].video.endswith("video.avi") and kept["video"].frames is None


def test_bad_input_is_skipped_or_repaired(messy_db, tmp_path):
    manifest = ef.extract_features("custom", messy_db, tmp_path / "out", FAST, {"classes": CLASSES},
                                   num_workers=1, progress=False)
    samples = {e["sample_id"].split("/")[-1]: e for e in manifest["samples"]}
    assert set(samples) == {"good", "corrupt", "no_onset", "apex_out", "video"}
    skipped = {d["clip"]: d["reason"] for d in manifest["skipped"]}
    assert skipped["noface"] == "no face detected"
    assert {"bad_number", "unknown_label", "missing", "reversed", "broken_video"} <= set(skipped)
    assert any("unreadable frame" in w for w in samples["corrupt"]["warnings"])
    assert samples["apex_out"]["apex_given"] == -1
    assert len(read_records(tmp_path / "out")) == 5


def test_same_clip_as_video_and_frames_gives_the_same_apex(messy_db, tmp_path):
    manifest = ef.extract_features("custom", messy_db, tmp_path / "out", FAST, {"classes": CLASSES},
                                   num_workers=1, progress=False)
    samples = {e["sample_id"].split("/")[-1]: e for e in manifest["samples"]}
    video, frames = samples["video"], samples["corrupt"]
    assert video["offset"] - video["onset"] == frames["offset"] - frames["onset"]
    assert abs((video["apex_spotted"] - video["onset"]) -
               (frames["apex_spotted"] - frames["onset"])) <= 2  # MJPG vs PNG


def test_no_usable_sample_is_a_clear_error(tmp_path):
    db = tmp_path / "empty"
    db.mkdir()
    (db / "annotations.csv").write_text("subject,clip,onset,apex,offset,label\nA,x,abc,,5,joy\n")
    with pytest.raises(ef.ExtractionError, match="no usable sample"):
        ef.extract_features("custom", db, tmp_path / "out", FAST, progress=False)
    cmd = [sys.executable, "-m", "pipelines.extract_features", "--db=custom", f"--data_dir={db}",
           f"--output_dir={tmp_path / 'out'}"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "error: no usable sample" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_data_dir_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_custom(tmp_path / "nowhere")
    (tmp_path / "annotations.csv").write_text("subject,clip,onset\n")
    with pytest.raises(ValueError, match="missing column"):
        read_custom(tmp_path)


def test_dry_run_summary_json(messy_db, tmp_path):
    summary_path = tmp_path / "summary.json"
    cmd = [sys.executable, "-m", "pipelines.extract_features", "--db=custom",
           f"--data_dir={messy_db}", "--classes=negative,positive,surprise", "--dry_run",
           f"--summary_json={summary_path}"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(summary_path.read_text())
    assert set(summary) == {"db", "num_samples", "num_subjects", "per_class", "per_subject",
                            "dropped", "dropped_per_reason", "fps", "data_fingerprint", "config",
                            "flagfiles"}
    assert summary["flagfiles"][0].endswith("custom.cfg")
    assert summary["config"]["features"]["apex_lambda"] == 25  # flags/custom.cfg
    assert summary["config"]["data"]["classes"] == ["negative", "positive", "surprise"]
    assert sum(summary["dropped_per_reason"].values()) == 5
    assert summary["num_samples"] == 6 and summary["num_subjects"] == 2
    assert sum(summary["per_class"].values()) == 6 and summary["per_subject"] == {"A": 4, "B": 2}
    assert {d["clip"] for d in summary["dropped"]} == {"bad_number", "unknown_label", "missing",
                                                       "reversed", "broken_video"}
    assert "database custom: 6 samples" in result.stdout
    assert not list(tmp_path.glob("*.tfrecord"))


def test_resume_after_an_interrupted_run(tiny_synthetic, tmp_path, monkeypatch):
    options = {"seed": 1, "num_subjects": 2, "clips_per_class": 1}
    real_write = records.write_shard
    calls = []
    def crash_on_second_shard(path, examples):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a shard")  # what a killed writer leaves behind
            raise KeyboardInterrupt
        real_write(path, examples)
    monkeypatch.setattr(records, "write_shard", crash_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        ef.extract_features("synthetic", tiny_synthetic, tmp_path, FAST, options, num_workers=1,
                            samples_per_shard=2, progress=False)
    assert [p.name for p in tmp_path.glob("*.tfrecord")] == ["synthetic-00000.tfrecord"]
    assert not (tmp_path / "manifest.json").exists()
    first_shard = (tmp_path / "synthetic-00000.tfrecord").read_bytes()
    monkeypatch.setattr(records, "write_shard", real_write)

    processed = []
    real_process = extraction.process_sample
    monkeypatch.setattr(extraction, "process_sample",
                        lambda s: processed.append(s.sample_id) or real_process(s))
    manifest = ef.extract_features("synthetic", tiny_synthetic, tmp_path, FAST, options,
                                   num_workers=1, samples_per_shard=2, progress=False)
    assert len(processed) == 4  # the two finished samples were not redone
    assert manifest["num_samples"] == 6 and len(manifest["shards"]) == 3
    assert (tmp_path / "synthetic-00000.tfrecord").read_bytes() == first_shard
    assert not list(tmp_path.glob("*.partial"))
    assert len(read_records(tmp_path)) == 6

    processed.clear()
    again = ef.extract_features("synthetic", tiny_synthetic, tmp_path, FAST, options,
                                num_workers=1, samples_per_shard=2, progress=False)
    assert processed == [] and again["samples"] == manifest["samples"]


def test_records_with_other_parameters_are_not_mixed(tiny_synthetic, tmp_path):
    options = {"seed": 1, "num_subjects": 2, "clips_per_class": 1}
    ef.extract_features("synthetic", tiny_synthetic, tmp_path, FAST, options, num_workers=1,
                        progress=False)
    other = type(FAST)(flow="dis", apex_lambda=20, blocks=2)
    with pytest.raises(ef.ExtractionError, match="--overwrite"):
        ef.extract_features("synthetic", tiny_synthetic, tmp_path, other, options, num_workers=1,
                            progress=False)
    manifest = ef.extract_features("synthetic", tiny_synthetic, tmp_path, other, options,
                                   num_workers=1, overwrite=True, progress=False)
    assert manifest["params"]["blocks"] == 2
    assert read_records(tmp_path, n=2)[0]["blocks"].shape == (48, 48, 4)


def test_every_flagfile_loads_in_the_commands_that_read_it(tmp_path):
    """flags/<db>.cfg holds feature-stage flags only (extract_features, beam_extract, train);
    flags/<db>.train.cfg is loaded by train alone."""
    from tscnn_tf import cli
    argv = cli.with_db_flagfile(["x", "--db=synthetic"])
    assert argv[1].endswith("synthetic.cfg") and len(argv) == 3
    assert cli.with_db_flagfile(["x", "--db=synthetic"], training=True)[2].endswith(
        "synthetic.train.cfg")
    run = subprocess.run([sys.executable, "-m", "pipelines.extract_features", "--db=synthetic",
                          f"--data_dir={tmp_path / 'db'}", "--synthetic_subjects=2",
                          "--synthetic_clips_per_class=1", "--dry_run"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "database synthetic: 6 samples" in run.stdout


def test_default_tvl1_flow_and_the_given_apex_end_to_end(tiny_synthetic, tmp_path):
    """The paper's defaults (OpenCV TV-L1, eq. 4) and TSCNN-II (the annotated apex feeds the
    features), with eq. 5 over each flow field, through the whole feature stage."""
    options = {"seed": 1, "num_subjects": 2, "clips_per_class": 1}
    config = type(FAST)(apex_source="given", flow_norm="field")
    assert config.flow == "tvl1"
    manifest = ef.extract_features("synthetic", tiny_synthetic, tmp_path, config, options,
                                   num_workers=2, progress=False)
    assert manifest["num_samples"] == 6 and manifest["params"]["flow"] == "tvl1"
    for entry in manifest["samples"]:
        assert entry["apex_used"] == entry["apex_given"] >= 0  # the sheet's apex, not spotted
    records_of = {r["sample_id"].numpy().decode(): r for r in read_records(tmp_path)}
    for entry in manifest["samples"]:
        record = records_of[entry["sample_id"]]
        raw = record["flow_raw"].numpy()
        assert np.abs(raw).max() > 0.05  # TV-L1 saw the movement
        flow = record["flow"].numpy()
        for field in (slice(0, 2), slice(2, 4)):  # one min and max over u and v
            assert flow[..., field].min() == 0 and flow[..., field].max() == 1
    spotted = ef.extract_features("synthetic", tiny_synthetic, tmp_path / "spotted",
                                  type(FAST)(flow="tvl1"), options, num_workers=2, progress=False)
    given_apex = {e["sample_id"]: e["apex_used"] for e in manifest["samples"]}
    assert {e["sample_id"]: e["apex_used"] for e in spotted["samples"]} == \
        {e["sample_id"]: e["apex_spotted"] for e in spotted["samples"]}
    assert given_apex != {e["sample_id"]: e["apex_spotted"] for e in spotted["samples"]} or \
        all(e["apex_spotted"] == e["apex_given"] for e in spotted["samples"])
