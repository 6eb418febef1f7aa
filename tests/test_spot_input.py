"""`spot` on bad input (issue 17 §2): never silent, never shifted. A cut video, a corrupt
frame, frames of two sizes, no face, a database without a usable video, bad output paths and
frame rates, Ctrl-C."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tscnn_tf import cli, spot, spotting, video
from tscnn_tf.databases.base import LongVideo
from tscnn_tf.databases import synthetic_long

ROOT = Path(__file__).resolve().parent.parent
FPS = 50


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 3-s synthetic recording (two micro-expressions, at frames 45-56 and 105-117), its
    decoded frames, and what the spotter finds in it."""
    root = tmp_path_factory.mktemp("recording")
    path = root / "face.avi"
    truth = synthetic_long.render_long_video(path, np.random.default_rng(5), 3, FPS, micro=2,
                                             blinks=0, macro=False)
    frames = [frame for _, frame in video.Stream(video=path)]
    reference = spot.spot_source(video.Stream(video=path), spotting.SpotConfig())
    assert reference["intervals"] and reference["frames_with_face"] == 150
    return {"path": path, "truth": truth, "frames": frames, "reference": reference,
            "root": root}


def write_folder(folder: Path, frames, name=lambda i: f"img{i}.png") -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / name(i)), frame)
    return folder


def positions(intervals):
    return [(i["onset"], i["apex"], i["offset"]) for i in intervals]


def run_spot(*args, patch=""):
    """`python -m tscnn_tf.spot` (through runpy, so `patch`, Python run first, can replace a
    library function: the module sees the patched one)."""
    code = ("import runpy, sys\n" + patch + "\nsys.argv = ['spot', *sys.argv[1:]]\n"
            "runpy.run_module('tscnn_tf.spot', run_name='__main__', alter_sys=True)")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT)


# Reading frames must not start: a spot that reaches the stream fails loudly.
NO_FRAMES = ("from tscnn_tf import spotting\n"
             "def refuse(*a, **k): raise AssertionError('frames were read')\n"
             "spotting.spot_stream = refuse")


def error_line(run) -> str:
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, run.stderr
    return lines[0]


def test_a_cut_video_says_how_many_frames_were_read_and_declared(recording, tmp_path):
    data = recording["path"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:int(0.3 * len(data))])
    out = spot.spot_source(video.Stream(video=cut), spotting.SpotConfig())
    read = out["frames_read"]
    assert 0 < read == out["frames"] < 150 and out["frames_declared"] == 150
    assert out["frames_unreadable"] == 150 - read
    assert any(f"after {read} of the 150 frames" in w for w in out["warnings"]), out["warnings"]


def test_a_corrupt_frame_keeps_every_frame_number(recording, tmp_path):
    """A frame that cannot be read is skipped with a warning and counted; the frames after it
    keep their numbers: the intervals are those of the same frames without it, past it one
    number later than their position in the stream."""
    folder = write_folder(tmp_path / "frames", recording["frames"])
    (folder / "img20.png").write_bytes(b"not a png")
    out = spot.spot_source(video.Stream(frames=folder, fps=FPS), spotting.SpotConfig())
    kept = [frame for i, frame in enumerate(recording["frames"]) if i != 20]
    plain = spotting.spot_stream(enumerate(kept), FPS, spotting.SpotConfig())
    numbered = [tuple(p + (p >= 20) for p in interval) for interval in positions(plain["intervals"])]
    assert plain["intervals"] and positions(out["intervals"]) == numbered
    assert (out["frames_read"], out["frames_declared"], out["frames_unreadable"]) == (149, 150, 1)
    assert any("unreadable frame 20" in w and "img20.png" in w for w in out["warnings"])

    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", f"--frames={folder}",
                          f"--fps={FPS}", "--json"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"frames", "fps", "intervals", "frames_per_s", "warnings"} <= set(result)
    assert positions(result["intervals"]) == positions(out["intervals"])
    assert result["frames_unreadable"] == 1 and result["frames_with_face"] == 149
    assert "warning: unreadable frame 20" in run.stderr


