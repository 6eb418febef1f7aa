"""Spotting in long videos (issue 13): synthetic long videos, the streaming spotter, its
bounded memory and delay, a lost face, the command line and its JSON contract."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tscnn_tf import spotting, video
from tscnn_tf.databases import synthetic, synthetic_long

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    """Two 10-s videos at 60 fps of subjects the synthetic database's models never saw."""
    return synthetic_long.read_synthetic_long(tmp_path_factory.mktemp("long") / "db", seed=11,
                                              num_videos=2, seconds=10, fps=60)


def test_synthetic_long_videos_hold_their_ground_truth(long_videos):
    for item in long_videos:
        stream = video.Stream(video=item.path)
        assert stream.fps == 60 and stream.count == 600
        kinds = [i.type for i in item.intervals]
        assert kinds.count("macro") == 1 and kinds.count("micro") >= 3
        for i in item.intervals:
            assert i.onset < i.apex < i.offset and i.label in synthetic.CLASS_NAMES
            limit = 0.5 if i.type == "micro" else 2.1
            assert (i.offset - i.onset + 1) / 60 <= limit


def test_every_micro_expression_is_found_at_its_apex(long_videos):
    """Counted by apex (within 3 frames, 0.05 s): F1 ≥ 0.8 over both videos."""
    tp = fp = fn = 0
    for item in long_videos:
        out = spotting.spot_stream(video.Stream(video=item.path), 60)
        hits = spotting.apex_hits(item.intervals, out["intervals"], 3)
        tp, fp, fn = tp + hits["tp"], fp + hits["fp"], fn + hits["fn"]
        assert out["frames"] == 600 and out["warnings"] == []
        for interval in out["intervals"]:
            assert set(interval) == {"onset", "apex", "offset", "score", "type"}
            assert 0 <= interval["onset"] <= interval["apex"] <= interval["offset"] < 600
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.8, (tp, fp, fn)


class FixedFace:
    """A landmarker that finds the synthetic face where it always is (or nowhere)."""

    def __init__(self, lost=()):
        self.points = synthetic.Subject(np.random.default_rng(0)).points
        self.lost = lost
        self.frame = 0

    def __call__(self, gray, face_box=None):
        self.frame += 1
        return None if self.frame in self.lost else self.points


def test_memory_and_reporting_delay_are_bounded():
    config = spotting.SpotConfig(redetect_s=1000)
    fps = 100
    spotter = spotting.Spotter(fps, config, FixedFace(), keep_trace=False)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    emitted = []
    for i in range(3000):
        frame = base.copy()
        if i % 500 == 250:  # a burst of change every 5 s
            frame[40:80, 60:100] = 255 - frame[40:80, 60:100]
        for interval in spotter.push(i, frame):
            emitted.append((i, interval))
        assert len(spotter.faces) == min(i + 1, spotter.faces.maxlen)
        for scale in spotter.scales:
            assert len(scale.signal) <= 4 * scale.k + 2 and len(scale.contrast) <= 6 * scale.k + 2
    delay = 3 * max(spotter.k_micro, spotter.k_macro) + spotter.k_macro + 1
    assert emitted and all(i - interval["offset"] <= delay for i, interval in emitted)
    assert spotter.faces.maxlen < 1000  # seconds of crops, never the whole stream


def test_a_face_hidden_for_a_moment_is_a_gap_and_a_long_loss_a_restart_not_the_end():
    """Detections every 0.1 s at 100 fps (a face without texture is known by detection only):
    lost for detections 5-8 (0.4 s) is a gap, the signals go on; lost for 5-20 (1.6 s, over
    max_gap_s) restarts them with a warning, and the run goes on."""
    config = spotting.SpotConfig(redetect_s=0.1)
    frames = [(i, np.full((120, 160), 100, np.uint8)) for i in range(300)]
    short = spotting.spot_stream(iter(frames), 100, config,
                                 landmarker=FixedFace(lost=set(range(5, 9))))
    assert short["frames"] == 300 and short["restarts"]["count"] == 0
    assert short["restarts"]["gaps"] == 1
    assert any("hidden 1 time(s)" in w for w in short["warnings"])
    long = spotting.spot_stream(iter(frames), 100, config,
                                landmarker=FixedFace(lost=set(range(5, 21))))
    assert long["frames"] == 300 and long["restarts"]["count"] == 1
    assert "face lost at frame" in long["restarts"]["events"][0]["reason"]
    assert any("face lost" in w for w in long["warnings"])
    assert any("found again" in w for w in long["warnings"])


