"""The GPU check (`python -m tscnn_tf.bench --device_check`), ready to run on a machine with a
GPU, in under 8 minutes on one data-centre GPU; `--quick` is its tiny form (the tests', CPU).

It reports, side by side in one run:
- the device: TensorFlow's GPUs, their names, compute capability and memory;
- samples/s of every registry model in training, in float32 and in mixed precision
  (`mixed_float16`), and the parity between the two on the same weights (max |Δp| of the
  probabilities on the same inputs, and the share of equal argmax);
- the wall time of a full LOSO on a paper-sized database (CASME II's shape: 26 subjects, 5
  classes, 247 samples) of random record-shaped samples written as records: the speed of the
  training path, not a score;
- N fold workers (processes, as several `python -m tscnn_tf.train` on one workdir, which split
  the folds by their claims) sharing the GPU on one workdir, against one worker.

A part that would start past `budget_s` is skipped and says so, so the check ends in time.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

# CASME II's five classes as the paper uses them (Table 2's protocol): 247 samples, 26 subjects.
CASME2_CLASSES = {"happiness": 32, "surprise": 25, "disgust": 64, "repression": 27, "others": 99}
CASME2_SUBJECTS = 26
FULL = {"subjects": CASME2_SUBJECTS, "classes": CASME2_CLASSES, "variant": "full",
        "loso_epochs": 2, "loso_folds": None, "batch": 32, "model_steps": 32, "model_epochs": 3,
        "workers": 3, "worker_folds": 6, "worker_epochs": 2, "augment": True, "budget_s": 420}
# The tests' form: tiny models, 3 subjects, one LOSO fold, 2 workers on 2 folds.
QUICK = {"subjects": 3, "classes": {"a": 2, "b": 1}, "variant": "tiny",
         "loso_epochs": 1, "loso_folds": 1, "batch": 4, "model_steps": 2, "model_epochs": 1,
         "workers": 2, "worker_folds": 2, "worker_epochs": 1, "augment": False,
         "budget_s": 600}


def device() -> dict:
    """TensorFlow's view of the GPUs (and nvidia-smi's, where it is installed)."""
    import tensorflow as tf
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append({"name": gpu.name, "device_name": details.get("device_name"),
                     "compute_capability": details.get("compute_capability")})
    smi = None
    if shutil.which("nvidia-smi"):
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=20).stdout.strip().splitlines()
        except (OSError, subprocess.SubprocessError):
            smi = None
    return {"gpus": gpus, "nvidia_smi": smi, "built_with_cuda": tf.test.is_built_with_cuda(),
            "tensorflow": tf.__version__, "on": "gpu" if gpus else "cpu"}


def allow_memory_growth() -> None:
    """Each process takes GPU memory as it needs it, so fold workers can share one GPU."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # for the spawned workers
    import tensorflow as tf
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the environment variable did it
            pass


def random_inputs(fields: dict, count: int, seed: int = 0) -> dict:
    """{field: (count, *shape) float32 in [0, 1)} for record fields {field: shape}."""
    rng = np.random.default_rng(seed)
    return {name: rng.random((count, *shape), np.float32) for name, shape in fields.items()}


def model_inputs(model) -> dict:
    """{input name: shape of one sample} of a built model."""
    return {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}


def samples_per_s(model, loss, inputs: dict, labels: np.ndarray, batch: int, epochs: int
                  ) -> float:
    """Training samples/s: the median epoch time after the first (which traces; with one
    epoch, as in the quick form, the figure includes the tracing)."""
    import keras
    import tensorflow as tf
    from tscnn_tf import loso
    from tscnn_tf.optimizer import make_optimizer
    model.compile(make_optimizer(loso.TrainConfig()), loss=loss)
    ds = tf.data.Dataset.from_tensor_slices((inputs, labels)).batch(batch).cache()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)
    model.fit(ds, epochs=epochs, verbose=0, shuffle=False, callbacks=[Timer()])
    return len(labels) / statistics.median(times[1:] or times)