def test_a_database_folder_is_scored_in_its_file_numbers_past_a_corrupt_frame(recording,
                                                                            tmp_path):
    """Frame files numbered from 101 with one corrupt: the spotted intervals are the intact
    video's, in the file-name numbers the ground truth uses."""
    folder = write_folder(tmp_path / "v", recording["frames"], lambda i: f"img{i + 101}.png")
    (folder / "img111.png").write_bytes(b"")
    item = LongVideo("v", "s1", str(folder), FPS, [])
    evaluated = spot.evaluate_database([item], spotting.SpotConfig())
    spotted = [(r["onset"], r["apex"], r["offset"]) for r in evaluated["rows"]
               if r["kind"] == "spotted"]
    assert spotted == [tuple(n + 101 for n in p)
                       for p in positions(recording["reference"]["intervals"])]
    (record,) = evaluated["results"]["videos"]
    assert record["frames_unreadable"] == 1 and "unreadable frame 10" in record["warnings"][0]


def test_stream_index_of_counts_the_skipped_frames_before():
    stream = video.Stream.__new__(video.Stream)
    stream.skipped = [0, 3, 4, 9]
    kept = [i for i in range(20) if i not in stream.skipped]
    assert [stream.index_of(p) for p in range(len(kept))] == kept
    assert list(stream.index_of(np.arange(len(kept)))) == kept


def test_many_unreadable_frames_are_named_up_to_ten_and_counted(tmp_path):
    folder = write_folder(tmp_path / "frames", [np.zeros((8, 8), np.uint8)] * 15)
    for i in range(2, 14):
        (folder / f"img{i}.png").write_bytes(b"")
    stream = video.Stream(frames=folder, fps=FPS)
    assert [i for i, _ in stream] == [0, 1, 14]
    assert stream.counts() == {"frames_read": 3, "frames_declared": 15, "frames_unreadable": 12}
    assert len(stream.warnings) == video.Stream.LISTED + 1
    assert "12 of the 15 frames" in stream.warnings[-1]


def test_frames_of_two_sizes_end_the_segment_with_a_warning(recording, tmp_path):
    frames = [f if i < 75 else cv2.resize(f, (384, 384)) for i, f in enumerate(recording["frames"])]
    folder = write_folder(tmp_path / "frames", frames)
    config = spotting.SpotConfig()
    out = spot.spot_source(video.Stream(frames=folder, fps=FPS), config)
    assert any("frame size changed from 256x256 to 384x384 at frame 75" in w
               for w in out["warnings"]), out["warnings"]
    for interval in out["intervals"]:
        assert not interval["onset"] < 75 <= interval["offset"]  # never across the change
        if interval["type"] == "micro":
            assert (interval["offset"] - interval["onset"] + 1) / FPS <= config.micro_max_s


def test_an_input_without_a_face_says_so_and_exits_non_zero(tmp_path):
    path = tmp_path / "wall.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for _ in range(30):
        writer.write(np.full((48, 64, 3), 120, np.uint8))
    writer.release()
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", f"--video={path}", "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    assert "no face found" in error_line(run)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["intervals"] == [] and result["frames_with_face"] == 0
    assert any("no face found in any of the 30 frames" in w for w in result["warnings"])
    assert "warning: no face found in any of the 30 frames" in run.stderr


def test_spot_db_keeps_per_video_warnings_and_refuses_without_a_usable_video(tmp_path):
    """Videos without a face: each one's warning on stderr and in the results; with none
    usable, one error and no results file."""
    from tests import db_fixtures as fx
    fx.casme3_long(tmp_path / "db", videos=2, micro=1, macro=1)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", "--db=casme3",
                          f"--data_dir={tmp_path / 'db'}", f"--output_dir={out}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert "no usable video" in error_line(run)
    for name in ("spNO.1/a", "spNO.2/a"):
        assert f"warning: {name}: no face found in any of the 3 frames" in run.stderr
    assert not (out / "spotting_results.json").exists() and not list(out.glob("partial-*"))