def test_spot_command_json_contract_csv_and_plot(long_videos, tmp_path):
    item = long_videos[0]
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", f"--video={item.path}", "--json",
                          f"--output={tmp_path / 'spots.csv'}",
                          f"--visualize={tmp_path / 'signal.png'}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"frames", "fps", "intervals", "frames_per_s", "warnings"} <= set(result)
    assert result["frames"] == 600 and result["fps"] == 60 and result["frames_per_s"] > 0
    assert all(i["type"] in ("micro", "macro") for i in result["intervals"])
    rows = (tmp_path / "spots.csv").read_text().splitlines()
    assert rows[0].startswith("video,kind,onset,apex,offset") and len(rows) == len(result["intervals"]) + 1
    import cv2
    assert cv2.imread(str(tmp_path / "signal.png")) is not None


def test_spot_db_scores_with_the_megc_protocol(long_videos, tmp_path):
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", "--db=synthetic_long",
                          f"--data_dir={tmp_path / 'db'}", f"--output_dir={tmp_path / 'out'}",
                          "--synthetic_videos=1", "--synthetic_seconds=5", "--fps=50"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    written = json.loads((tmp_path / "out" / "spotting_results.json").read_text())
    assert {"micro", "macro", "overall", "apex_hits", "frames_per_s"} <= set(written)
    assert (tmp_path / "out" / "spotting_intervals.csv").read_text().startswith("video,kind")
    from tscnn_tf import spot
    evaluated = spot.evaluate_database(long_videos, spotting.SpotConfig())
    results = evaluated["results"]
    assert results["num_videos"] == 2
    for kind in ("micro", "macro", "overall"):
        r = results[kind]
        assert r["tp"] + r["fn"] == sum(i.type == kind or kind == "overall"
                                        for v in long_videos for i in v.intervals)
    assert results["apex_hits"]["f1"] >= 0.8
    assert {row["kind"] for row in evaluated["rows"]} == {"spotted", "truth"}


@pytest.mark.parametrize("db", ["casme_sq", "samm_lv", "casme3"])
def test_long_video_databases_dry_run_to_the_sheets_counts(db, tmp_path):
    """CAS(ME)² (95 videos: 57 micro, 300 macro) and SAMM-LV (147 videos: 159 micro, 343
    macro) on trees shaped like the real releases, and CAS(ME)³ part A's AU+Emotion sheet."""
    from tests import db_fixtures as fx
    builder = {"casme_sq": fx.casme_sq, "samm_lv": fx.samm_lv, "casme3": fx.casme3_long}[db]
    built = builder(tmp_path / "db")
    expected = {"casme_sq": {"num_videos": 95, "num_subjects": 22,
                             "intervals": {"micro": 57, "macro": 300}}}.get(db, built)
    out = tmp_path / "summary.json"
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", f"--db={db}",
                          f"--data_dir={tmp_path / 'db'}", "--dry_run", f"--summary_json={out}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads(out.read_text())
    for key, value in expected.items():
        assert summary[key] == value, (key, summary[key], summary["dropped"][:3])
    assert summary["dropped"] == []


def test_frame_folder_videos_are_scored_in_their_own_frame_numbers(long_videos, tmp_path):
    """A long video as 1-based frame files (as CAS(ME)² and SAMM-LV hold them): the spotted
    stream positions are mapped to those numbers before matching the sheet's intervals."""
    import cv2
    from tscnn_tf import spot
    from tscnn_tf.databases.base import Interval, LongVideo
    item = long_videos[0]
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in video.Stream(video=item.path):
        cv2.imwrite(str(folder / f"img{index + 1}.png"), frame)
    shifted = [Interval(i.onset + 1, i.apex + 1, i.offset + 1, i.type, i.label)
               for i in item.intervals]
    as_frames = spot.evaluate_database([LongVideo("f", "s", str(folder), 60, shifted)],
                                       spotting.SpotConfig())["results"]
    as_video = spot.evaluate_database([item], spotting.SpotConfig())["results"]
    for key in ("micro", "macro", "overall", "apex_hits"):
        assert as_frames[key] == as_video[key], key


def test_running_statistics_match_a_window_by_hand():
    stats = spotting.RunningStats(5)
    values = np.random.default_rng(0).normal(size=200)
    for i, value in enumerate(values):
        stats.push(float(value))
        window = values[max(0, i - 4):i + 1]
        assert abs(stats.mean() - window.mean()) < 1e-9 and stats.max() == window.max()
    assert len(stats) == 5


def test_stream_inputs_that_cannot_be_read_are_named(tmp_path):
    with pytest.raises(video.ClipError, match="no frame folder"):
        video.Stream(frames=tmp_path / "nowhere", fps=30)
    with pytest.raises(video.ClipError, match="no video file"):
        video.Stream(video=tmp_path / "missing.mp4")
    with pytest.raises(video.ClipError, match="exactly one"):
        video.Stream()
    (tmp_path / "empty").mkdir()
    with pytest.raises(video.ClipError, match="no image frames"):
        video.Stream(frames=tmp_path / "empty", fps=30)
    import cv2
    cv2.imwrite(str(tmp_path / "empty" / "img1.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(video.ClipError, match="give --fps"):
        video.Stream(frames=tmp_path / "empty")