def bench_model(name: str, sizes: dict, classes: int = 5) -> dict:
    """One registry model: training samples/s in float32 and mixed_float16, and the parity of
    their probabilities on the same weights and inputs. A batch that does not fit the device's
    memory is halved (the batch used is reported)."""
    import keras
    import tensorflow as tf
    from tscnn_tf import models
    entry = models.get(name)
    out = {"batch": sizes["batch"]}
    batch = sizes["batch"]
    try:
        keras.mixed_precision.set_global_policy("float32")
        reference = entry.make(classes, variant=sizes["variant"])
        fields = model_inputs(reference)
        count = batch * sizes["model_steps"]
        inputs = random_inputs(fields, count)
        labels = np.random.default_rng(1).integers(0, classes, count)
        probe = {k: v[:batch] for k, v in inputs.items()}
        weights = reference.get_weights()
        p32 = np.asarray(reference.predict(probe, verbose=0), np.float64)
        keras.mixed_precision.set_global_policy("mixed_float16")
        mixed = entry.make(classes, variant=sizes["variant"])
        mixed.set_weights(weights)
        p16 = np.asarray(mixed.predict(probe, verbose=0), np.float64)
        out.update({"parameters": int(reference.count_params()),
                    "parity": {"max_abs_diff": float(np.max(np.abs(p32 - p16))),
                               "top1_agreement": float(np.mean(p32.argmax(-1) == p16.argmax(-1))),
                               "samples": len(p32)}})
        while True:
            try:
                for policy, model in (("float32", reference), ("mixed_float16", mixed)):
                    keras.mixed_precision.set_global_policy(policy)
                    out[f"samples_per_s_{policy}"] = samples_per_s(
                        model, entry.loss, inputs, labels, batch, sizes["model_epochs"])
                break
            except tf.errors.ResourceExhaustedError:
                if batch == 1:
                    raise
                batch //= 2
                out["batch"] = batch
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out["mixed_speedup"] = out["samples_per_s_mixed_float16"] / out["samples_per_s_float32"]
    return out


