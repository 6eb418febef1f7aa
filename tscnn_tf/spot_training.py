"""Training the learned spotter leak-free: leave-one-subject-out on a long-video database.

    python -m tscnn_tf.train --task=spotting --db=synthetic_long --workdir=W --export_dir=E

`run(config, workdir)` does it all:
1. the database's videos (`spot_runs.read_long_database`; `synthetic_long` is rendered);
2. each video's motion features (`spot_features.video_features`), cached under
   `W/features/` by the video's size and time and the feature settings;
3. the LBP spotter (`spotting.Spotter`, the project's training-free spotter) on each video,
   cached under `W/baseline/`: the baseline every learned figure stands beside;
4. one fold per subject: the temporal model (`spotter_model`) trained on the other subjects
   but a held-out validation share of them, stopped early on the validation subjects' loss,
   its thresholds chosen on the validation subjects (never on the test subject), then the
   test subject's videos spotted; `W/folds/<subject>/result.json`. Folds are claimed
   (`claims`), so several processes (`--loso_workers`) share them, and a finished fold is
   never trained again (resume);
5. `W/results.json`: `task: "spotting"`, MEGC TP/FP/FN, precision, recall and F1 per type and
   overall (`f1`, `precision`, `recall` at the top level), `per_fold`, and `baseline` (the LBP
   spotter's same figures on the same folds); with `--model` (a clip model's export) and emotion
   labels, every spotted interval recognised and STRS;
6. with an export folder, a final spotter on all subjects: `spotter.keras`, `spotter.tflite`,
   `spotter.npz` (the weights `spot --spotter` runs in numpy) and `metadata.json` (rate, time
   scales, thresholds, fingerprint, the subjects and database that trained it).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tscnn_tf import claims
from tscnn_tf.artifacts import package_versions, write_json_atomic
from tscnn_tf.config import ExperimentConfig, as_json, fingerprint
from tscnn_tf.errors import ToolkitError
from tscnn_tf.learned_spotting import (FILES, choose_thresholds, decode, file_sha256, targets,
                                       truth_dict)
from tscnn_tf.spotter_model import OUTPUTS
from tscnn_tf.spot_features import (NUM_FEATURES, FeatureSettings, feature_names,
                                    video_features)

log = logging.getLogger("tscnn_tf")
FEATURES_VERSION = 4  # bumped whenever the features or the face following change
RUN_FILES = ("folds", "results.json", "final")


class SpottingError(ToolkitError):
    """A spotting run that cannot be made from what it was given."""


@dataclasses.dataclass(frozen=True)
class SpotTrainSettings:
    """The spotting run's settings (from the config's `spotting` section; --epochs, --patience,
    --batch_size, --learning_rate, --val_fraction and --seed when given explicitly)."""

    features: FeatureSettings
    epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    window_s: float
    val_fraction: float
    seed: int
    width: int
    dropout: float

    def to_dict(self) -> dict:
        return as_json(dataclasses.asdict(self))


def settings_of(config: ExperimentConfig) -> SpotTrainSettings:
    """The spotting settings: the `spotting` section, overridden by the shared training flags
    the user gave (`config.run.given`)."""
    s, t, given = config.spotting, config.train, set(config.run.given)
    pick = {name: getattr(t, name) if name in given else getattr(s, f"spot_{name}")
            for name in ("epochs", "patience", "batch_size", "learning_rate")}
    return SpotTrainSettings(
        FeatureSettings(s.spot_rate, s.spot_micro_s, s.spot_macro_s), **pick,
        window_s=s.spot_window_s, val_fraction=t.val_fraction, seed=t.seed,
        width=s.spot_width, dropout=s.spot_dropout)


# -- the database ---------------------------------------------------------------------------
def read_videos(config: ExperimentConfig, workdir: Path):
    """The long-video database of the config (`synthetic_long` rendered into
    <workdir>/synthetic_long_db when no --data_dir)."""
    from tscnn_tf.databases.long_videos import LONG_DATABASES
    from tscnn_tf.spot_runs import read_long_database
    db = config.data.db
    if db not in LONG_DATABASES:
        raise SpottingError(f"--task=spotting needs a database of long videos with "
                            f"micro/macro intervals ({', '.join(LONG_DATABASES)}); --db={db} "
                            "holds clips (train it with the default --task=recognition)")
    s = config.spotting
    if db == "synthetic_long":
        if s.synthetic_long_subjects < 3:  # before anything is rendered
            raise SpottingError(f"leave-one-subject-out needs at least 3 subjects; "
                                f"--synthetic_long_subjects={s.synthetic_long_subjects}")
        options = {"seed": config.data.synthetic_seed, "num_videos": s.synthetic_long_subjects,
                   "seconds": s.synthetic_long_seconds, "fps": s.synthetic_long_fps,
                   "style": s.synthetic_long_style}
        data_dir = config.data.data_dir or workdir / "synthetic_long_db"
    else:
        if not config.data.data_dir:
            raise SpottingError(f"--data_dir is required for --db={db}")
        options = {"follow_symlinks": config.data.follow_symlinks}
        data_dir = config.data.data_dir
    try:
        database = read_long_database(db, data_dir, options)
    except FileNotFoundError as e:
        raise SpottingError(str(e)) from e
    videos = sorted(database.videos.values(), key=lambda v: v.name)
    for d in database.dropped[:5]:
        log.warning("dropped: %s", d)
    if not videos:
        raise SpottingError(f"--db={db} in {data_dir}: no video with ground truth to train on")
    return videos, database


def video_key(item) -> dict:
    """What a video's cached features depend on: where it is, its size and time."""
    path = Path(item.path)
    if path.is_dir():
        stats = [p.stat() for p in sorted(path.iterdir())]
        size, mtime = sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=0)
    else:
        stat = path.stat()
        size, mtime = stat.st_size, stat.st_mtime
    return {"path": str(path.resolve()), "size": size, "mtime": mtime, "fps": item.fps}


