"""The leave-one-subject-out library: folds, subject-held-out stopping, aggregation and the
final all-subject model (Sections II.C, III.A-B), for any model of the registry
(`tscnn_tf.models`, `--model`). `tscnn_tf.train` is its entry.

`--fold_by=database` leaves one database out instead (the MEGC2019 composite: subjects
prefixed casme2_, smic_, samm_); the validation split stays subject-held-out within the
training databases.

Early stopping uses a validation split held out *by subject from the training subjects*; the
test subject is only seen by the fold's final evaluation. Each fold writes its predictions;
finished folds are skipped and an unfinished fold resumes from its last epoch. Several processes
may share one workdir: each fold (and the final model) is trained by the process that claims it
(`tscnn_tf.claims`), and whichever finishes the last fold aggregates.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from tscnn_tf import claims, workers
from tscnn_tf.config import TrainConfig, as_json, differences, fingerprint, model_settings
from tscnn_tf.errors import ToolkitError
from tscnn_tf.artifacts import (atomic_write, check_writable_dir, copy_atomic, remove,
                                save_model_atomic, write_json_atomic)

log = logging.getLogger("tscnn_tf")


class TrainingError(ToolkitError):
    """A run that cannot give an honest result (too few subjects, mismatched records, ...)."""


def validation_subjects(train_subjects: list[str], fraction: float, seed: int,
                        test_subject: str) -> list[str]:
    """A deterministic, fold-specific choice of whole training subjects for early stopping."""
    if len(train_subjects) < 2:
        raise TrainingError("a subject-held-out validation split needs at least 3 subjects "
                            "in the database (1 test, 1 validation, 1 training)")
    rng = np.random.default_rng([seed, sum(map(ord, test_subject))])
    count = min(max(1, round(fraction * len(train_subjects))), len(train_subjects) - 1)
    return sorted(rng.choice(sorted(train_subjects), size=count, replace=False).tolist())


DEFAULT_DROPOUT = TrainConfig().dropout
# Training steps per call into TensorFlow: the same updates in the same order (tested), with a
# sixteenth of the per-step Python overhead, which dominates for the small models.
STEPS_PER_EXECUTION = 16


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """What a run trains: the registry entry, the settings its builder gets and the record
    fields it reads."""

    entry: object
    settings: dict
    fields: tuple[str, ...]

    def make(self, num_classes: int, blocks: int):
        return self.entry.make(num_classes, blocks=blocks, **self.settings)


def builder_settings(config: TrainConfig) -> dict:
    """The settings a model's builder gets: `--variant`; for the TSCNN `--streams` and
    `--dropout`; for any other model `--dropout` only when it is not the default (each model
    keeps its own rate: HTNet's is 0); `--model_settings` last."""
    out = {"variant": config.variant}
    if config.model == "tscnn":
        out.update(streams=config.streams, dropout=config.dropout)
    elif config.dropout != DEFAULT_DROPOUT:
        out["dropout"] = config.dropout
    return {**out, **model_settings(config)}


def check_model_settings(config: TrainConfig):
    """Resolve `--model` and check its settings (what needs no records): one clear error before
    the feature stage or any fold. Returns (registry entry, builder settings)."""
    import inspect
    from tscnn_tf import models
    entry = models.get(config.model)
    settings = builder_settings(config)
    if "blocks" in settings:
        raise TrainingError("--model_settings: blocks is the n of the records (--blocks), not "
                            "a model setting")
    params = inspect.signature(entry.build).parameters
    open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())  # a builder's **kwargs
    if not open_ended and (unknown := [k for k in model_settings(config) if k not in params]):
        takes = ", ".join(k for k in params if k != "num_classes") or "nothing"
        raise TrainingError(f"--model_settings: {config.model} takes no "
                            f"{', '.join(unknown)}; it takes {takes}")
    if config.pretrained_s and config.model != "tscnn":
        raise TrainingError(f"--pretrained_s initialises the TSCNN's S stream; --model="
                            f"{config.model} has none")
    return entry, settings


def plan_model(config: TrainConfig, manifest: dict, records: str = "the records") -> ModelPlan:
    """`check_model_settings`, and that the records hold every field the model reads: one
    clear error before any fold."""
    from tscnn_tf import data, models
    entry, settings = check_model_settings(config)
    stored = data.stored_fields(manifest)
    if entry.fields is not None:
        fields = entry.fields_for(**settings)
        if model_settings(config):  # a value the builder refuses fails here, not in a fold
            try:
                entry.make(len(manifest["class_names"]), blocks=manifest["params"]["blocks"],
                           **settings)
            except (ValueError, TypeError, models.ModelError) as e:
                reason = str(e).removeprefix(f"--model={config.model}: ")
                raise TrainingError(f"--model_settings={','.join(config.model_settings)}: "
                                    f"--model={config.model} refuses it ({reason})") from None
    else:  # a user builder: its fields are the built model's input names
        fields = models.input_fields(entry.make(len(manifest["class_names"]),
                                                blocks=manifest["params"]["blocks"], **settings))
    models.require_fields(config.model, fields, stored, records)
    return ModelPlan(entry, settings, tuple(fields))