def write_records(folder: Path, subjects: int, classes: dict, seed: int = 0) -> Path:
    """Records of random record-shaped samples (every field, `lbptop` included) with a manifest:
    `classes` {name: count} spread over `subjects` subjects (every subject is given samples in
    turn, so each has some). For measuring speed: the inputs carry no expression."""
    from tscnn_tf import records
    from tscnn_tf.config import FeatureConfig
    from tscnn_tf.models import record_fields
    folder.mkdir(parents=True, exist_ok=True)
    config = FeatureConfig()
    shapes = record_fields(config.blocks)
    names = list(classes)
    labels = [k for k, name in enumerate(names) for _ in range(classes[name])]
    rng = np.random.default_rng(seed)
    rng.shuffle(labels)
    examples, entries = [], []
    for i, label in enumerate(labels):
        subject = f"sub{i % subjects + 1:02d}"
        sample_id = f"device_check/{subject}/clip{i:03d}"
        values = random_inputs(shapes, 1, seed + i)
        examples.append(records.to_example({
            **{k: v[0] for k, v in values.items()}, "label": label, "label_name": names[label],
            "subject": subject, "sample_id": sample_id, "db": "device_check", "onset": 0,
            "apex_given": -1, "apex_spotted": 5, "apex_used": 5, "offset": 10,
            "params": config.fingerprint()}))
        entries.append({"sample_id": sample_id, "subject": subject, "label": label,
                        "label_name": names[label], "shard": "device_check-00000.tfrecord",
                        "lbptop": True})
    records.write_shard(str(folder / "device_check-00000.tfrecord"), examples)
    manifest = {"db": "device_check", "class_names": names, "params": config.to_dict(),
                "params_fingerprint": config.fingerprint(), "fields": records.record_fields(entries),
                "samples": entries, "skipped": [], "data_fingerprint": f"random-{seed}"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def train_config(sizes: dict, epochs: int):
    from tscnn_tf.config import TrainConfig
    return TrainConfig(variant=sizes["variant"], epochs=epochs, patience=epochs,
                       batch_size=sizes["batch"], augment=sizes["augment"])


def fold_worker(records: str, workdir: str, config: dict, folds: list[str]) -> None:
    """One fold worker (a spawned process): the LOSO of `train` on a shared workdir."""
    import logging
    logging.getLogger("tscnn_tf").setLevel(logging.WARNING)
    from tscnn_tf import loso
    from tscnn_tf.config import TrainConfig
    allow_memory_growth()
    loso.train_loso(records, workdir, TrainConfig(**config), folds=folds)


def workers_wall_s(records: Path, workdir: Path, config, folds: list[str], count: int) -> float:
    """Wall time of `count` fold workers started together on one workdir, until all end."""
    import dataclasses
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    processes = [context.Process(target=fold_worker, args=(str(records), str(workdir),
                                                           dataclasses.asdict(config), folds))
                 for _ in range(count)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    wall = time.perf_counter() - start
    if failed := [p.exitcode for p in processes if p.exitcode]:
        raise RuntimeError(f"fold workers failed with exit codes {failed}")
    return wall


def subjects_of(records: Path) -> list[str]:
    return sorted({e["subject"] for e in json.loads((records / "manifest.json").read_text())[
        "samples"]})


def loso_part(root: Path, sizes: dict, until) -> dict:
    """The LOSO (every subject a fold, `sizes["loso_folds"]` at most) on the paper-sized
    records in one process, fold after fold on one workdir; a fold that would start past
    `until(seconds per fold so far)` (perf_counter seconds) is not started, and the full
    LOSO's wall time is then extrapolated from the folds done (`extrapolated`)."""
    from tscnn_tf import loso
    records = write_records(root / "records", sizes["subjects"], sizes["classes"])
    config = train_config(sizes, sizes["loso_epochs"])
    subjects = subjects_of(records)
    start, done = time.perf_counter(), 0
    for subject in subjects[:sizes["loso_folds"] or len(subjects)]:
        if done and time.perf_counter() > until((time.perf_counter() - start) / done):
            break
        loso.train_loso(records, root / "loso", config, folds=[subject])
        done += 1
    wall = time.perf_counter() - start
    return {"subjects": len(subjects), "classes": list(sizes["classes"]),
            "samples": sum(sizes["classes"].values()), "folds_done": done,
            "model": f"tscnn {sizes['variant']}", "epochs": config.epochs,
            "augment_x10": config.augment, "batch": config.batch_size, "wall_s": wall,
            "s_per_fold": wall / done, "full_loso_wall_s": wall / done * len(subjects),
            "extrapolated": done < len(subjects),
            "note": "random record-shaped inputs: a speed figure, the accuracy means nothing"}


def workers_part(root: Path, sizes: dict) -> dict:
    """The same folds by one worker and by N workers on one workdir, each from a fresh one."""
    records = root / "records"
    if not (records / "manifest.json").is_file():
        write_records(records, sizes["subjects"], sizes["classes"])
    folds = subjects_of(records)[:sizes["worker_folds"]]
    config = train_config(sizes, sizes["worker_epochs"])
    one = workers_wall_s(records, root / "one_worker", config, folds, 1)
    many = workers_wall_s(records, root / "workers", config, folds, sizes["workers"])
    finished = len(list((root / "workers" / "folds").glob("*/predictions.csv")))
    return {"folds": len(folds), "epochs": config.epochs, "workers": sizes["workers"],
            "one_worker_wall_s": one, "workers_wall_s": many, "speedup": one / many,
            "folds_finished_by_workers": finished,
            "note": "wall times include each process's start-up (TensorFlow import, GPU init)"}


def run(quick: bool = False, budget_s: float | None = None, model_names=None) -> dict:
    """The device check; `quick`: tiny sizes for CPU and the tests; `model_names`: the
    registry's models measured (all by default)."""
    sizes = dict(QUICK if quick else FULL)
    budget = sizes["budget_s"] if budget_s is None else budget_s
    start = time.perf_counter()
    allow_memory_growth()
    from tscnn_tf import models
    report = {"quick": quick, "sizes": sizes, "budget_s": budget, "device": device(),
              "models": {}, "skipped": [], "part_s": {}}

    def time_left(part: str, estimate_s: float = 0.0) -> bool:
        if time.perf_counter() - start + estimate_s < budget:
            return True
        report["skipped"].append(f"{part}: it would end past the budget of {budget:.0f} s"
                                 + (f" (estimated {estimate_s:.0f} s)" if estimate_s else ""))
        return False
    began = time.perf_counter()
    for name in model_names or models.names():
        if time_left(f"model {name}"):
            try:
                report["models"][name] = bench_model(name, sizes)
            except Exception as e:  # noqa: BLE001 - one model's failure is reported, not fatal
                report["models"][name] = {"error": f"{type(e).__name__}: {e}"[:500]}
    report["part_s"]["models"] = time.perf_counter() - began

    def workers_estimate(per_fold: float) -> float:  # one worker does all, N share them
        return 30 + per_fold * sizes["worker_folds"] * (1 + 1.5 / sizes["workers"])
    with tempfile.TemporaryDirectory() as tmp:
        if time_left("loso"):
            began = time.perf_counter()
            report["loso"] = loso_part(Path(tmp), sizes, lambda per_fold: start + budget
                                       - per_fold - workers_estimate(per_fold))
            report["part_s"]["loso"] = time.perf_counter() - began
        if time_left("workers", workers_estimate(report.get("loso", {}).get("s_per_fold", 0))):
            began = time.perf_counter()
            report["workers"] = workers_part(Path(tmp), sizes)
            report["part_s"]["workers"] = time.perf_counter() - began
    report["wall_s"] = time.perf_counter() - start
    return report


def format_report(report: dict) -> str:
    """The device check as a table."""
    d = report["device"]
    gpus = ", ".join(g["device_name"] or g["name"] for g in d["gpus"]) or "no GPU (CPU)"
    lines = [f"device: {gpus}; TensorFlow {d['tensorflow']}"
             + (f"; nvidia-smi: {'; '.join(d['nvidia_smi'])}" if d["nvidia_smi"] else ""),
             "", f"training samples/s ({report['sizes']['variant']} models)",
             f"  {'model':<12}{'params':>12}{'batch':>6}{'float32':>10}{'mixed16':>10}"
             f"{'speedup':>9}{'max|Δp|':>9}{'top-1 =':>9}"]
    for name, m in report["models"].items():
        if "error" in m:
            lines.append(f"  {name:<12}failed: {m['error']}")
            continue
        lines.append(f"  {name:<12}{m['parameters']:>12,}{m['batch']:>6}"
                     f"{m['samples_per_s_float32']:10.0f}{m['samples_per_s_mixed_float16']:10.0f}"
                     f"{m['mixed_speedup']:9.2f}{m['parity']['max_abs_diff']:9.4f}"
                     f"{m['parity']['top1_agreement']:9.2f}")
    if "loso" in report:
        r = report["loso"]
        lines += ["", f"LOSO: {r['subjects']} subjects, {r['samples']} samples, "
                      f"{len(r['classes'])} classes, {r['model']}, {r['epochs']} epochs"
                      f"{', x10 augmentation' if r['augment_x10'] else ''}: {r['folds_done']} "
                      f"folds in {r['wall_s']:.0f} s ({r['s_per_fold']:.1f} s a fold); full LOSO "
                      f"{r['full_loso_wall_s']:.0f} s"
                      + (" (extrapolated)" if r["extrapolated"] else "")]
    if "workers" in report:
        w = report["workers"]
        lines += [f"fold workers on one workdir ({w['folds']} folds, {w['epochs']} epochs): "
                  f"1 worker {w['one_worker_wall_s']:.0f} s, {w['workers']} workers "
                  f"{w['workers_wall_s']:.0f} s ({w['speedup']:.2f}x)"]
    lines += [f"skipped: {s}" for s in report["skipped"]]
    lines.append(f"check wall time {report['wall_s']:.0f} s")
    return "\n".join(lines)