def safe_name(name: str) -> str:
    """A video's name as one file name (CAS(ME)² names are `s15/15_0101disgustingteeth`)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _stream(item):
    from tscnn_tf import video
    from tscnn_tf.databases.long_videos import frame_numbers
    path = Path(item.path)
    stream = video.Stream(video=path, fps=item.fps) if path.is_file() \
        else video.Stream(frames=path, fps=item.fps)
    return stream, frame_numbers(item)


def features_of(item, settings: FeatureSettings, cache: Path) -> dict:
    """The video's motion features (cached): features, frames (the sheet's frame numbers),
    restarts, gaps."""
    key = fingerprint({"video": video_key(item), "features": dataclasses.asdict(settings),
                       "version": FEATURES_VERSION, "names": feature_names()})
    path = cache / f"{safe_name(item.name)}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return {"features": data["features"], "frames": data["frames"],
                    "restarts": json.loads(str(data["restarts"])), "gaps": int(data["gaps"])}
    stream, numbers = _stream(item)
    out = video_features(stream, settings)
    frames = out["frames"] if numbers is None else np.asarray(numbers, np.int64)[out["frames"]]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=cache, suffix=".npz", delete=False) as f:
        np.savez(f, features=out["features"], frames=frames,
                 restarts=json.dumps(out["restarts"]), gaps=len(out["gaps"]))
    os.chmod(f.name, umask_mode(0o666))
    os.replace(f.name, path)
    return {"features": out["features"], "frames": frames, "restarts": out["restarts"],
            "gaps": len(out["gaps"])}


def baseline_of(item, cache: Path) -> list[dict]:
    """The LBP spotter's intervals on the video (cached)."""
    from tscnn_tf import spotting
    from tscnn_tf.spot_runs import spot_video
    key = fingerprint({"video": video_key(item), "config": dataclasses.asdict(
        spotting.SpotConfig()), "version": spotting.VERSION})
    path = cache / f"{safe_name(item.name)}-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    out = spot_video(item, spotting.SpotConfig())
    intervals = [{k: i[k] for k in ("onset", "apex", "offset", "score", "type")}
                 for i in out["intervals"]]
    cache.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, intervals)
    return intervals


