"""Running the spotter over one input or a whole long-video database, and writing and scoring
what it finds: the library behind `python -m tscnn_tf.spot` (`spotting` is the spotter itself).

`spot_source` spots (and recognises, with a model) one stream in the input's own frame
indices; `evaluate_database` spots every video of a long-video database and scores it with the
MEGC protocol; `command` is the whole command for its options (`SpotOptions`, one field per
flag), the command's output included.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from tscnn_tf import spotting
from tscnn_tf.spotting import make_recogniser
from tscnn_tf.artifacts import (IMAGE_SUFFIXES, atomic_write, check_output_file,
                                check_writable_dir, write_json_atomic)
from tscnn_tf.config import DataConfig
from tscnn_tf.databases.long_videos import LONG_DATABASES
from tscnn_tf.errors import ToolkitError
from tscnn_tf.learned_spotting import load_spotter

COUNT_KEYS = ("frames_read", "frames_declared", "frames_unreadable", "frames_with_face")


class SpotError(ToolkitError):
    """A spotting input or output that cannot be used."""


def check_fps(fps: float | None) -> None:
    """--fps, when given, is a positive, finite number of frames per second."""
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise SpotError(f"--fps must be a positive number of frames per second, got {fps}")


def spot_source(stream, config: spotting.SpotConfig, model=None, on_interval=None,
                keep_trace: bool = False, numbers: list[int] | None = None,
                spotter=None) -> dict:
    """Spot (and recognise, with a model) one stream (`video.Stream`) with the LBP spotter, or
    with `spotter` (a `learned_spotting.SpotterExport`). Intervals and warnings are in the
    input's own frame indices (`Stream.index_of`: a skipped frame keeps its index), or in
    `numbers[index]` (a frame folder's file-name numbers); the stream's counts (COUNT_KEYS) and
    warnings are added, and a warning when no face was found."""
    def frame_of(position):
        index = stream.index_of(position)
        return index if numbers is None else numbers[index]
    recognise = make_recogniser(model) if model is not None else None
    if spotter is not None:
        from tscnn_tf.learned_spotting import learned_spot_stream
        out = learned_spot_stream(stream, stream.fps, spotter, recognise,
                                  on_interval=on_interval, keep_trace=keep_trace,
                                  frame_of=frame_of)
    else:
        out = spotting.spot_stream(stream, stream.fps, config, recognise,
                                   on_interval=on_interval, keep_trace=keep_trace,
                                   frame_of=frame_of)
    out.update(stream.counts())
    out["warnings"] = [*stream.warnings, *out["warnings"]]
    if out["frames"] and not out["frames_with_face"]:
        out["warnings"].append(f"no face found in any of the {out['frames']} frames read: "
                               "nothing could be spotted")
    if keep_trace:  # the plot's time axis in the input's indices too
        out["trace"] = {k: (stream.index_of(np.asarray(t, int)), v)
                        for k, (t, v) in out["trace"].items()}
    return out


def read_long_database(db: str, data_dir, options: dict | None = None):
    """A long-video database (`databases.long_videos.LongDatabase`: videos and drops)."""
    from tscnn_tf.databases import long_videos
    if db == "synthetic_long":
        from tscnn_tf.databases.synthetic_long import read_synthetic_long
        database = long_videos.LongDatabase(db)
        for item in read_synthetic_long(data_dir, **(options or {})):
            database.videos[item.name] = item
        return database
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"data_dir does not exist: {data_dir}")
    readers = {"casme_sq": long_videos.read_casme_sq_long, "samm_lv": long_videos.read_samm_lv,
               "casme3": long_videos.read_casme3_long}
    if db not in readers:
        raise ValueError(f"unknown long-video database {db!r}; choose from {LONG_DATABASES}")
    return readers[db](data_dir, **(options or {}))


def spot_video(item, config: spotting.SpotConfig, model=None, spotter=None) -> dict:
    """Spot one video of a long-video database in the frame numbers its ground truth uses. A
    video that cannot be opened spots nothing, with a warning (its intervals count as missed)."""
    from tscnn_tf import video
    from tscnn_tf.databases.long_videos import frame_numbers
    try:
        stream = video.Stream(video=item.path, fps=item.fps) if Path(item.path).is_file() \
            else video.Stream(frames=item.path, fps=item.fps)
    except video.ClipError as e:
        return {"intervals": [], "frames": 0, "frames_per_s": None,
                **dict.fromkeys(COUNT_KEYS, 0), "frames_declared": None,
                "warnings": [f"{e}: nothing spotted, its intervals count as missed"]}
    return spot_source(stream, config, model, numbers=frame_numbers(item), spotter=spotter)


def evaluate_database(videos, config: spotting.SpotConfig, model=None,
                      apex_tolerance_s: float = 0.05, on_video=None, spotter=None) -> dict:
    """Spot every video; MEGC scores (IoU ≥ 0.5, pooled), apex hits (±apex_tolerance_s) and,
    with a model, STRS. Returns the results (with each video's counts and warnings under
    `videos`) and one row per spotted or missed interval; `on_video(record)` sees each video's
    record as soon as it is spotted. Raises SpotError, before any result exists, when no
    video has a frame with a face."""
    from tscnn_tf import metrics
    if not videos:
        raise SpotError("no video to spot: the database has none left (see --dry_run)")
    if spotter is not None:
        from tscnn_tf.spot_features import check_rate
        for item in videos:
            check_rate(item.fps, spotter.settings, f"video {item.name}")
    per_video, rows, speeds, records = [], [], [], []
    hits = [0, 0, 0]
    for item in videos:
        out = spot_video(item, config, model, spotter)
        record = {"video": item.name, **{k: out[k] for k in COUNT_KEYS},
                  "num_intervals": len(out["intervals"]), "warnings": out["warnings"]}
        records.append(record)
        if on_video is not None:
            on_video(record)
        if out["frames_per_s"] is not None:
            speeds.append(out["frames_per_s"])
        truth = [{"onset": t.onset, "apex": t.apex, "offset": t.offset, "type": t.type,
                  "label": t.label} for t in item.intervals]
        per_video.append({"truth": truth, "spotted": out["intervals"]})
        apex = spotting.apex_hits(item.intervals, out["intervals"],
                                  max(1, round(apex_tolerance_s * item.fps)))
        hits = [hits[0] + apex["tp"], hits[1] + apex["fp"], hits[2] + apex["fn"]]
        rows += [{"video": item.name, "kind": "spotted", **{k: s.get(k) for k in
                  ("onset", "apex", "offset", "type", "score", "label")}} for s in out["intervals"]]
        rows += [{"video": item.name, "kind": "truth", **t, "score": None} for t in truth]
    if not any(r["frames_with_face"] for r in records):
        raise SpotError(f"no usable video: none of the {len(videos)} video(s) has a readable "
                        "frame with a face (see the warnings above); no results written")
    scores = metrics.spotting_scores(per_video)
    results = {"num_videos": len(videos),
               "config": dataclasses.asdict(config) if spotter is None else {
                   "thresholds": spotter.thresholds, "features": spotter.metadata["features"]},
               "spotter": "lbp" if spotter is None else {
                   "export": str(spotter.path), "fingerprint": spotter.metadata.get("fingerprint")},
               **{k: scores[k] for k in ("micro", "macro", "overall")},
               "apex_hits": {"tolerance_s": apex_tolerance_s, **metrics.prf(*hits)},
               "frames_per_s": float(np.mean(speeds)) if speeds else None,
               "num_videos_without_face": sum(not r["frames_with_face"] for r in records),
               "warnings": [f"{r['video']}: {w}" for r in records for w in r["warnings"]],
               "videos": records}
    if model is not None:
        results["recognition"] = metrics.strs(scores, model.class_names)
    return {"results": results, "rows": rows}


def write_intervals_csv(path, rows: list[dict]) -> None:
    """The intervals (spotted, and with --db the ground truth's) as one CSV, written atomically."""
    fields = ["video", "kind", "onset", "apex", "offset", "type", "score", "label"]
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def format_scores(results: dict) -> str:
    """evaluate_database's scores as the table the command prints."""
    lines = [f"{'':<10}{'TP':>5}{'FP':>5}{'FN':>5}{'P':>8}{'R':>8}{'F1':>8}"]
    for name in ("micro", "macro", "overall", "apex_hits"):
        r = results[name]
        lines.append(f"{name:<10}{r['tp']:>5}{r['fp']:>5}{r['fn']:>5}{r['precision']:>8.3f}"
                     f"{r['recall']:>8.3f}{r['f1']:>8.3f}")
    if "recognition" in results:
        r = results["recognition"]
        lines.append(f"recognition of {r['num_true_positives']} true positives: analysis F1 "
                     f"{r['analysis_f1']:.3f}, STRS {r['strs']:.3f}" if r["strs"] is not None
                     else "STRS not measurable: the ground truth has no emotion labels")
    if results["frames_per_s"] is not None:
        lines.append(f"{results['frames_per_s']:.0f} frames/s")
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class SpotOptions:
    """What `python -m tscnn_tf.spot` is asked to do: one field per flag, named as the flag and
    with its default. One input (`video`, `frames` or `camera`), or a long-video `db`."""

    video: str | None = None
    frames: str | None = None
    camera: int | None = None
    fps: float | None = None
    model: str | None = None
    spotter: str | None = None
    json: bool = False
    output: str | None = None
    visualize: str | None = None
    signal: str = spotting.SpotConfig.signal
    threshold: float = spotting.SpotConfig.threshold
    micro_max_s: float = spotting.SpotConfig.micro_max_s
    db: str | None = None
    data_dir: str | None = None
    follow_symlinks: bool = DataConfig.follow_symlinks
    dry_run: bool = False
    summary_json: str | None = None
    output_dir: str | None = None
    synthetic_seed: int = 0
    synthetic_videos: int = 4
    synthetic_seconds: float = 12.0
    synthetic_style: str = "plain"


def command(options: SpotOptions) -> None:
    """`python -m tscnn_tf.spot`: spot one input (`command_source`) or spot and score a
    long-video database (`command_database`), printing what the command prints. Raises SpotError
    (or ValueError, OSError) for what the command reports as one `error:` line."""
    check_fps(options.fps)
    if options.spotter is not None:
        if not options.spotter.strip():
            raise SpotError("--spotter is empty: give a learned spotter's export folder, or "
                            "leave the flag out for the LBP spotter")
        lbp_only = [f"--{name}" for name in ("signal", "threshold", "micro_max_s")
                    if getattr(options, name) != getattr(SpotOptions, name)]
        if lbp_only:  # settings of the LBP spotter would be silently ignored
            raise SpotError(f"{', '.join(lbp_only)} set(s) the LBP spotter; the learned spotter "
                            "(--spotter) has its own thresholds and types in its export")
    config = spotting.SpotConfig(signal=options.signal, threshold=options.threshold,
                                 micro_max_s=options.micro_max_s)
    if options.db:
        command_database(options, config)
    else:
        command_source(options, config)


def command_database(options: SpotOptions, config: spotting.SpotConfig) -> None:
    """Every output checked, then the database read and summarised; with `dry_run` the summary
    (to `summary_json`), otherwise every video spotted and scored: spotting_results.json and
    spotting_intervals.csv in `output_dir` (default runs/spot/<db>)."""
    from tscnn_tf.predicting import load_model
    db = options.db
    unused = [f"--{name}" for name in ("output", "visualize", "video", "frames", "camera")
              if getattr(options, name) is not None]
    if options.summary_json and not options.dry_run:
        unused.append("--summary_json (only with --dry_run)")
    if unused:  # a flag that would be silently ignored is refused before any work
        raise SpotError(f"--db={db} writes spotting_results.json and "
                        f"spotting_intervals.csv into --output_dir; it does not use "
                        f"{', '.join(unused)}")
    synthetic = {"seed": options.synthetic_seed, "num_videos": options.synthetic_videos,
                 "seconds": options.synthetic_seconds, "fps": options.fps or 100.0,
                 "style": options.synthetic_style}
    if db != "synthetic_long" and not options.data_dir:
        raise ValueError(f"--data_dir is required for --db={db}")
    if options.dry_run and options.summary_json:  # every output is checked before any work
        check_output_file(options.summary_json, "--summary_json")
    spotter = load_spotter(options.spotter) if options.spotter else None
    if not options.dry_run:
        out_dir = check_writable_dir(options.output_dir or f"runs/spot/{db}")
        for name in ("spotting_results.json", "spotting_intervals.csv"):
            check_output_file(out_dir / name, "--output_dir")
    database = read_long_database(db, options.data_dir or f"runs/spot/{db}/data",
                                  synthetic if db == "synthetic_long" else
                                  {"follow_symlinks": options.follow_symlinks})
    summary = database.summary()
    print(f"{db}: {summary['num_videos']} videos, {summary['num_subjects']} subjects, "
          f"{summary['intervals']['micro']} micro and {summary['intervals']['macro']} macro "
          f"intervals, {len(summary['dropped'])} row(s) dropped "
          f"{summary['dropped_per_reason'] or ''}")
    if options.dry_run:
        if options.summary_json:
            write_json_atomic(options.summary_json, summary)
        return
    videos = list(database.videos.values())
    model = load_model(options.model) if options.model else None

    def warn(record):
        for warning in record["warnings"]:
            print(f"warning: {record['video']}: {warning}", file=sys.stderr, flush=True)
    evaluated = evaluate_database(videos, config, model, on_video=warn, spotter=spotter)
    write_json_atomic(out_dir / "spotting_results.json", evaluated["results"])
    write_intervals_csv(out_dir / "spotting_intervals.csv", evaluated["rows"])
    print(format_scores(evaluated["results"]))
    print(f"results: {out_dir / 'spotting_results.json'}  intervals: "
          f"{out_dir / 'spotting_intervals.csv'}")


def command_source(options: SpotOptions, config: spotting.SpotConfig) -> None:
    """Every output checked, then one video, frame folder or camera spotted: each interval
    printed as soon as it is decided (or one JSON object at the end), the intervals to
    `output` (CSV), the signal to `visualize` (PNG). A video or folder without a face raises
    SpotError after its output (a camera goes on)."""
    from tscnn_tf import video
    from tscnn_tf.predicting import load_model
    spotter = load_spotter(options.spotter) if options.spotter else None
    if options.output:
        check_output_file(options.output, "--output")
    if options.visualize:
        check_output_file(options.visualize, "--visualize", IMAGE_SUFFIXES)
    stream = video.Stream(options.video, options.frames, options.camera, options.fps)
    model = load_model(options.model) if options.model else None

    def show(interval):  # as soon as an interval is decided (a camera never ends)
        if not options.json:
            label = f"  {interval['label']}" if interval.get("label") else ""
            print(f"{interval['type']:<6} onset {interval['onset']:>7}  apex {interval['apex']:>7}"
                  f"  offset {interval['offset']:>7}  score {interval['score']:.2f}{label}",
                  flush=True)
    out = spot_source(stream, config, model, on_interval=show,
                      keep_trace=bool(options.visualize), spotter=spotter)
    for warning in out["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if options.output:
        source = options.video or options.frames or f"camera{options.camera}"
        rows = [{"video": Path(source).name, "kind": "spotted", **i} for i in out["intervals"]]
        write_intervals_csv(options.output, rows)
    if options.visualize:
        from tscnn_tf import plots
        plots.write_png(options.visualize, plots.spotting_image(out["trace"], out["intervals"],
                                                                out["fps"]))
    if options.json:
        print(json.dumps({k: out[k] for k in ("frames", "fps", "intervals", "frames_per_s",
                                              "warnings", *COUNT_KEYS, "restarts")}))
    else:
        print(f"{len(out['intervals'])} interval(s) in {out['frames']} frames, "
              f"{out['frames_per_s'] or 0:.0f} frames/s")
    if options.camera is None and not out["frames_with_face"]:
        source = options.video or options.frames
        raise SpotError(f"no frame of {source} could be read" if not out["frames"] else
                        f"no face found in {source}: nothing was spotted")