def custom_objects(plan: ModelPlan) -> dict:
    """A loss given as a function, so a resumed `last.keras` compiles again."""
    loss = plan.entry.loss
    return {loss.__name__: loss} if callable(loss) and hasattr(loss, "__name__") else {}


def make_optimizer(config: TrainConfig):
    """The shared optimiser: the old import path of `tscnn_tf.optimizer.make_optimizer`."""
    from tscnn_tf.optimizer import make_optimizer as make
    return make(config)


class OwnershipLost(TrainingError):
    """This process no longer owns what it was training: another took its claim over, or the
    run folder now belongs to another run (`--overwrite` by another process)."""


def run_fingerprint(run_dir: Path) -> str | None:
    """The fingerprint in `run_dir/config.json`, None without a readable one."""
    try:
        return json.loads((Path(run_dir) / RUN_FILE).read_text()).get("fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


@dataclasses.dataclass(frozen=True)
class Ownership:
    """What a process must still hold to write into a piece of work (`what`, e.g. "fold
    sub01"): the run folder `run_dir` with `fingerprint` in its config.json, and `claim`.
    Either may be None (not checked)."""

    what: str
    run_dir: Path | None = None
    fingerprint: str | None = None
    claim: object = None

    def check(self) -> None:
        """Raise `OwnershipLost` when either is lost: checked before each write."""
        if self.fingerprint is not None and (
                found := run_fingerprint(self.run_dir)) != self.fingerprint:
            now = f"run {found}" if found else "no run (its config.json is gone)"
            raise OwnershipLost(
                f"{self.what}: {self.run_dir} now holds {now}, not run {self.fingerprint} that "
                "this process trains (--overwrite by another process?); this process stops "
                "and writes nothing more there")
        if self.claim is not None and (holder := self.claim.taken_by()) is not None:
            raise OwnershipLost(
                f"{self.what}: {self.claim.path.name} was taken over by {holder} while this "
                "process trained it (paused past the stale limit?); this process stops and "
                "leaves its checkpoints and predictions to that process")


def make_checkpoint_callback(fold_dir: Path, patience: int, state: dict, min_delta: float = 0.0,
                             owner: Ownership | None = None, saved=None):
    """Early stopping on validation loss whose state survives an interruption. `saved`: the
    model written to last.keras and best.keras (default the one trained; the whole model when
    only its core is trained, `models.stem`).

    An epoch counts as an improvement when the validation loss falls below the best so far by
    more than `min_delta`; training stops after `patience` epochs without one. With `owner`,
    each epoch end first checks that this process still owns the work (`Ownership.check`):
    once it is lost, training stops at once, before any checkpoint is written.
    """
    import keras

    class FoldCheckpoint(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if owner is not None:
                owner.check()
            logs = logs or {}
            lr = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(lr(self.model.optimizer.iterations) if callable(lr) else lr)
            val = float(logs["val_loss"])
            improved = val < state["best_val_loss"] - min_delta or not state["best_epoch"]
            if improved:
                state.update(best_val_loss=val, best_epoch=epoch + 1, wait=0)
            else:
                state["wait"] += 1
            state["epoch"] = epoch + 1
            model = saved or self.model
            state["seed_states"] = [v.numpy().tolist() for v in seed_states(model)]
            save_model_atomic(model, fold_dir / "last.keras")
            if improved:  # a file copy is 25x faster than serialising the model again
                copy_atomic(fold_dir / "last.keras", fold_dir / "best.keras")
            write_json_atomic(fold_dir / "state.json", state)
            if state["wait"] >= patience:
                self.model.stop_training = True

    return FoldCheckpoint()


def seed_states(model) -> list:
    """The state variables of the model's random seed generators (dropout's masks), which
    `.keras` files do not keep: `state.json` does, so a resumed fold draws the masks an
    uninterrupted one would."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def fold_class_warnings(manifest: dict, train: list[str], test: str | None,
                        test_subjects: list[str] | None = None) -> list[str]:
    """The honest caveats of a fold: classes missing from its test or training subjects.
    `test` names the fold (a subject, or a database whose subjects are `test_subjects`)."""
    classes = manifest["class_names"]
    members = set(test_subjects or [test])
    train_labels = {e["label_name"] for e in manifest["samples"] if e["subject"] in train}
    test_labels = {e["label_name"] for e in manifest["samples"] if e["subject"] in members}
    what = "test subject" if test_subjects is None or members == {test} else "test database"
    out = []
    if missing := [c for c in classes if c not in train_labels]:
        out.append(f"class(es) {missing} have no training sample when testing on {test}: "
                   "the model cannot predict them in this fold")
    if test is not None and (missing := [c for c in classes if c not in test_labels]):
        out.append(f"{what} {test} has no sample of {missing} (normal under LOSO; "
                   "pooled metrics are still defined)")
    return out


def flow_norm_of(manifest: dict) -> str:
    """Eq. 5 mode of the records (records made before the option existed used channel)."""
    return manifest["params"].get("flow_norm", "channel")


def fit_model(run_dir: Path, files: list[str], manifest: dict, fit: list[str], val: list[str],
              config: TrainConfig, plan: ModelPlan, owner: Ownership | None = None):
    """Train `plan`'s model on the subjects `fit`, stopping early on the subjects `val`;
    resumable. Every model gets the same optimiser (`optimizer.make_optimizer`), stopping and
    seeds.
    With `owner`, stops with `OwnershipLost` at the first epoch end after it is lost, having
    written nothing since; its run fingerprint is kept in state.json.

    Returns the model of the best validation epoch (saved as `run_dir/best.keras`).
    """
    import keras
    from tscnn_tf import data
    from tscnn_tf.models.stem import split as split_stem
    from tscnn_tf.optimizer import make_optimizer  # also registers it for `last.keras`
    n = manifest["params"]["blocks"]
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    state = {"epoch": 0, "best_val_loss": float("inf"), "best_epoch": 0, "wait": 0}
    with distribution_strategy().scope():
        if (run_dir / "last.keras").is_file() and (run_dir / "state.json").is_file():
            state = json.loads((run_dir / "state.json").read_text())
            model = keras.saving.load_model(run_dir / "last.keras",
                                            custom_objects=custom_objects(plan))
            for variable, value in zip(seed_states(model), state.get("seed_states", [])):
                variable.assign(np.asarray(value, variable.dtype))
            log.info("%s: resuming after epoch %d", run_dir.name, state["epoch"])
        else:
            model = plan.make(len(manifest["class_names"]), n)
            if config.pretrained_s:
                from tscnn_tf.models.tscnn import load_s_stream
                try:
                    log.info("S stream initialised from %s (%d layers)", config.pretrained_s,
                             load_s_stream(model, config.pretrained_s))
                except (OSError, ValueError) as e:
                    raise TrainingError(f"--pretrained_s: {e}") from e
            model.compile(make_optimizer(config), loss=plan.entry.loss, metrics=["accuracy"],
                          steps_per_execution=STEPS_PER_EXECUTION)
            write_hparams(run_dir / "logs", {**dataclasses.asdict(config), **manifest["params"],
                                             **{f"model.{k}": v for k, v in plan.settings.items()}})
        # Training fits the part after the weight-free front, which the pipeline computes once
        # per sample; `model` (the same layers) is what is saved, resumed and exported.
        stem, trainer = split_stem(model)
        if trainer is not model:
            trainer.compile(model.optimizer, loss=model.loss, metrics=["accuracy"],
                            steps_per_execution=STEPS_PER_EXECUTION)
    if owner is not None and owner.fingerprint is not None:
        state["fingerprint"] = owner.fingerprint
    # The thread counts it trained with (a resumed fold may add one): they can move the last bits.
    state["threads"] = sorted(set(state.get("threads", [])) | {workers.current_threads()})
    train_ds = data.make_dataset(files, n, plan.fields, fit, training=True,
                                 augment_x10=config.augment, batch_size=config.batch_size,
                                 seed=config.seed, flow_norm=flow_norm_of(manifest), stem=stem)
    val_ds = data.make_dataset(files, n, plan.fields, val, batch_size=config.batch_size,
                               stem=stem)
    for _ in range(state["epoch"]):
        # Each new iterator reshuffles: a resumed fold skips the orders of the epochs it had
        # trained, so it goes on with the batches the uninterrupted fold would have seen.
        iter(train_ds)
    if state["wait"] < config.patience and state["epoch"] < config.epochs:
        with warnings.catch_warnings():
            # Keras says "Your input ran out of data" when a dataset of unknown length ends
            # inside a call of several steps: that is every epoch's normal end here. (The
            # pipeline shuffles: Keras would ignore shuffle=True for a dataset, with a warning.)
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            trainer.fit(train_ds, validation_data=val_ds, epochs=config.epochs, shuffle=False,
                        initial_epoch=state["epoch"], verbose=keras_verbosity(),
                        callbacks=[make_checkpoint_callback(run_dir, config.patience, state,
                                                            config.min_delta, owner, model),
                                   keras.callbacks.TensorBoard(str(run_dir / "logs"))])
    return keras.saving.load_model(run_dir / "best.keras", compile=False)


def keras_verbosity(stream=None) -> int:
    """A progress bar on a terminal; one line per epoch in a log file or a pipe."""
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


def distribution_strategy():
    """MirroredStrategy over every GPU when there are several; else the default strategy."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def write_hparams(logdir: Path, hparams: dict) -> None:
    """The run's settings for TensorBoard's HParams dashboard."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
              for k, v in hparams.items()}
    with tf.summary.create_file_writer(str(logdir)).as_default():
        hp.hparams_config(hparams=[hp.HParam(k) for k in values],
                          metrics=[hp.Metric("test_accuracy", group="test"),
                                   hp.Metric("epoch_loss", group="validation"),
                                   hp.Metric("epoch_accuracy", group="validation")])
        hp.hparams(values)


def log_confusion(logdir: Path, cm, class_names: list[str], title: str, step: int) -> None:
    """The confusion matrix as a TensorBoard image."""
    import tensorflow as tf
    from tscnn_tf.plots import confusion_matrix_image
    with tf.summary.create_file_writer(str(logdir)).as_default():
        tf.summary.image("confusion_matrix", confusion_matrix_image(cm, class_names, title)[None],
                         step=step)


def database_of(subject: str) -> str:
    """The source database of a composite subject: its prefix before the first '_'."""
    return subject.split("_", 1)[0]


def fold_groups(manifest: dict, fold_by: str = "subject") -> dict[str, list[str]]:
    """fold name -> its test subjects: one fold per subject, or (`database`) per subject
    prefix, each with at least 2 subjects left to train and validate on."""
    subjects = sorted({e["subject"] for e in manifest["samples"]})
    if fold_by == "subject":
        return {s: [s] for s in subjects}
    if fold_by != "database":
        raise TrainingError(f"--fold_by must be subject or database, got {fold_by!r}")
    if bare := [s for s in subjects if "_" not in s.strip("_")]:
        raise TrainingError(f"--fold_by=database reads each subject's database from its prefix "
                            f"(casme2_, smic_, samm_, as the megc2019 reader writes them); "
                            f"{len(bare)} subject(s) have none: {', '.join(bare[:5])}"
                            + (f" and {len(bare) - 5} more" if len(bare) > 5 else ""))
    groups: dict[str, list[str]] = {}
    for s in subjects:
        groups.setdefault(database_of(s), []).append(s)
    if len(groups) < 2:
        raise TrainingError(f"--fold_by=database needs subjects of at least 2 databases; all "
                            f"{len(subjects)} subjects are of {next(iter(groups))}")
    for name, members in groups.items():
        if len(subjects) - len(members) < 2:
            raise TrainingError(f"--fold_by=database: testing on {name} leaves "
                                f"{len(subjects) - len(members)} subject(s) to train on; a "
                                "subject-held-out validation split needs at least 2")
    return groups


@contextlib.contextmanager
def quiet_retracing():
    """TensorFlow's warnings off for the block (its errors still show): each fold's new model
    traces its own predict function, which TensorFlow reports, from the sixth fold on, as
    "excessive retracing"; here that is expected."""
    import tensorflow as tf
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def train_fold(fold_dir: Path, files: list[str], manifest: dict, fold: str,
               config: TrainConfig, plan: ModelPlan | None = None,
               test_subjects: list[str] | None = None, claim=None,
               fingerprint: str | None = None) -> list[dict]:
    """Train on all subjects but the fold's (`test_subjects`, default [fold]; validation held
    out by subject), then predict the test subjects once. Returns and writes its predictions.
    With the fold's `claim` and the run's `fingerprint` (recorded in split.json, state.json and
    predictions.csv): stops with `OwnershipLost`, writing nothing more, at the first epoch end
    or write after another process took the claim over (this one was paused past the stale
    limit) or the workdir's config.json stopped holding `fingerprint` (an `--overwrite`)."""
    import tensorflow as tf
    from tscnn_tf import data
    from tscnn_tf.metrics import evaluate

    plan = plan or plan_model(config, manifest)
    owner = Ownership(f"fold {fold}", fold_dir.parent.parent, fingerprint, claim)
    owner.check()
    test_subjects = test_subjects or [fold]
    fold_dir.mkdir(parents=True, exist_ok=True)
    n = manifest["params"]["blocks"]
    subjects = sorted({e["subject"] for e in manifest["samples"]})
    train = [s for s in subjects if s not in test_subjects]
    val = validation_subjects(train, config.val_fraction, config.seed, fold)
    fit = [s for s in train if s not in val]
    warnings = fold_class_warnings(manifest, fit, fold, test_subjects)
    for warning in warnings:
        log.warning(warning)
    stamp = {} if fingerprint is None else {"fingerprint": fingerprint}
    write_json_atomic(fold_dir / "split.json", {"test": test_subjects, "validation": val,
                                                "train": fit, "warnings": warnings, **stamp})
    best = fit_model(fold_dir, files, manifest, fit, val, config, plan, owner)
    # The test subjects, seen for the first and only time.
    class_names = manifest["class_names"]
    predictions = []
    with quiet_retracing():
        for batch in data.make_dataset(files, n, plan.fields, test_subjects, keep_meta=True,
                                       batch_size=config.batch_size):
            probs = best.predict(data.to_model_inputs(batch, plan.fields)[0], verbose=0)
            for i in range(len(probs)):
                predictions.append({
                    "sample_id": batch["sample_id"][i].numpy().decode(),
                    "subject": batch["subject"][i].numpy().decode(), "fold": fold,
                    "label": int(batch["label"][i]), "pred": int(np.argmax(probs[i])),
                    **{f"p_{c}": float(p) for c, p in zip(class_names, probs[i])}, **stamp})
    owner.check()
    write_predictions(fold_dir / "predictions.csv", predictions)  # marks the fold as finished
    scores = evaluate([p["label"] for p in predictions], [p["pred"] for p in predictions],
                      class_names)
    step = json.loads((fold_dir / "state.json").read_text())["best_epoch"]
    with tf.summary.create_file_writer(str(fold_dir / "logs" / "test")).as_default():
        tf.summary.scalar("test_accuracy", scores["accuracy"], step=step)
    log_confusion(fold_dir / "logs" / "test", scores["confusion_matrix"], class_names,
                  f"test {'subject' if test_subjects == [fold] else 'database'} {fold}", step)
    return predictions


def fit_finished(run_dir: Path, config: TrainConfig) -> bool:
    """Whether `fit_model` stopped in `run_dir` (early, or after the last epoch)."""
    try:
        state = json.loads((run_dir / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return (run_dir / "best.keras").is_file() and (state["wait"] >= config.patience
                                                   or state["epoch"] >= config.epochs)


def open_records(records_dir, run_dir: Path, config: TrainConfig, expected_params: dict | None):
    """Before any training: `run_dir` writable, the records' manifest and files, and the model
    they feed (one clear error for each misfit)."""
    from tscnn_tf import data, records
    manifest = data.load_manifest(records_dir)
    records.verify(records_dir, manifest, TrainingError)  # every listed sample, before a write
    check_writable_dir(run_dir)
    check_records(manifest, expected_params)
    files = data.record_files(records_dir)
    return manifest, files, plan_model(config, manifest, f"the records in {records_dir}")


def train_final(records_dir, run_dir, config: TrainConfig, experiment: dict | None = None,
                overwrite: bool = False, stale_after: float = claims.STALE_AFTER_S) -> Path | None:
    """The deployable model: trained on every subject, stopped early on held-out subjects.

    There is no test subject, so this model has no honest score of its own; the LOSO results
    are the estimate of how it generalises. Returns its path (run_dir/best.keras), or None while
    another live process trains it.
    """
    run_dir = Path(run_dir)
    manifest, files, plan = open_records(records_dir, run_dir, config, None)
    claim = claims.try_claim(claims.beside(run_dir), stale_after)
    if claim is None:
        log.info("the final model is being trained by %s",
                 claims.describe(claims.read_claim(claims.beside(run_dir))))
        return None
    with claim:
        record = claim_run_dir(run_dir, run_identity(manifest, config), experiment, overwrite,
                               FINAL_FILES)
        owner = Ownership("the final model", run_dir, record["fingerprint"], claim)
        if not fit_finished(run_dir, config):
            log.info("training the final model in %s", run_dir)
            subjects = sorted({e["subject"] for e in manifest["samples"]})
            # Same rule as a fold with one more training subject; "final" seeds the choice.
            val = validation_subjects(subjects, config.val_fraction, config.seed, "final")
            fit = [s for s in subjects if s not in val]
            write_json_atomic(run_dir / "split.json", {
                "test": [], "validation": val, "train": fit,
                "warnings": fold_class_warnings(manifest, fit, None)})
            fit_model(run_dir, files, manifest, fit, val, config, plan, owner)
        owner.check()  # a model lost to another process is not handed on to the export
    return run_dir / "best.keras"


def not_probabilities(rows: list[dict], class_names: list[str]) -> str | None:
    """A warning when the model's outputs in `rows` (the p_<class> columns) are not
    probabilities: negative, above 1, or not summing to 1 (a builder without a softmax)."""
    scores = np.array([[float(r[f"p_{c}"]) for c in class_names] for r in rows])
    if not scores.size:
        return None
    sums = scores.sum(axis=1)
    if scores.min() >= -1e-6 and scores.max() <= 1 + 1e-6 and np.all(np.abs(sums - 1) <= 1e-3):
        return None
    return (f"the model's outputs are not probabilities (from {scores.min():.3g} to "
            f"{scores.max():.3g}, summing to {sums.min():.3g}..{sums.max():.3g} per sample): its "
            "last layer has no softmax, so the p_<class> columns of predictions.csv are scores "
            "and the loss was computed on them as if they were probabilities; end the builder "
            "with keras.layers.Softmax() (docs/models.md)")


def write_predictions(path: Path, rows: list[dict]) -> None:
    with atomic_write(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_predictions(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: (int(v) if k in ("label", "pred") else v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def aggregate(workdir: Path, class_names: list[str], model: dict | None = None) -> dict:
    """Pool whatever fold predictions exist into results.json and predictions.csv; `model`
    ({name, settings, fold_by}) is recorded with them."""
    from tscnn_tf.metrics import evaluate
    from tscnn_tf.plots import confusion_matrix_image, write_png
    rows, per_fold = [], {}
    run = json.loads((workdir / RUN_FILE).read_text()) if (workdir / RUN_FILE).is_file() else {}
    folds = finished_folds(workdir, run.get("fingerprint"))
    if foreign := sorted({p.parent.name for p in workdir.glob("folds/*/predictions.csv")}
                         - set(folds)):
        log.warning("%d fold(s) hold predictions of another run and are left out of the "
                    "results: %s", len(foreign), ", ".join(foreign))
    for name in folds:
        fold_rows = [{k: v for k, v in row.items() if k != "fingerprint"}
                     for row in read_predictions(workdir / "folds" / name / "predictions.csv")]
        rows += fold_rows
        state_path = workdir / "folds" / name / "state.json"
        per_fold[fold_rows[0]["fold"]] = {
            "num_samples": len(fold_rows),
            "accuracy": float(np.mean([r["label"] == r["pred"] for r in fold_rows])),
            "threads": json.loads(state_path.read_text()).get("threads")
            if state_path.is_file() else None}
    if not rows:
        raise TrainingError(f"no finished fold in {workdir}")
    results = evaluate([r["label"] for r in rows], [r["pred"] for r in rows], class_names)
    results["per_fold"] = per_fold
    results["threads"] = sorted({t for v in per_fold.values() for t in v["threads"] or []})
    if model is not None:
        results["model"] = model
    results["fingerprint"], results["config"] = run.get("fingerprint"), run
    results["warnings"] = [w for name in folds for w in json.loads(
        (workdir / "folds" / name / "split.json").read_text()).get("warnings", [])]
    if (warning := not_probabilities(rows, class_names)) is not None:
        log.warning(warning)
        results["warnings"].append(warning)
    write_predictions(workdir / "predictions.csv", rows)
    write_json_atomic(workdir / "results.json", results)
    title = (f"LOSO, {len(per_fold)} folds: accuracy {100 * results['accuracy']:.1f}%, "
             f"UF1 {results['uf1']:.3f}")
    write_png(workdir / "confusion_matrix.png",
              confusion_matrix_image(results["confusion_matrix"], class_names, title))
    log_confusion(workdir / "logs", results["confusion_matrix"], class_names, title,
                  len(per_fold))
    return results


def current_results(workdir: Path, fingerprint_: str) -> dict | None:
    """results.json when it pools exactly the finished folds of this run, else None."""
    try:
        results = json.loads((workdir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    finished = set(finished_folds(workdir, fingerprint_))
    if results.get("fingerprint") == fingerprint_ and set(results.get("per_fold", {})) == finished:
        return results
    return None


def check_records(manifest: dict, expected_params: dict | None) -> None:
    if expected_params is not None and manifest["params"] != expected_params:
        raise TrainingError(f"records made with {manifest['params']}, not {expected_params}; "
                            "re-extract with --overwrite or use another --workdir")
    labels = sorted({e["label_name"] for e in manifest["samples"]})
    if len(labels) < 2:
        raise TrainingError(f"the records hold one class only ({labels}): a classifier needs at "
                            "least two, and any score would be meaningless. Check --classes and "
                            "the labels of the annotation sheet.")
    if len({e["subject"] for e in manifest["samples"]}) < 3:
        raise TrainingError("leave-one-subject-out with a subject-held-out validation split needs "
                            "at least 3 subjects; this database has "
                            f"{len({e['subject'] for e in manifest['samples']})}")


RUN_FILE = "config.json"  # the identity of the run that owns a folder
LOSO_FILES = ("folds", "results.json", "predictions.csv", "confusion_matrix.png", "logs", "final")
FINAL_FILES = ("split.json", "state.json", "last.keras", "best.keras", "logs")


def run_identity(manifest: dict, config: TrainConfig) -> dict:
    """What a trained model and its scores depend on: the records (database, classes, feature
    parameters, content of the data) and the training config (with a user builder's code:
    `models.code_fingerprint`)."""
    from tscnn_tf import models
    train = config.identity()
    if (code := models.code_fingerprint(models.get(config.model))) is not None:
        train["model_code"] = code
    return as_json({"records": {"db": manifest["db"], "class_names": manifest["class_names"],
                                "params": manifest["params"],
                                "data_fingerprint": manifest.get("data_fingerprint")},
                    "train": train})


def claim_run_dir(run_dir: Path, identity: dict, experiment: dict | None, overwrite: bool,
                  owned: tuple[str, ...]) -> dict:
    """Make `run_dir` belong to one identity before anything is resumed or aggregated there.

    State of another identity (or of none: an older version) is refused with the fields that
    differ, or, with `overwrite`, removed (only the files a run writes, listed in `owned`).
    Returns the record written to `run_dir/config.json`.
    """
    record = {"fingerprint": fingerprint(identity), "identity": identity,
              "experiment": experiment}
    path = run_dir / RUN_FILE
    old = json.loads(path.read_text()) if path.is_file() else None
    stale = (old is not None and old.get("fingerprint") != record["fingerprint"]) or (
        old is None and any((run_dir / name).exists() for name in owned))
    if stale and not overwrite:
        what = ("other settings or data: " + "; ".join(differences(old.get("identity", {}),
                                                                   identity)[:8])
                if old is not None else "unknown settings (no config.json)")
        raise TrainingError(f"{run_dir} holds a run made with {what}. Use another --workdir, or "
                            "--overwrite to replace that run.")
    if stale:
        log.warning("--overwrite: removing the run of other settings in %s", run_dir)
        for name in owned:
            remove(run_dir / name)
    write_json_atomic(path, record)
    return record


def fold_fingerprints(fold_dir: Path) -> set[str]:
    """The run fingerprints a fold's files record (split.json, state.json, predictions.csv);
    none in a fold written before they were recorded."""
    found = set()
    for name in ("split.json", "state.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.add(json.loads((fold_dir / name).read_text()).get("fingerprint"))
    with contextlib.suppress(OSError, StopIteration, csv.Error):
        with open(fold_dir / "predictions.csv", newline="") as f:
            found.add(next(csv.DictReader(f)).get("fingerprint"))
    return found - {None, ""}


def foreign_fingerprints(fold_dir: Path, fingerprint_: str | None) -> set[str]:
    """The fingerprints of other runs in a fold's files (none when `fingerprint_` is None)."""
    return set() if fingerprint_ is None else fold_fingerprints(fold_dir) - {fingerprint_}


def fold_finished(fold_dir: Path, fingerprint_: str | None = None) -> bool:
    """Whether the fold has its predictions, all of the run `fingerprint_` (when given): a fold
    holding another run's files is unfinished, to be retrained."""
    return (fold_dir / "predictions.csv").is_file() and not foreign_fingerprints(fold_dir,
                                                                                 fingerprint_)


def finished_folds(workdir: Path, fingerprint_: str | None) -> list[str]:
    """The names of the finished folds of the run `fingerprint_` in `workdir`, sorted."""
    return sorted(p.parent.name for p in workdir.glob("folds/*/predictions.csv")
                  if fold_finished(p.parent, fingerprint_))


def train_loso(records_dir, workdir, config: TrainConfig, folds: list[str] | None = None,
               expected_params: dict | None = None, experiment: dict | None = None,
               overwrite: bool = False, stale_after: float = claims.STALE_AFTER_S) -> dict:
    """Run (or resume) the LOSO folds and aggregate all finished folds into results.

    `workdir` belongs to one run identity (records + training config, `run_identity`): folds and
    results of another are never resumed or aggregated (`claim_run_dir`). `experiment` (the
    whole config) is recorded beside the results.

    Several processes may share `workdir`: each fold is trained by the process that claims it; a
    fold held by a live process is left to it (one of a dead process is taken over). Returns the
    results once every selected fold has finished (aggregated once, by whichever process finishes
    last), else {"pending": {fold: holder}, "fingerprint": ...}.
    """
    workdir = Path(workdir)
    manifest, files, plan = open_records(records_dir, workdir, config, expected_params)
    groups = fold_groups(manifest, config.fold_by)
    names = list(groups)
    selected = names if not folds else [s for s in names if s in folds or
                                        str(names.index(s)) in folds]
    if folds and not selected:  # refused before the workdir is made this run's
        raise TrainingError(f"--folds {list(folds)} names no {config.fold_by} of {names}")
    with claims.exclusive(workdir / "config.claim", f"the run record of {workdir}"):
        record = claim_run_dir(workdir, run_identity(manifest, config), experiment, overwrite,
                               LOSO_FILES)
    run_fp, retrained = record["fingerprint"], []
    trained, done = True, set()
    while trained:  # again after a fold: a process gone meanwhile leaves its fold claimable
        trained, pending = False, {}
        for k, subject in enumerate(selected):
            fold_dir = workdir / "folds" / subject
            if subject in done:
                continue
            if fold_finished(fold_dir, run_fp):
                log.info("fold %s already finished", subject)
                done.add(subject)
                continue
            claim = claims.try_claim(claims.beside(fold_dir), stale_after)
            if claim is None:
                pending[subject] = claims.describe(claims.read_claim(claims.beside(fold_dir)))
                log.info("fold %s is being trained by %s", subject, pending[subject])
                continue
            with claim:
                if fold_finished(fold_dir, run_fp):  # finished by another just before the claim
                    done.add(subject)
                    continue
                if foreign := foreign_fingerprints(fold_dir, run_fp):
                    log.warning("fold %s holds files of another run (%s), not of run %s: "
                                "retraining it", subject, ", ".join(sorted(foreign)), run_fp)
                    Ownership(f"fold {subject}", workdir, run_fp, claim).check()
                    remove(fold_dir)
                    retrained.append(subject)
                log.info("fold %d/%d: test %s %s", k + 1, len(selected), config.fold_by, subject)
                train_fold(fold_dir, files, manifest, subject, config, plan, groups[subject],
                           claim=claim, fingerprint=run_fp)
                trained = True
                done.add(subject)
    if retrained:
        log.warning("%d fold(s) held files of another run and were retrained: %s",
                    len(retrained), ", ".join(retrained))
    pending = {s: h for s, h in pending.items() if not fold_finished(workdir / "folds" / s, run_fp)}
    if pending:
        return {"pending": pending, "fingerprint": run_fp}
    with claims.exclusive(workdir / "results.claim", f"the LOSO results of {workdir}"):
        Ownership("the LOSO results", workdir, run_fp).check()
        results = current_results(workdir, run_fp)
        if results is None:
            log.info("aggregating %d fold(s) into %s",
                     len(finished_folds(workdir, run_fp)), workdir / "results.json")
            results = aggregate(workdir, manifest["class_names"], model_record(config, plan))
    return results


def model_record(config: TrainConfig, plan: ModelPlan) -> dict:
    """The model of a run as results.json records it (a user builder with its `code`)."""
    from tscnn_tf import models
    code = models.code_fingerprint(plan.entry)
    return as_json({"name": config.model, "settings": plan.settings, "fields": plan.fields,
                    "fold_by": config.fold_by, **({"code": code} if code else {})})


def format_pending(pending: dict) -> str:
    """What a process prints when other processes still hold folds of its run."""
    held = ", ".join(f"{fold} ({holder})" for fold, holder in sorted(pending.items()))
    return (f"{len(pending)} fold(s) still in training by other processes: {held}; the last "
            "to finish aggregates (or run the same command again afterwards)")


def format_results(results: dict, label: str) -> str:
    """One row in the form of the paper's Tables 7-9."""
    return (f"{label:<12} LOSO  accuracy {100 * results['accuracy']:6.2f}%  F1 {results['f1_macro']:.4f}"
            f"  UF1 {results['uf1']:.4f}  UAR {results['uar']:.4f}  ({results['num_samples']} samples)")