# -- one fold -------------------------------------------------------------------------------
def windows(items: list[dict], length: int, count: int, rng) -> tuple:
    """`count` random windows of `length` samples (x, y, weight); short videos padded (weight
    0). Frames inside an expression weigh more (they are rare): 1 + 4 x target. Half the
    windows are mirrored left to right, and each window's motion is scaled by 0.7-1.4 (faces
    and subjects differ in how strongly they move)."""
    from tscnn_tf.spot_features import mirror_index
    order, sign = mirror_index()
    x = np.zeros((count, length, NUM_FEATURES), np.float32)
    y = np.zeros((count, length, len(OUTPUTS)), np.float32)
    w = np.zeros((count, length), np.float32)
    sizes = np.array([len(i["x"]) for i in items], float)
    picks = rng.choice(len(items), size=count, p=sizes / sizes.sum())
    for n, k in enumerate(picks):
        item = items[k]
        start = int(rng.integers(0, max(len(item["x"]) - length, 0) + 1))
        part = slice(start, start + length)
        size = len(item["x"][part])
        window = item["x"][part]
        if rng.random() < 0.5:
            window = window[:, order] * sign
        x[n, :size] = window * np.where(MOTION, rng.uniform(0.7, 1.4), 1.0)
        y[n, :size] = item["y"][part]
        w[n, :size] = 1 + 4 * item["y"][part].max(axis=1)
    return x, y, w


MOTION = np.array([n != "visible" for n in feature_names()])


def tiles(items: list[dict], length: int) -> tuple:
    """Every sample of the videos once, in windows of `length` (validation loss)."""
    xs, ys, ws = [], [], []
    for item in items:
        for start in range(0, len(item["x"]), length):
            x = np.zeros((length, NUM_FEATURES), np.float32)
            y = np.zeros((length, len(OUTPUTS)), np.float32)
            w = np.zeros(length, np.float32)
            part = slice(start, start + length)
            size = len(item["x"][part])
            x[:size], y[:size] = item["x"][part], item["y"][part]
            w[:size] = 1 + 4 * item["y"][part].max(axis=1)
            xs.append(x), ys.append(y), ws.append(w)
    return np.stack(xs), np.stack(ys), np.stack(ws)