def test_spot_db_results_keep_each_videos_warnings(recording, tmp_path):
    blank = write_folder(tmp_path / "blank", [np.full((64, 64), 90, np.uint8)] * 20)
    items = [LongVideo("face", "s1", str(recording["path"]), FPS, list(recording["truth"])),
             LongVideo("blank", "s2", str(blank), FPS, []),
             LongVideo("gone", "s3", str(tmp_path / "gone.avi"), FPS, list(recording["truth"]))]
    seen = []
    results = spot.evaluate_database(items, spotting.SpotConfig(), on_video=seen.append)["results"]
    assert [r["video"] for r in seen] == ["face", "blank", "gone"] == \
        [r["video"] for r in results["videos"]]
    face, blank_record, gone = results["videos"]
    assert not any("no face" in w for w in face["warnings"])
    assert face["frames_with_face"] == 150
    assert "no face found" in blank_record["warnings"][0]
    assert "no frame folder" in gone["warnings"][0] and gone["frames_read"] == 0
    assert results["num_videos_without_face"] == 2
    assert any(w.startswith("blank: no face") for w in results["warnings"])
    assert results["overall"]["fn"] >= len(recording["truth"])  # the missing video's truth


def test_spot_db_without_any_video_is_one_error_before_results(tmp_path):
    from tests import db_fixtures as fx
    fx.casme3_long(tmp_path / "db", videos=2, micro=1, macro=1)
    import shutil
    shutil.rmtree(tmp_path / "db" / "part_A")  # every row is dropped: no video left
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "tscnn_tf.spot", "--db=casme3",
                          f"--data_dir={tmp_path / 'db'}", f"--output_dir={out}"],
                         capture_output=True, text=True, cwd=ROOT)
    assert "no video to spot" in error_line(run)
    assert not (out / "spotting_results.json").exists()
    with pytest.raises(spot.SpotError, match="no video to spot"):
        spot.evaluate_database([], spotting.SpotConfig())


@pytest.mark.parametrize("flag, value, expected", [
    ("--visualize", "signal", "must end in .png"),
    ("--visualize", "DIR", "is a folder"),
    ("--output", "nowhere/spots.csv", "does not exist"),
    ("--output", "DIR", "is a folder"),
])
def test_outputs_are_checked_before_the_first_frame(recording, tmp_path, flag, value, expected):
    target = tmp_path if value == "DIR" else tmp_path / value
    line = error_line(run_spot(f"--video={recording['path']}", f"{flag}={target}",
                               patch=NO_FRAMES))
    assert flag in line and str(target) in line and expected in line


def test_summary_json_is_checked_before_the_database_is_read(tmp_path):
    wanted = tmp_path / "nowhere" / "summary.json"
    line = error_line(run_spot("--db=synthetic_long", f"--data_dir={tmp_path / 'data'}",
                               "--dry_run", f"--summary_json={wanted}", "--synthetic_videos=1"))
    assert "--summary_json" in line and str(wanted) in line
    assert not (tmp_path / "data").exists()  # nothing was rendered


def test_spot_db_output_dir_is_checked_before_the_database_is_read(tmp_path):
    (tmp_path / "file").write_text("")
    line = error_line(run_spot("--db=synthetic_long", f"--data_dir={tmp_path / 'data'}",
                               f"--output_dir={tmp_path / 'file'}", "--synthetic_videos=1"))
    assert "is a file" in line and not (tmp_path / "data").exists()


@pytest.mark.parametrize("flag", ["--output=x.csv", "--visualize=x.png", "--summary_json=s.json"])
def test_spot_db_refuses_a_flag_it_would_ignore(tmp_path, flag):
    line = error_line(run_spot("--db=synthetic_long", f"--data_dir={tmp_path / 'data'}",
                               f"--output_dir={tmp_path / 'out'}", flag, "--synthetic_videos=1"))
    assert flag.split("=")[0] in line and not (tmp_path / "data").exists()


@pytest.mark.parametrize("fps", ["-5", "nan"])
def test_a_bad_frame_rate_is_named(recording, fps):
    line = error_line(run_spot(f"--video={recording['path']}", f"--fps={fps}", patch=NO_FRAMES))
    assert "--fps" in line


def test_ctrl_c_in_spot_says_what_spot_keeps(recording):
    patch = ("from tscnn_tf import spotting\n"
             "def interrupt(*a, **k): raise KeyboardInterrupt\n"
             "spotting.spot_stream = interrupt")
    run = run_spot(f"--video={recording['path']}", patch=patch)
    assert run.returncode == 130 and "Traceback" not in run.stderr, run.stderr[-2000:]
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("interrupted: ")]
    assert "does not resume" in line
    assert not any(word in line for word in ("records", "epochs", "folds"))
    assert "resume" in cli.INTERRUPTED["tscnn_tf.train"]