def fit_spotter(train: list[dict], val: list[dict], settings: SpotTrainSettings):
    """(model, epochs trained, best validation loss): trained on `train` (each {"x", "y"}),
    stopped on `val`'s loss (the best weights kept)."""
    import keras
    from tscnn_tf.spotter_model import build_spotter
    rng = np.random.default_rng(settings.seed)
    everything = np.concatenate([i["x"] for i in train])  # the training subjects' statistics
    model = build_spotter(NUM_FEATURES, settings.width, dropout=settings.dropout,
                          seed=settings.seed, mean=everything.mean(axis=0),
                          # A feature (nearly) constant in training (`visible`) must not blow
                          # up where it differs later: standard deviations of at least 0.1.
                          variance=np.maximum(everything.var(axis=0), 0.01))
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                  loss="binary_crossentropy")
    length = max(16, int(round(settings.window_s * settings.features.rate)))
    total = sum(len(i["x"]) for i in train)
    count = max(settings.batch_size, 8 * total // length)  # each sample ~8 times an epoch
    val_x, val_y, val_w = tiles(val, length) if val else (None, None, None)
    best, best_weights, waited, epochs = np.inf, model.get_weights(), 0, 0
    for epoch in range(settings.epochs):
        x, y, w = windows(train, length, count, rng)
        model.fit(x, y, sample_weight=w, batch_size=settings.batch_size, epochs=1,
                  verbose=0, shuffle=False)
        epochs = epoch + 1
        if val_x is None:
            best_weights = model.get_weights()
            continue
        loss = float(model.evaluate(val_x, val_y, sample_weight=val_w,
                                    batch_size=settings.batch_size, verbose=0))
        if loss < best - 1e-4:
            best, best_weights, waited = loss, model.get_weights(), 0
        else:
            waited += 1
            if waited >= settings.patience:
                break
    model.set_weights(best_weights)
    return model, epochs, (None if val_x is None else best)


def split_validation(subjects: list[str], fraction: float, seed: int,
                     test: str = "") -> list[str]:
    """The validation subjects among the training subjects of the fold whose test subject is
    `test` ("" for the final spotter): whole subjects, at least one."""
    from tscnn_tf.loso import validation_subjects
    return validation_subjects(subjects, fraction, seed, test) if len(subjects) > 1 else []


def train_fold(data: dict, train_subjects: list[str], settings: SpotTrainSettings,
               test: str = "") -> dict:
    """A spotter trained on `train_subjects` (a validation share held out): its weights,
    thresholds, epochs and validation subjects."""
    from tscnn_tf.spotter_model import weights_of
    val_subjects = split_validation(train_subjects, settings.val_fraction, settings.seed, test)
    fit = [v for s in train_subjects if s not in val_subjects for v in data[s]]
    val = [v for s in val_subjects for v in data[s]]
    if not any(iv for v in fit for iv in v["truth"]):
        raise SpottingError(f"the training subjects {', '.join(sorted(set(train_subjects) - set(val_subjects)))} "
                            "hold no expression: nothing to learn from")
    model, epochs, val_loss = fit_spotter(fit, val, settings)
    weights = weights_of(model)
    from tscnn_tf.spotter_model import forward_numpy
    thresholds = choose_thresholds(val, [forward_numpy(weights, v["x"]) for v in val],
                                   settings.features.rate) \
        if val else {k: 0.5 for k in OUTPUTS}
    return {"model": model, "weights": weights, "thresholds": thresholds, "epochs": epochs,
            "val_loss": val_loss, "val_subjects": val_subjects}


# -- the run --------------------------------------------------------------------------------
def identity(config: ExperimentConfig, settings: SpotTrainSettings, videos) -> dict:
    """What the run's figures depend on: database, videos (size and time), settings."""
    data = {"db": config.data.db, "videos": {v.name: {**video_key(v), "path": None,
                                                      "intervals": len(v.intervals)}
                                             for v in videos}}
    if config.data.db == "synthetic_long":
        from tscnn_tf.databases.synthetic_long import VERSION as RENDERER
        s = config.spotting
        data["synthetic"] = {"renderer": RENDERER, "seed": config.data.synthetic_seed,
                             "style": s.synthetic_long_style,
                             "subjects": s.synthetic_long_subjects,
                             "seconds": s.synthetic_long_seconds, "fps": s.synthetic_long_fps}
        data["videos"] = sorted(data["videos"])  # rendered: the settings say what they are
    from tscnn_tf.spotting import VERSION as BASELINE
    return as_json({"task": "spotting", "data": data, "settings": settings.to_dict(),
                    "features": {"names": feature_names(), "version": FEATURES_VERSION},
                    "baseline": BASELINE})


def refuse_other_task(workdir: Path, overwrite: bool) -> None:
    """A workdir holding a recognition run is refused before anything is rendered or read
    (`--overwrite` lets the run record decide, as for other settings)."""
    try:
        held = json.loads((workdir / "config.json").read_text())["identity"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if isinstance(held, dict) and held.get("task") != "spotting" and not overwrite:
        raise SpottingError(f"{workdir} holds a recognition run, not a spotting run: give "
                            "--task=spotting its own --workdir (or --overwrite to replace it)")


def umask_mode(mode: int) -> int:
    """`mode` as the user's umask leaves it (temporary files and folders are made 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return mode & ~mask


def check_outputs(config: ExperimentConfig, workdir: Path) -> Path | None:
    """The workdir and export folder writable, before any work."""
    from tscnn_tf.artifacts import check_writable_dir
    check_writable_dir(workdir, "--workdir")
    export_dir = config.export.export_dir
    if config.export.final_model and export_dir is None:
        export_dir = f"saved_models/spotter_{config.data.db}"
    if not config.export.final_model:
        return None
    export_dir = Path(check_writable_dir(export_dir, "--export_dir"))
    # The export replaces the folder whole: only an earlier spotter export may be replaced.
    if any(p for p in export_dir.iterdir() if not p.name.startswith(".")):
        try:
            ours = json.loads((export_dir / "metadata.json").read_text()).get("task") == "spotting"
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise SpottingError(f"--export_dir {export_dir} holds files that are not a spotter "
                                "export; the export replaces the folder whole, so give an "
                                "empty or new folder (or an earlier spotter export)")
    return export_dir


def run(config: ExperimentConfig, workdir, on_ready=None, model=None) -> dict:
    """The spotting LOSO (resumed where it stopped), its results, and the final spotter's
    export. `model` (an `artifacts.ExportedModel`) recognises every spotted interval (STRS)."""
    from tscnn_tf.loso import claim_run_dir
    workdir = Path(workdir)
    settings = settings_of(config)
    refuse_other_task(workdir, config.run.overwrite)
    export_dir = check_outputs(config, workdir)
    videos, database = read_videos(config, workdir)
    subjects = sorted({v.subject for v in videos})
    by_subject = {s: [v for v in videos if v.subject == s] for s in subjects}
    folds = list(config.run.folds or subjects)
    unknown = [f for f in folds if f not in subjects and not (f.isdigit() and int(f) < len(subjects))]
    if unknown:
        raise SpottingError(f"--folds {unknown} names no subject of {subjects}")
    folds = [subjects[int(f)] if f not in subjects else f for f in folds]
    if len(subjects) < 3:
        raise SpottingError(f"leave-one-subject-out needs at least 3 subjects (a test subject, "
                            f"a validation subject and one to train on); {config.data.db} has "
                            f"{len(subjects)}: {', '.join(subjects)}")
    for s in subjects:
        if not any(v.intervals for v in by_subject[s]):
            log.warning("subject %s has no expression: its fold counts only false positives", s)
    with claims.exclusive(workdir / "config.claim", f"the run record of {workdir}"):
        record = claim_run_dir(workdir, identity(config, settings, videos), config.to_dict(),
                               config.run.overwrite, RUN_FILES)
    run_fp = record["fingerprint"]
    log.info("spotting run %s: %d videos of %d subjects (%s)", run_fp, len(videos),
             len(subjects), config.data.db)
    data = prepare(by_subject, settings, workdir)
    if on_ready is not None:
        on_ready()
    pending = run_folds(workdir, data, folds, subjects, settings, run_fp, model)
    out = {"fingerprint": run_fp, "pending": pending, "results": None, "export": None}
    if not pending:
        with claims.exclusive(workdir / "results.claim", f"the results of {workdir}"):
            out["results"] = aggregate(workdir, folds, run_fp, settings, config, model)
    if export_dir is not None:
        out["export"] = export_final(workdir, data, subjects, settings, run_fp, export_dir,
                                     config, out["results"])
        out["export_dir"] = str(export_dir)
    return out


def prepare(by_subject: dict, settings: SpotTrainSettings, workdir: Path) -> dict:
    """Each subject's videos with their features, targets and the baseline's intervals."""
    data = {}
    total = sum(len(v) for v in by_subject.values())
    n = 0
    for subject, items in by_subject.items():
        data[subject] = []
        for item in items:
            n += 1
            log.info("video %d/%d: %s (features, LBP baseline)", n, total, item.name)
            f = features_of(item, settings.features, workdir / "features")
            data[subject].append({"name": item.name, "x": f["features"], "frames": f["frames"],
                                  "y": targets(item.intervals, f["frames"], item.fps),
                                  "truth": list(item.intervals), "item": item,
                                  "restarts": f["restarts"], "gaps": f["gaps"],
                                  "baseline": baseline_of(item, workdir / "baseline")})
    return data


def run_folds(workdir: Path, data: dict, folds: list[str], subjects: list[str],
              settings: SpotTrainSettings, run_fp: str, model) -> dict:
    """Train every unfinished fold this process can claim; {fold: holder} of those others hold."""
    pending = {}
    for k, test in enumerate(folds):
        fold_dir = workdir / "folds" / test
        if fold_done(fold_dir, run_fp):
            continue
        claim = claims.try_claim(claims.beside(fold_dir))
        if claim is None:
            pending[test] = claims.describe(claims.read_claim(claims.beside(fold_dir)))
            continue
        with claim:
            if fold_done(fold_dir, run_fp):
                continue
            log.info("fold %d/%d: test subject %s", k + 1, len(folds), test)
            trained = train_fold(data, [s for s in subjects if s != test], settings, test)
            videos = []
            for v in data[test]:
                from tscnn_tf.spotter_model import forward_numpy
                scores = forward_numpy(trained["weights"], v["x"])
                spotted = decode(scores, v["frames"], trained["thresholds"],
                                 rate=settings.features.rate) if len(v["x"]) else []
                if model is not None:
                    spotted = recognise(v["item"], spotted, model)
                videos.append({"video": v["name"], "truth": [truth_dict(iv) for iv in v["truth"]],
                               "spotted": spotted, "baseline": v["baseline"],
                               "restarts": v["restarts"]})
            fold_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(fold_dir / "result.json", {
                "fingerprint": run_fp, "fold": test, "thresholds": trained["thresholds"],
                "epochs": trained["epochs"], "val_loss": trained["val_loss"],
                "val_subjects": trained["val_subjects"],
                "train_subjects": [s for s in subjects if s != test
                                   and s not in trained["val_subjects"]],
                "videos": videos})
    return {f: h for f, h in pending.items() if not fold_done(workdir / "folds" / f, run_fp)}


def fold_done(fold_dir: Path, run_fp: str) -> bool:
    try:
        return json.loads((fold_dir / "result.json").read_text()).get("fingerprint") == run_fp
    except (OSError, ValueError, AttributeError):
        return False


def recognise(item, spotted: list[dict], model) -> list[dict]:
    """Each spotted interval with `label` and `probabilities` from a clip model's export: the
    interval's frames through the feature stage's code (as `spot --model` does)."""
    from tscnn_tf import video
    from tscnn_tf.artifacts import clip_fields
    from tscnn_tf.features import FeatureConfig, clip_features
    from tscnn_tf.tracking import FaceTracker, TrackConfig
    model.require(clip_fields(), "spot-then-recognise")
    config = FeatureConfig(**model.metadata["params"])
    wanted = {i for s in spotted for i in range(s["onset"], s["offset"] + 1)}
    stream, numbers = _stream(item)
    tracker = FaceTracker(stream.fps, config=TrackConfig(face_size=config.face_size))
    crops, geometry = {}, None
    from tscnn_tf import face as face_lib
    for index, gray in stream:
        number = index if numbers is None else numbers[index]
        g = tracker.update(index, gray)
        if g is not None and number in wanted:
            crops[number] = face_lib.warp_to_face(gray, g)
            geometry = g
    out = []
    for s in spotted:
        indices = [i for i in range(s["onset"], s["offset"] + 1) if i in crops]
        if len(indices) < 3 or geometry is None:
            out.append({**s, "label": None, "probabilities": None})
            continue
        features = clip_features([crops[i] for i in indices], indices, geometry, config)
        probabilities = model(features)
        out.append({**s, "label": model.class_names[int(np.argmax(probabilities))],
                    "probabilities": {c: float(p) for c, p in
                                      zip(model.class_names, probabilities)}})
    return out


def scores_of(videos: list[dict], key: str) -> dict:
    """MEGC scores of the intervals under `key` ("spotted" or "baseline") of fold videos."""
    from tscnn_tf import metrics
    return metrics.spotting_scores([{"truth": v["truth"], "spotted": v[key]} for v in videos])


TYPES = ("micro", "macro", "overall")


def aggregate(workdir: Path, folds: list[str], run_fp: str, settings: SpotTrainSettings,
              config: ExperimentConfig, model) -> dict:
    """results.json from the folds' result.json files."""
    from tscnn_tf import metrics
    per_fold, videos = [], []
    for fold in folds:
        result = json.loads((workdir / "folds" / fold / "result.json").read_text())
        learned, base = scores_of(result["videos"], "spotted"), scores_of(result["videos"], "baseline")
        per_fold.append({"fold": fold, **{k: learned[k] for k in TYPES},
                         "f1": learned["overall"]["f1"], "thresholds": result["thresholds"],
                         "epochs": result["epochs"], "val_subjects": result["val_subjects"],
                         "baseline": {k: base[k] for k in TYPES}})
        videos += result["videos"]
    learned, base = scores_of(videos, "spotted"), scores_of(videos, "baseline")
    results = {"task": "spotting", "fingerprint": run_fp, "db": config.data.db,
               "num_folds": len(folds), "num_videos": len(videos),
               "f1": learned["overall"]["f1"], "precision": learned["overall"]["precision"],
               "recall": learned["overall"]["recall"],
               **{k: learned[k] for k in TYPES}, "per_fold": per_fold,
               "baseline": {"spotter": "lbp (tscnn_tf.spotting, default settings)",
                            "f1": base["overall"]["f1"], "precision": base["overall"]["precision"],
                            "recall": base["overall"]["recall"],
                            **{k: base[k] for k in TYPES}},
               "restarts": {"count": sum(len(v.get("restarts", [])) for v in videos),
                            "events": [{"video": v["video"], **r} for v in videos
                                       for r in v.get("restarts", [])]},
               "settings": settings.to_dict(), "packages": package_versions()}
    if model is not None:
        results["recognition"] = metrics.strs(learned, model.class_names)
    write_json_atomic(workdir / "results.json", results)
    return results


def export_final(workdir: Path, data: dict, subjects: list[str], settings: SpotTrainSettings,
                 run_fp: str, export_dir: Path, config: ExperimentConfig, results) -> dict | None:
    """The spotter trained on every subject (a validation share held out for stopping and
    thresholds), exported into `export_dir` as a whole: built beside it, swapped in complete."""
    metadata_path = export_dir / "metadata.json"
    if metadata_path.is_file():
        with_fp = json.loads(metadata_path.read_text()).get("fingerprint")
        if with_fp == run_fp:
            log.info("the final spotter of run %s is already in %s", run_fp, export_dir)
            return json.loads(metadata_path.read_text())
    claim = claims.try_claim(workdir / "final.claim")
    if claim is None:
        return None  # another process makes it
    with claim:
        log.info("final spotter: all %d subjects", len(subjects))
        trained = train_fold(data, subjects, settings)
        build = Path(tempfile.mkdtemp(dir=export_dir.parent, prefix=f".{export_dir.name}."))
        os.chmod(build, umask_mode(0o777))
        try:
            model = trained["model"]
            model.save(build / "spotter.keras")
            np.savez(build / "spotter.npz", **trained["weights"])
            tflite_error = write_tflite(model, build / "spotter.tflite")
            parity = check_parity(model, trained["weights"], data)
            metadata = {
                "task": "spotting", "fingerprint": run_fp, "fps": settings.features.rate,
                "features": dataclasses.asdict(settings.features),
                "scales": {"micro_s": settings.features.micro_s,
                           "macro_s": settings.features.macro_s},
                "thresholds": trained["thresholds"], "outputs": list(OUTPUTS),
                "feature_names": feature_names(),
                "model": {"width": settings.width, "dilations": [1, 2, 4, 8, 16],
                          "epochs": trained["epochs"]},
                "trained_on": {"db": config.data.db, "subjects": subjects,
                               "val_subjects": trained["val_subjects"]},
                "settings": settings.to_dict(), "parity": parity,
                "loso": None if results is None else {
                    "f1": results["f1"], "baseline_f1": results["baseline"]["f1"],
                    "folds": results["num_folds"]},
                "tflite": tflite_error or "spotter.tflite", "packages": package_versions(),
                "sha256": {name: file_sha256(build / name) for name in FILES[:3]
                           if (build / name).is_file()},
            }
            write_json_atomic(build / "metadata.json", metadata)
            swap_in(build, export_dir)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return metadata


def swap_in(build: Path, export_dir: Path) -> None:
    """Replace `export_dir` by the complete `build` folder: the old one renamed aside, the new
    one renamed in, the old one removed (a failure on the way leaves one of them whole)."""
    old = None
    if export_dir.exists() and any(export_dir.iterdir()):
        old = export_dir.with_name(f".{export_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(export_dir, old)
    elif export_dir.exists():
        export_dir.rmdir()
    os.replace(build, export_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_tflite(model, path: Path) -> str | None:
    """The spotter as TFLite (batch 1, any length: resize the input), converted from a
    SavedModel export of it (converting a traced function directly gave NaN scores); None, or
    why it failed."""
    import tensorflow as tf
    try:
        with tempfile.TemporaryDirectory() as saved:
            model.export(saved, format="tf_saved_model", verbose=False,
                         input_signature=[tf.TensorSpec([1, None, NUM_FEATURES], tf.float32)])
            path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(saved).convert())
        return None
    except Exception as e:  # noqa: BLE001 - the export still has Keras and numpy forms
        log.warning("spotter TFLite conversion failed: %s", e)
        return f"not written: {type(e).__name__}"


def check_parity(model, weights: dict, data: dict) -> dict:
    """The numpy forward pass against Keras on one training video (max |Δ score|)."""
    from tscnn_tf.spotter_model import forward_numpy
    video = next(v for videos in data.values() for v in videos if len(v["x"]))
    x = video["x"][:400]
    keras_scores = np.asarray(model(x[None], training=False))[0]
    return {"numpy_vs_keras_max_abs": float(np.abs(forward_numpy(weights, x) - keras_scores).max()),
            "samples": int(len(x))}


def report(outcome: dict, workdir: Path) -> str:
    """What `train --task=spotting` prints."""
    if outcome["results"] is None:
        held = ", ".join(f"{f} ({h})" for f, h in outcome["pending"].items())
        return (f"spotting run {outcome['fingerprint']}: folds still trained by other "
                f"processes: {held}; run again to aggregate")
    r, b = outcome["results"], outcome["results"]["baseline"]
    lines = [f"spotting LOSO over {r['num_folds']} subjects, {r['num_videos']} videos "
             f"({r['db']}), run {r['fingerprint']}; MEGC protocol (IoU >= 0.5, pooled)",
             f"{'':<22}{'TP':>5}{'FP':>5}{'FN':>5}{'P':>8}{'R':>8}{'F1':>8}"]
    for name, source in (("learned", r), ("LBP baseline", b)):
        for kind in TYPES:
            s = source[kind]
            lines.append(f"{name + ' ' + kind:<22}{s['tp']:>5}{s['fp']:>5}{s['fn']:>5}"
                         f"{s['precision']:>8.3f}{s['recall']:>8.3f}{s['f1']:>8.3f}")
    if "recognition" in r:
        rec = r["recognition"]
        lines.append(f"recognition of {rec['num_true_positives']} true positives: analysis F1 "
                     f"{rec['analysis_f1']:.3f}, STRS {rec['strs']:.3f}" if rec["strs"] is not None
                     else "STRS not measurable: the ground truth has no emotion labels")
    lines.append(f"results: {workdir / 'results.json'}")
    if outcome.get("export"):
        lines.append(f"spotter exported: {outcome['export_dir']}")
    return "\n".join(lines)
