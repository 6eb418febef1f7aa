"""Measured speed of every stage, side by side in one run, on synthetic data.

    python -m tscnn_tf.bench                  # prints a table, writes ./bench.json
    python -m tscnn_tf.bench --output=b.json --quick
    python -m tscnn_tf.bench --sections=edge,spotting
    python -m tscnn_tf.bench --device_check   # on a GPU machine: writes ./device_check.json

Feature stage: ms per frame for decoding, alignment and the 36 block LBP histograms per
implementation; ms per flow pair and endpoint error against a known displacement per flow
backend; the flow table (every flow setting: ms per pair on one thread and on every core, and
its agreement with the paper's TV-L1 on the model's 48-px grid at the real motion amplitude)
and, in the full mode, the main command's synthetic LOSO with TV-L1 and the three closest
fast settings; whole clips per second, in one process and on every core. Training: samples per
second of the full model, its FLOPs per sample from the layer shapes, and the share of the
machine's measured matrix-multiply rate it reaches. Inference: latency at batch 1 on one
thread for Keras, the SavedModel, TFLite float32 and int8 (the two TFLite files timed in
turns), and which of their ops run outside LiteRT's XNNPACK delegate. Edge: clip -> label
on one thread for a 30-frame 640 x 480 clip, stage by stage, with the default settings and the
edge ones (the edge flow, the face detector at 320 px wide), and the landmarks stage at other
detection widths (`bench_edge`). Spotting: frames per second and recognition per interval
(`bench_spotting`).
`--device_check` runs tscnn_tf/device_check.py instead.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def seconds(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of one call of `fn`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict:
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}


def source_commit() -> dict | None:
    """The git commit of the toolkit's source tree (and whether files differ from it) when run
    from a checkout; None for an installed package, whose version `packages` gives."""
    folder = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--show-toplevel",
                                 "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = commit.stdout.split()
    if commit.returncode or status.returncode or len(lines) != 2 or Path(lines[0]) != folder:
        return None  # not a checkout of the toolkit (a package inside some other repository)
    return {"commit": lines[1], "modified": bool(status.stdout.strip())}


def synthetic_clips(root: Path, subjects: int = 4):
    from tscnn_tf.databases import read_synthetic
    return read_synthetic(root, seed=7, num_subjects=subjects, clips_per_class=1).samples


def known_displacement(face: np.ndarray, amplitude: float = 2.0):
    """(next frame, true flow): `face` moved by a smooth field of up to `amplitude` px."""
    import cv2
    h, w = face.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = amplitude * np.sin(2 * np.pi * ys / h) * np.exp(-((xs - w / 2) / (w / 3)) ** 2)
    v = amplitude * np.cos(2 * np.pi * xs / w) * np.exp(-((ys - h / 2) / (h / 3)) ** 2)
    # next(p + d(p)) = prev(p); for a smooth small field next(q) ≈ prev(q - d(q)).
    moved = cv2.remap(face, xs - u, ys - v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return moved, np.dstack([u, v]).astype(np.float32)


# The real onset->apex motion at the 144-px crop (issue 19, six CASME II clips): mean
# 0.05-1.2 px, 99th percentile 0.17-2.2 px. The known-field pairs span that range.
REAL_P99_PX = (0.17, 0.6, 1.2, 2.2)
NOISE_GREY = 1.0          # sensor noise (grey levels) added afresh to each moved frame
GRID = 48                 # the model's flow grid
LEGACY_FLOWS = ("tvl1", "tvl1_skimage", "dis", "farneback")  # the `flow` section's methods


def real_amplitude_pairs(faces, p99s=REAL_P99_PX, seed: int = 0) -> list[dict]:
    """Flow pairs at the real amplitude: each face moved by the smooth `known_displacement`
    field scaled so that the 99th percentile of its vector length is each of `p99s` px, with
    fresh sensor noise on the moved frame. Each: {prev, next, truth, mean_px, p99_px}."""
    rng = np.random.default_rng(seed)
    pairs = []
    for face in faces:
        _, unit = known_displacement(face, 1.0)
        unit_p99 = float(np.percentile(np.linalg.norm(unit, axis=-1), 99))
        for p99 in p99s:
            moved, truth = known_displacement(face, p99 / unit_p99)
            noisy = moved.astype(np.float32) + rng.normal(0, NOISE_GREY, moved.shape)
            length = np.linalg.norm(truth, axis=-1)
            pairs.append({"prev": face, "next": np.clip(noisy, 0, 255).astype(np.uint8),
                          "truth": truth, "mean_px": float(length.mean()),
                          "p99_px": float(np.percentile(length, 99))})
    return pairs


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """How alike two flow fields are: the cosine of the two fields as vectors, and the mean
    length of their difference (px of the fields' grid)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dot = float(np.sum(a * b))
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(np.clip(dot / norms, -1, 1)) if norms > 0 else float(np.array_equal(a, b))
    return {"cosine": cosine,
            "mean_abs_px": float(np.linalg.norm(a - b, axis=-1).mean())}


def mean_agreement(pairs_of_fields) -> dict:
    """`agreement` averaged over (a, b) pairs, with the worst cosine."""
    each = [agreement(a, b) for a, b in pairs_of_fields]
    return {"cosine": float(np.mean([e["cosine"] for e in each])),
            "cosine_min": float(min(e["cosine"] for e in each)),
            "mean_abs_px": float(np.mean([e["mean_abs_px"] for e in each])), "pairs": len(each)}


def ms_per_pair(prev, nxt, method: str, repeat: int, warmup: int = 1) -> dict:
    """Median ms of one `compute_flow` call on one OpenCV thread and on every core."""
    import cv2
    from tscnn_tf import flow as flow_lib
    before, cores = cv2.getNumThreads(), os.cpu_count() or 1
    out = {}
    try:
        for key, threads in (("one_thread", 1), ("all_cores", cores)):
            cv2.setNumThreads(threads)
            out[key] = 1e3 * seconds(lambda: flow_lib.compute_flow(prev, nxt, method), repeat,
                                     warmup)
    finally:
        cv2.setNumThreads(before)
    out["cores"] = cores
    return out


def bench_flow_quality(faces, clip_pairs=(), quick: bool = False, methods=None) -> dict:
    """The flow table: per flow setting, ms per pair (one thread, all cores) and its agreement
    with the paper's TV-L1 (`tvl1`) on the 48-px grid the model sees, on the real-amplitude
    known-field pairs of `faces` (`agreement_48`) and on the synthetic clips' own onset->apex
    pairs (`agreement_48_clip_pairs`, [(onset, apex)] face crops), and against the known truth
    (`truth_48`, and `endpoint_error_px` at the crop's size, 12 px from the border)."""
    from tscnn_tf import flow as flow_lib
    methods = [m for m in (methods or flow_lib.FLOW_METHODS)
               if not (quick and m == "tvl1_skimage")]
    pairs = real_amplitude_pairs(faces, REAL_P99_PX[::3] if quick else REAL_P99_PX)
    clip_pairs = list(clip_pairs)

    def grid(prev, nxt, method):
        return flow_lib.resize_flow(flow_lib.compute_flow(prev, nxt, method), GRID)
    reference = [grid(p["prev"], p["next"], "tvl1") for p in pairs]
    reference_clips = [grid(a, b, "tvl1") for a, b in clip_pairs]
    inner = (slice(12, -12), slice(12, -12))
    table = {}
    for method in methods:
        full = [flow_lib.compute_flow(p["prev"], p["next"], method) for p in pairs]
        fields = [flow_lib.resize_flow(f, GRID) for f in full]
        entry = {"ms_per_pair": ms_per_pair(pairs[-1]["prev"], pairs[-1]["next"], method,
                                            *((1, 0) if quick else (5, 1))),
                 "agreement_48": mean_agreement(zip(fields, reference)),
                 "truth_48": mean_agreement(zip(fields, [flow_lib.resize_flow(p["truth"], GRID)
                                                         for p in pairs])),
                 "endpoint_error_px": float(np.mean([
                     np.linalg.norm(f[inner] - p["truth"][inner], axis=-1).mean()
                     for f, p in zip(full, pairs)])),
                 "summary": flow_lib.FLOW_SETTINGS[method].summary}
        if clip_pairs:
            entry["agreement_48_clip_pairs"] = mean_agreement(
                zip([grid(a, b, method) for a, b in clip_pairs], reference_clips))
        table[method] = entry
    lengths = [p["mean_px"] for p in pairs], [p["p99_px"] for p in pairs]
    return {"reference": "tvl1", "grid": GRID, "face_size": int(faces[0].shape[0]),
            "pairs": {"known_field": len(pairs), "clip_onset_apex": len(clip_pairs),
                      "mean_px": [min(lengths[0]), max(lengths[0])],
                      "p99_px": [min(lengths[1]), max(lengths[1])],
                      "noise_grey_levels": NOISE_GREY},
            "methods": table}


def closest_fast_flows(table: dict, count: int = 3, reference: str = "tvl1",
                       share: float = 0.25) -> list[str]:
    """The `count` settings nearest the reference on the grid (highest mean cosine on the
    known-field pairs) among those taking at most `share` of its time on one thread."""
    methods = table["methods"]
    limit = share * methods[reference]["ms_per_pair"]["one_thread"]
    fast = [m for m, e in methods.items()
            if m != reference and e["ms_per_pair"]["one_thread"] <= limit]
    return sorted(fast, key=lambda m: -methods[m]["agreement_48"]["cosine"])[:count]


def flagfile_values(path: Path) -> dict:
    """{name: value} of the `--name=value` lines of a flagfile."""
    return dict(line.strip()[2:].split("=", 1) for line in path.read_text().splitlines()
                if line.strip().startswith("--"))


def main_command_config(flow: str, data_dir: Path, **overrides):
    """The main command's experiment (`python -m tscnn_tf.train --db=synthetic`: the values of
    flags/synthetic.cfg and synthetic.train.cfg over the config's defaults) with this flow and
    no final model; `overrides` are {section: {field: value}} (smaller runs)."""
    import dataclasses
    from tscnn_tf import cli, config as config_lib
    folder = cli.flagfile_dir()
    values = {**flagfile_values(folder / "synthetic.cfg"),
              **flagfile_values(folder / "synthetic.train.cfg")}
    sections = {name: {} for name in config_lib.SECTIONS}
    for key, text in values.items():
        name, cls = next((n, c) for n, c in config_lib.SECTIONS.items()
                         if key in {f.name for f in dataclasses.fields(c)})
        kind = type(getattr(cls(), key))
        sections[name][key] = (text.lower() in ("true", "1")) if kind is bool else kind(text)
    sections["data"].update(db="synthetic", data_dir=str(data_dir))
    sections["features"]["flow"] = flow
    sections["export"]["final_model"] = False
    for name, changes in overrides.items():
        sections[name].update(changes)
    return config_lib.ExperimentConfig(**{name: cls(**sections[name])
                                          for name, cls in config_lib.SECTIONS.items()})


def timed_loso(config, workdir: Path) -> dict:
    """One experiment's LOSO figures and its wall time (records, folds and aggregation)."""
    from tscnn_tf import experiment
    start = time.perf_counter()
    results = experiment.run(config, workdir)["results"]
    return {"accuracy": results["accuracy"], "uf1": results["uf1"], "uar": results["uar"],
            "samples": results["num_samples"], "folds": len(results["per_fold"]),
            "minutes": (time.perf_counter() - start) / 60}


def bench_flow_loso(methods, root: Path, **overrides) -> dict:
    """The main command's synthetic LOSO with each flow setting, side by side in one run (one
    synthetic database, records and folds per setting): accuracy, UF1, UAR and the wall time
    of records plus folds."""
    out = {method: timed_loso(main_command_config(method, root / "synthetic_db", **overrides),
                              root / method) for method in methods}
    first = main_command_config(methods[0], root, **overrides)
    return {"database": {"subjects": first.data.synthetic_subjects,
                         "clips_per_class": first.data.synthetic_clips_per_class},
            "train": {"variant": first.train.variant, "epochs": first.train.epochs,
                      "patience": first.train.patience}, "methods": out}

def bench_features(quick: bool) -> dict:
    """Per-frame stages, flow backends and whole clips (synthetic database, default settings)."""
    import cv2
    from tscnn_tf import apex, face as face_lib, flow as flow_lib
    from tscnn_tf.features import FeatureConfig, aligned_clip, sample_features
    from tscnn_tf.video import read_clip
    config = FeatureConfig()
    with tempfile.TemporaryDirectory() as tmp:
        samples = synthetic_clips(Path(tmp) / "db", 2 if quick else 4)
        landmarker = face_lib.make_landmarker("dlib")
        sample = samples[0]
        paths = list(sample.frames.values())
        _, frames = read_clip(sample)
        geometry = face_lib.face_geometry(landmarker(frames[0]), config.face_size)
        faces = [face_lib.warp_to_face(f, geometry) for f in frames]
        n = len(paths)
        out = {"frames_per_clip": n, "face_size": config.face_size, "flow_default": config.flow,
               "ms_per_frame": {
                   "decode": 1e3 * seconds(lambda: [cv2.imread(p, cv2.IMREAD_GRAYSCALE)
                                                    for p in paths]) / n,
                   "align": 1e3 * seconds(lambda: [face_lib.warp_to_face(f, geometry)
                                                   for f in frames]) / n,
                   **{f"lbp_{impl}": 1e3 * seconds(lambda impl=impl: [
                       apex.block_histograms(f, implementation=impl) for f in faces]) / n
                      for impl in apex.LBP_IMPLEMENTATIONS}},
               "ms_per_clip": {"landmarks": 1e3 * seconds(lambda: landmarker(frames[0]), 3)}}
        moved, truth = known_displacement(faces[0])
        inner = (slice(12, -12), slice(12, -12))
        out["flow"] = {}
        for method in LEGACY_FLOWS:
            if quick and method == "tvl1_skimage":
                continue
            estimate = flow_lib.compute_flow(faces[0], moved, method)
            error = np.linalg.norm(estimate[inner] - truth[inner], axis=-1).mean()
            out["flow"][method] = {
                "ms_per_pair": 1e3 * seconds(lambda m=method: flow_lib.compute_flow(
                    faces[0], moved, m), 3),
                "endpoint_error_px": float(error)}
        crops = [aligned_clip(s, config, landmarker, []) for s in samples]
        clip_pairs = [(f[0], f[i.index(s.apex)]) for (i, f, _), s in zip(crops, samples)
                      if s.apex in i and s.apex != i[0]]
        onsets = [f[0] for _, f, _ in crops]
        out["flow_quality"] = bench_flow_quality(onsets[:2] if quick else onsets,
                                                 clip_pairs[:2] if quick else clip_pairs, quick)
        total_frames = sum(len(s.frames) for s in samples)
        start = time.perf_counter()
        for s in samples:
            sample_features(s, config, landmarker)
        one = time.perf_counter() - start
        out["end_to_end"] = {"clips": len(samples), "frames": total_frames,
                             "one_process": {"clips_per_s": len(samples) / one,
                                             "ms_per_frame": 1e3 * one / total_frames}}
        for method in dict.fromkeys(("dis", flow_lib.EDGE_FLOW)):  # the edge flow end to end
            fast_config = FeatureConfig(flow=method)
            start = time.perf_counter()
            for s in samples:
                sample_features(s, fast_config, landmarker)
            fast = time.perf_counter() - start
            out["end_to_end"][f"one_process_flow_{method}"] = {
                "clips_per_s": len(samples) / fast, "ms_per_frame": 1e3 * fast / total_frames}
        workers = os.cpu_count() or 1
        from pipelines.extraction import run_samples
        start = time.perf_counter()
        list(run_samples(samples, config, workers, progress=False))
        many = time.perf_counter() - start
        out["end_to_end"][f"{workers}_processes"] = {
            "clips_per_s": len(samples) / many, "ms_per_frame": 1e3 * many / total_frames,
            "note": "includes starting the worker processes and loading the landmark model"}
    return out


def training_flops(model) -> float:
    """FLOPs of one training sample: 3x the forward multiply-adds of convolutions and dense
    layers (forward, and the two backward products), 2 FLOPs per multiply-add."""
    import keras
    forward = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            forward += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            forward += layer.input.shape[-1] * layer.units
    return 3 * 2 * float(forward)


def matmul_rate(sizes=(2048, 3072), repeat: int = 8) -> dict:
    """The machine's float32 matrix-multiply rate with every core: the best of `repeat` runs at
    each size (a peak, so the fastest run counts; the median was seen to halve under load)."""
    import tensorflow as tf
    out = {"tf_matmul_gflops": 0.0, "numpy_sgemm_gflops": 0.0}
    for size in sizes:
        a = tf.random.normal((size, size))
        b = tf.random.normal((size, size))
        x, y = np.asarray(a), np.asarray(b)
        flops = 2.0 * size ** 3
        for key, fn in (("tf_matmul_gflops", lambda: tf.linalg.matmul(a, b).numpy()),
                        ("numpy_sgemm_gflops", lambda: x @ y)):
            fn()
            best = min(seconds(fn, 1, warmup=0) for _ in range(repeat))
            out[key] = max(out[key], flops / best / 1e9)
    return out


def bench_training(quick: bool) -> dict:
    import tensorflow as tf
    from tscnn_tf import loso, model as model_lib
    from tscnn_tf.optimizer import make_optimizer
    model = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    model.compile(make_optimizer(loso.TrainConfig()), loss="sparse_categorical_crossentropy")
    batch, steps = 32, 4 if quick else 16
    rng = np.random.default_rng(0)
    x = {"apex_gray": rng.random((batch * steps, 48, 48, 1), np.float32),
         "blocks": rng.random((batch * steps, 48, 48, 9), np.float32),
         "flow": rng.random((batch * steps, 48, 48, 4), np.float32)}
    y = rng.integers(0, 5, batch * steps)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).cache()
    import keras
    epochs = []

    class EpochTimer(keras.callbacks.Callback):  # epoch time without fit()'s own setup
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(time.perf_counter() - self.start)

    before = matmul_rate()
    model.fit(ds, epochs=4, verbose=0, callbacks=[EpochTimer()])
    per_s = batch * steps / statistics.median(epochs[1:])  # the first epoch traces and caches
    flops = training_flops(model)
    after = matmul_rate()
    rate = {k: max(before[k], after[k]) for k in before}  # measured around training, best kept
    peak = max(rate.values())
    return {"samples_per_s": per_s, "flops_per_sample": flops,
            "achieved_gflops": per_s * flops / 1e9, **rate,
            "roofline_ratio": per_s * flops / 1e9 / peak,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def tflite_ops(path) -> dict:
    """Where each op of the TFLite file at `path` runs (one thread, LiteRT's default XNNPACK
    CPU delegate): per op type and first input's dtype ("PRELU int8"), its count and how many
    of them XNNPACK runs, the rest running on TFLite's own kernels; and the XNNPACK
    partitions, between which the interpreter hands over to TFLite's kernels."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # the model's ops, then one DELEGATE per partition
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    partitions = [n for n in nodes if n["op_name"] == "DELEGATE"]
    producer = {t: op for op in ops for t in op["outputs"]}
    delegated = set()
    for part in partitions:  # its ops: those between its outputs and its inputs
        stack, inputs = list(part["outputs"]), set(part["inputs"])
        while stack:
            op = producer.get(tensor := stack.pop())
            if tensor in inputs or op is None or op["index"] in delegated:
                continue
            delegated.add(op["index"])
            stack.extend(i for i in op["inputs"] if i >= 0)
    table = {}
    for op in ops:
        first = next((i for i in op["inputs"] if i >= 0), None)
        dtype = "" if first is None else np.dtype(
            interpreter._get_tensor_details(first, 0)["dtype"]).name
        entry = table.setdefault(f"{op['op_name']} {dtype}".strip(), {"count": 0, "xnnpack": 0})
        entry["count"] += 1
        entry["xnnpack"] += op["index"] in delegated
    return {"ops": table, "xnnpack_partitions": len(partitions)}


def interleaved_ms(calls: dict, repeat: int = 50, warmup: int = 2) -> dict:
    """Median ms of each of `calls` ({name: fn}), the calls taking turns so that the changing
    load of a shared machine reaches them alike."""
    times = {name: [] for name in calls}
    for k in range(warmup + repeat):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            if k >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def bench_inference_child(queue) -> None:
    """Latency at batch 1 on one thread; runs in its own process so the thread setting holds."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tscnn_tf import exporting, model as model_lib
    from tscnn_tf.artifacts import ExportedModel
    model = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    rng = np.random.default_rng(0)
    def inputs(k):
        return {"apex_gray": rng.random((k, 48, 48, 1), np.float32),
                "blocks": rng.random((k, 48, 48, 9), np.float32),
                "flow": rng.random((k, 48, 48, 4), np.float32)}
    one = inputs(1)
    with tempfile.TemporaryDirectory() as tmp:
        meta = exporting.export_model(model, tmp, {"class_names": list("abcde"), "params": {}},
                                   inputs(8), inputs(32))
        serve = ExportedModel(tmp, meta)
        out = {"keras_ms": 1e3 * seconds(lambda: model(one, training=False), 20),
               "saved_model_ms": 1e3 * seconds(lambda: serve.predict(one), 20)}
        files = {mode: Path(tmp) / exporting.TFLITE_FILES[mode] for mode in ("float32", "int8")}
        runners = {mode: ExportedModel(f, meta, num_threads=1) for mode, f in files.items()}
        out.update({f"tflite_{mode}_ms": ms for mode, ms in interleaved_ms(
            {mode: lambda r=r: r.predict(one) for mode, r in runners.items()}, 100).items()})
        out["tflite_ops"] = {mode: tflite_ops(f) for mode, f in files.items()}
        out["int8_top1_agreement_random_inputs"] = meta["parity"]["tflite_int8"]["top1_agreement"]
    queue.put(out)


def bench_inference() -> dict:
    import multiprocessing
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=bench_inference_child, args=(queue,))
    process.start()
    result = queue.get()
    process.join()
    return result


EDGE_CLIP = (30, 640, 480)  # frames, width, height of the clip -> label measurement
EDGE_TARGET_MS = 100.0
EDGE_STAGES = ("decode", "landmarks", "alignment", "apex", "flow", "inputs", "model")


def edge_clip(path: Path, seed: int = 5, shape=EDGE_CLIP):
    """A synthetic clip (`Sample`) of `shape` = (frames, width, height): a synthetic subject's
    surprise clip (256 px frames) pasted on a fixed textured background, written as MJPG."""
    import cv2
    from tscnn_tf.databases import synthetic
    from tscnn_tf.databases.base import Sample
    count, width, height = shape
    rng = np.random.default_rng(seed)
    frames, apex, _ = synthetic.render_clip(synthetic.Subject(rng), "surprise", rng,
                                            (count, count))
    background = cv2.GaussianBlur(rng.uniform(60, 160, (height, width)).astype(np.float32),
                                  (0, 0), 8).astype(np.uint8)
    side = frames[0].shape[0]
    top, left = (height - side) // 2, (width - side) // 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
    for frame in frames:
        image = background.copy()
        image[top:top + side, left:left + side] = frame
        writer.write(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    writer.release()
    return Sample("bench", "edge", "clip", "surprise", 2, 0, count - 1, apex=apex,
                  video=str(path))


def int8_tscnn(folder: Path, classes: int = 5) -> Path:
    """The full TSCNN (untrained: latency does not depend on the weights) as the export's int8
    TFLite file, calibrated on random inputs."""
    from tscnn_tf import exporting, model as model_lib
    model = model_lib.build_tscnn(classes, "L+S+T", 3, "full")
    rng = np.random.default_rng(0)
    representative = {n: rng.random((8, *t.shape[1:]), np.float32)
                      for n, t in zip(exporting.input_names(model), model.inputs)}
    saved, path = folder / "saved_model", folder / exporting.TFLITE_FILES["int8"]
    exporting.write_saved_model(model, saved)
    exporting.write_tflite(saved, path, "int8", representative)
    return path


EDGE_DETECT_WIDTHS = (480, 400, 320, 240, 160)  # the detection widths of the landmarks rows


def landmark_shift(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance of 68 landmarks from reference ones, in inter-ocular distances (outer eye
    corners, 36 and 45: the NME of the 300-W benchmark)."""
    return float(np.mean(np.linalg.norm(points - reference, axis=1))
                 / np.linalg.norm(reference[36] - reference[45]))


def bench_edge(quick: bool = False) -> dict:
    """Clip -> label on one thread (one OpenCV thread, TFLite with one thread): a 30-frame
    640 x 480 MJPG clip through the predict path (`features.aligned_clip`: decode, landmarks
    on the onset frame, alignment; `features.clip_features`: LBP apex, flow of two pairs,
    inputs) and the int8 TSCNN, with the default settings and the edge ones (the edge flow, the
    face detector at `face.EDGE_DETECT_WIDTH`). Each stage is timed on its own and the whole
    chain end to end, all taking turns (`interleaved_ms`); medians in ms. `predict_clip_ms`:
    `predict.predict_clip` as the command runs it, which adds its face-track check (the apex
    frame read again and its face detected) to the chain. `detect_widths`: the
    landmarks stage with the detector at other widths, and how far those landmarks lie from the
    full-frame ones (`landmark_shift`, inter-ocular distances)."""
    import cv2
    from tscnn_tf import apex as apex_lib, face as face_lib, features as feat
    from tscnn_tf import flow as flow_lib, predicting as predict
    from tscnn_tf.artifacts import ExportedModel
    from tscnn_tf.video import iter_frames
    default = feat.FeatureConfig()
    flows = {"default": default.flow, "edge": flow_lib.EDGE_FLOW}
    widths = {"default": default.detect_width, "edge": face_lib.EDGE_DETECT_WIDTH}
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sample = edge_clip(Path(tmp) / "clip.avi")
            tflite = int8_tscnn(Path(tmp))
            configs = {flows[k]: feat.FeatureConfig(flow=flows[k], detect_width=widths[k])
                       for k in flows}
            models = {f: ExportedModel(tflite, {"class_names": list("abcde"),
                                                "params": c.to_dict()}, num_threads=1)
                      for f, c in configs.items()}
            landmarkers = {f: feat.landmarker_for(c) for f, c in configs.items()}
            by_width = {w: face_lib.make_landmarker(default.landmarks, default.face_box, w)
                        for w in EDGE_DETECT_WIDTHS}
            config, landmarker = default, landmarkers[default.flow]
            frames = [f for _, f in iter_frames(sample, [])]
            geometry = feat.geometry_of(landmarker(frames[0]), landmarker, config.face_size)
            faces = [face_lib.warp_to_face(f, geometry) for f in frames]
            indices = list(range(len(faces)))
            position, _ = apex_lib.spot_apex(
                np.stack([apex_lib.block_histograms(f) for f in faces]), config.apex_lambda)
            features = {f: feat.clip_features(faces, indices, geometry, c)
                        for f, c in configs.items()}
            shifts = {w: None if (p := m(frames[0])) is None
                      else landmark_shift(p, geometry.landmarks) for w, m in by_width.items()}

            def align(geo):  # one geometry per clip, every frame warped with it
                return [face_lib.warp_to_face(f, geo) for f in frames]

            def end_to_end(f):
                idx, crops, geo = feat.aligned_clip(sample, configs[f], landmarkers[f], [])
                return models[f](feat.clip_features(crops, idx, geo, configs[f]))
            calls = {
                "decode": lambda: [f for _, f in iter_frames(sample, [])],
                **{f"landmarks_{f}": lambda m=m: m(frames[0]) for f, m in landmarkers.items()},
                **{f"width_{w}": lambda m=m: m(frames[0]) for w, m in by_width.items()},
                "alignment": lambda: align(face_lib.face_geometry(geometry.landmarks,
                                                                  config.face_size)),
                "apex": lambda: apex_lib.spot_apex(np.stack(
                    [apex_lib.block_histograms(f) for f in faces]), config.apex_lambda),
                "inputs": lambda: (feat.apex_gray(faces[position]),
                                   feat.block_stack(faces[position], config.blocks)),
                **{f"flow_{f}": lambda f=f: feat.flow_features(
                    faces[0], faces[position], faces[-1], f, configs[f].flow_norm)
                   for f in configs},
                **{f"model_{f}": lambda f=f: models[f](features[f]) for f in configs},
                **{f"end_to_end_{f}": lambda f=f: end_to_end(f) for f in configs},
                **{f"predict_{f}": lambda f=f: predict.predict_clip(
                    models[f], predict.clip_sample(video=sample.video), landmarkers[f])
                   for f in configs}}
            ms = interleaved_ms(calls, *((2, 1) if quick else (15, 2)))
    finally:
        cv2.setNumThreads(before)
    stages = {f: {s: ms.get(f"{s}_{f}", ms.get(s)) for s in EDGE_STAGES} for f in configs}
    for f, entry in stages.items():
        entry["sum"] = sum(entry.values())
    total = {f: ms[f"end_to_end_{f}"] for f in configs}
    edge = flows["edge"]
    slowest = max(EDGE_STAGES, key=lambda s: stages[edge][s])
    return {"clip": {"frames": EDGE_CLIP[0], "size": list(EDGE_CLIP[1:]), "codec": "MJPG",
                     "face_px": 256},
            "model": "full TSCNN, int8 TFLite (export's int8 file), untrained",
            "threads": 1, "flow": flows, "detect_width": widths, "target_ms": EDGE_TARGET_MS,
            "clip_to_label_ms": total, "stages": stages,
            "predict_clip_ms": {f: ms[f"predict_{f}"] for f in configs},
            "met": total[edge] <= EDGE_TARGET_MS, "slowest_stage": slowest,
            "detect_widths": {str(w): {"landmarks_ms": ms[f"width_{w}"],
                                       "landmark_shift": shifts[w]} for w in by_width},
            "note": "clip_to_label_ms is the chain timed end to end; stages.sum is the stages "
                    "timed one by one; predict_clip_ms adds predict's face-track check. "
                    "Each column is a setting of predict: the edge one is "
                    "--flow and --detect_width as in `detect_width`. detect_widths: the "
                    "landmarks stage at other detection widths; landmark_shift is the mean "
                    "distance of their 68 points from the full-frame ones, in inter-ocular "
                    "distances (None: no face found)."}


def bench_spotting(quick: bool = False) -> dict:
    """Spotting on a 640 x 480 synthetic long video (MJPG at 100 fps, over 1000 frames):
    frames per second with decoding and start-up (the landmark model) included, decoding alone
    side by side, and with recognition of every spotted interval by the full TSCNN, in turns:
    the Keras model with TV-L1 for its two flow pairs, the same model whose metadata says the
    edge flow, and the export's int8 TFLite file with the edge flow (the edge deployment:
    `spot --model=.../model_int8.tflite` of a model trained with `--flow=dis`). Per interval:
    the median latency of each (`recognition_ms_per_interval*`), and on the first interval's
    crops the features (`features.clip_features`) and the model call timed apart
    (`recognition_parts_ms`). Throughputs are the best of 3 runs: on this shared machine a
    single run was seen to vary by 25 %."""
    from tscnn_tf import flow as flow_lib, model as model_lib, spotting, video
    from tscnn_tf.artifacts import ExportedModel
    from tscnn_tf.config import FeatureConfig
    from tscnn_tf.databases import synthetic_long
    from tscnn_tf.features import clip_features
    duration = 6 if quick else 12
    default, edge = FeatureConfig().flow, flow_lib.EDGE_FLOW
    classes = ["negative", "positive", "surprise"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.avi"
        truth = synthetic_long.render_long_video(path, np.random.default_rng(3), duration, 100.0,
                                                 frame_size=(640, 480))
        decode_fps = 0.0
        for _ in range(3):
            start = time.perf_counter()
            decoded = sum(1 for _ in video.Stream(video=path))
            decode_fps = max(decode_fps, decoded / (time.perf_counter() - start))
        runs = [spotting.spot_stream(stream, stream.fps)
                for stream in (video.Stream(video=path) for _ in range(3))]
        plain = max(runs, key=lambda r: r["frames_per_s"])
        model = model_lib.build_tscnn(3, "L+S+T", 3, "full")
        model.save(Path(tmp) / "model.keras")
        artifacts = {"default": (Path(tmp) / "model.keras", default),
                     "edge": (Path(tmp) / "model.keras", edge),
                     "edge_int8": (int8_tscnn(Path(tmp), len(classes)), edge)}
        exported = {k: ExportedModel(f, {"class_names": classes,
                                         "params": FeatureConfig(flow=flow).to_dict()})
                    for k, (f, flow) in artifacts.items()}
        recognised, latencies, first = {}, {}, {}
        for kind, model_k in exported.items():
            recognise, latencies[kind] = spotting.make_recogniser(model_k), []

            def timed(spotter, interval, recognise=recognise, times=latencies[kind]):
                if not first and spotter.geometry is not None:
                    first.update(crops=spotter.crops(interval["onset"], interval["offset"]),
                                 geometry=spotter.geometry)
                begin = time.perf_counter()
                out = recognise(spotter, interval)
                times.append(time.perf_counter() - begin)
                return out
            stream = video.Stream(video=path)
            recognised[kind] = spotting.spot_stream(stream, stream.fps, recognise=timed)
        parts = {}
        if first:
            indices, faces = first["crops"]
            for flow in dict.fromkeys((default, edge)):
                config = FeatureConfig(flow=flow)
                parts[f"features_{flow}"] = 1e3 * seconds(
                    lambda c=config: clip_features(faces, indices, first["geometry"], c), 3)
            features = clip_features(faces, indices, first["geometry"], FeatureConfig(flow=edge))
            for kind in ("edge", "edge_int8"):
                parts[f"model_{exported[kind].kind}"] = 1e3 * seconds(
                    lambda m=exported[kind]: m(features), 10)
            parts["interval_frames"] = len(faces)
    hits = spotting.apex_hits(truth, plain["intervals"], 5)
    ms = {k: 1e3 * float(np.median(t)) if t else None for k, t in latencies.items()}
    return {"frame_size": [640, 480], "fps": 100.0, "frames": plain["frames"],
            "decode_frames_per_s": decode_fps, "spot_frames_per_s": plain["frames_per_s"],
            "spot_and_recognise_frames_per_s": recognised["default"]["frames_per_s"],
            "spot_and_recognise_frames_per_s_edge": recognised["edge"]["frames_per_s"],
            "spot_and_recognise_frames_per_s_edge_int8": recognised["edge_int8"]["frames_per_s"],
            "recognition_ms_per_interval": ms["default"],
            "recognition_ms_per_interval_edge": ms["edge"],
            "recognition_ms_per_interval_edge_int8": ms["edge_int8"],
            "recognition_flows": {"default": default, "edge": edge},
            "recognition_parts_ms": parts,
            "recognition_target_ms": EDGE_TARGET_MS,
            "recognition_edge_met": ms["edge_int8"] is not None
            and ms["edge_int8"] <= EDGE_TARGET_MS,
            "intervals": len(plain["intervals"]), "apex_hits": hits}


def bench_learned_spotting(quick: bool = False) -> dict:
    """The learned spotter (`spot --spotter`: the face followed frame by frame, region motion
    at 20 samples a second, the temporal model in numpy) beside the LBP spotter on one 640 x 360
    MJPG stream at 30 fps (the synthetic renderer's face placed on the frame), start-up (the
    landmark model) included; decoding alone too. Best of 3 runs each. The spotter's weights
    are random (speed does not depend on them)."""
    from tscnn_tf import spotting, video
    from tscnn_tf.databases import synthetic_long
    from tscnn_tf.learned_spotting import SpotterExport, learned_spot_stream
    from tscnn_tf.spot_features import NUM_FEATURES, FeatureSettings, feature_names
    from tscnn_tf.spotter_model import build_spotter, weights_of
    seconds_long = 20 if quick else 40
    settings = FeatureSettings()
    export = SpotterExport(Path("bench"), {
        "task": "spotting", "features": dataclasses.asdict(settings),
        "thresholds": {"micro": 0.5, "macro": 0.5}, "feature_names": feature_names(),
        "model": {"dilations": [1, 2, 4, 8, 16]}}, weights_of(build_spotter(NUM_FEATURES)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.avi"
        synthetic_long.render_long_video(path, np.random.default_rng(3), seconds_long, 30.0,
                                         frame_size=(640, 360))
        best = {"decode": 0.0, "lbp": 0.0, "learned": 0.0}
        restarts = {}
        for _ in range(3):
            start = time.perf_counter()
            count = sum(1 for _ in video.Stream(video=path))
            best["decode"] = max(best["decode"], count / (time.perf_counter() - start))
            stream = video.Stream(video=path)
            out = spotting.spot_stream(stream, stream.fps)
            best["lbp"] = max(best["lbp"], out["frames_per_s"])
            restarts["lbp"] = out["restarts"]["count"]
            stream = video.Stream(video=path)
            out = learned_spot_stream(stream, stream.fps, export)
            best["learned"] = max(best["learned"], out["frames_per_s"])
            restarts["learned"] = out["restarts"]["count"]
    return {"frame_size": [640, 360], "fps": 30.0, "frames": count,
            "decode_frames_per_s": best["decode"], "lbp_frames_per_s": best["lbp"],
            "learned_frames_per_s": best["learned"], "restarts": restarts,
            "target_frames_per_s": LEARNED_SPOT_TARGET}


LEARNED_SPOT_TARGET = 500.0
# Movements of micro-expression size warped into a real video (`real_video`): Action Units,
# start and length in seconds, peak in pixels of a 260-px face (real micro-expressions: 1.5-3).
REAL_VIDEO_MOVEMENTS = (
    {"aus": ("AU12",), "onset_s": 2.6, "length_s": 0.30, "px": 2.0},
    {"aus": ("AU4",), "onset_s": 6.3, "length_s": 0.40, "px": 2.5},
    {"aus": ("AU1+2",), "onset_s": 9.6, "length_s": 0.35, "px": 3.0},
    {"aus": ("AU12",), "onset_s": 13.2, "length_s": 0.25, "px": 1.5},
    {"aus": ("AU4",), "onset_s": 17.4, "length_s": 0.45, "px": 2.0})


def bench_real_video(path, spotter_dir) -> dict:
    """Both spotters on a real video (no ground truth: their intervals and restarts), and on
    the same video with REAL_VIDEO_MOVEMENTS warped in (`synthetic_long.insert_movements`):
    how many of them each finds as micro (MEGC IoU >= 0.5) and how many other micro intervals
    it reports."""
    from tscnn_tf import metrics, spotting, video
    from tscnn_tf.databases.synthetic_long import insert_movements
    from tscnn_tf.learned_spotting import learned_spot_stream, load_spotter
    export = load_spotter(spotter_dir)

    def spot(source):
        out = {}
        for name in ("lbp", "learned"):
            stream = video.Stream(video=source)
            result = (spotting.spot_stream(stream, stream.fps) if name == "lbp" else
                      learned_spot_stream(stream, stream.fps, export))
            out[name] = {"intervals": [{k: i[k] for k in ("type", "onset", "apex", "offset")}
                                       for i in result["intervals"]],
                         "restarts": result["restarts"], "frames_per_s": result["frames_per_s"]}
        return out

    report = {"video": str(path), "spotter": str(spotter_dir), "plain": spot(path)}
    with tempfile.TemporaryDirectory() as tmp:
        warped = Path(tmp) / "warped.avi"
        truth = insert_movements(path, warped, list(REAL_VIDEO_MOVEMENTS))
        report["movements"] = [{"onset": t.onset, "apex": t.apex, "offset": t.offset,
                                **m} for t, m in zip(truth, REAL_VIDEO_MOVEMENTS)]
        report["warped"] = spot(warped)
    for name, result in report["warped"].items():
        micro = [i for i in result["intervals"] if i["type"] == "micro"]
        scores = metrics.spotting_scores([{"truth": [{"onset": t.onset, "offset": t.offset,
                                                      "type": "micro"} for t in truth],
                                           "spotted": micro}])["micro"]
        result["movements_found_as_micro"] = scores["tp"]
        result["other_micro_intervals"] = scores["fp"]
    return report


def bench_face_box(crops: int = 40) -> dict:
    """The frame-box fallback on tight synthetic face crops (224 x 224, eyebrows at the top
    edge): where the detector works on the frame, the normalised mean error (NME, by the
    inner-eye-corner distance) of the frame box's landmarks against the detector's, and of
    both against the true landmarks; and which box `auto` ends up using."""
    from tscnn_tf import face
    from tscnn_tf.databases import synthetic
    landmarker = face.make_landmarker("dlib", "auto")
    rng = np.random.default_rng(0)
    boxes, frame_vs_detector, detector_vs_truth, frame_vs_truth = {}, [], [], []
    for k in range(crops):
        subject = synthetic.Subject(rng)
        frames, apex, _ = synthetic.render_clip(subject, synthetic.CLASS_NAMES[k % 3], rng, (8, 9))
        crop, truth = synthetic.tight_face_crop(subject, frames[apex])
        eye = np.linalg.norm(truth[39] - truth[42])
        detected = landmarker(crop, face_box="detect")
        used = landmarker(crop)
        boxes[str(landmarker.last_box)] = boxes.get(str(landmarker.last_box), 0) + 1
        framed = landmarker(crop, face_box="frame")
        frame_vs_truth.append(np.mean(np.linalg.norm(framed - truth, axis=1)) / eye)
        if detected is not None and used is not None:
            frame_vs_detector.append(np.mean(np.linalg.norm(framed - detected, axis=1)) / eye)
            detector_vs_truth.append(np.mean(np.linalg.norm(detected - truth, axis=1)) / eye)

    def stats(values):
        return {"median": float(np.median(values)), "mean": float(np.mean(values)),
                "max": float(np.max(values)), "n": len(values)}
    return {"crops": crops, "size": 224, "auto_boxes": boxes,
            "nme_frame_vs_detector": stats(frame_vs_detector),
            "nme_detector_vs_truth": stats(detector_vs_truth),
            "nme_frame_vs_truth": stats(frame_vs_truth)}


TARGETS = {"feature_ms_per_frame": 5.0, "roofline_ratio": 0.6, "tflite_int8_ms": 5.0,
           "spot_frames_per_s": 400.0}


def format_flow_table(table: dict, loso: dict | None = None) -> list[str]:
    """The flow table's lines (and the LOSO comparison's, when there is one)."""
    pairs = table["pairs"]
    lines = [f"flow table: ms per {table['face_size']}-px pair, agreement with {table['reference']}"
             f" on the {table['grid']}-px grid ({pairs['known_field']} known-field pairs, mean "
             f"{pairs['mean_px'][0]:.2f}-{pairs['mean_px'][1]:.2f} px, p99 "
             f"{pairs['p99_px'][0]:.2f}-{pairs['p99_px'][1]:.2f} px; "
             f"{pairs['clip_onset_apex']} synthetic onset->apex pairs)",
             f"  {'setting':<14}{'1 thread':>9}{'all':>8}{'cos':>7}{'|Δ| px':>8}"
             f"{'cos clip':>9}{'cos truth':>10}{'EPE px':>8}"]
    for m, e in table["methods"].items():
        clip = e.get("agreement_48_clip_pairs", {}).get("cosine", float("nan"))
        lines.append(f"  {m:<14}{e['ms_per_pair']['one_thread']:9.1f}"
                     f"{e['ms_per_pair']['all_cores']:8.1f}{e['agreement_48']['cosine']:7.3f}"
                     f"{e['agreement_48']['mean_abs_px']:8.3f}{clip:9.3f}"
                     f"{e['truth_48']['cosine']:10.3f}{e['endpoint_error_px']:8.3f}")
    if loso:
        d, t = loso["database"], loso["train"]
        lines += ["", f"synthetic LOSO by flow ({d['subjects']} subjects x {d['clips_per_class']}"
                      f" clips per class, {t['variant']} model, at most {t['epochs']} epochs)",
                  f"  {'setting':<14}{'accuracy':>9}{'UF1':>7}{'UAR':>7}{'minutes':>9}"]
        lines += [f"  {m:<14}{100 * r['accuracy']:8.1f}%{r['uf1']:7.3f}{r['uar']:7.3f}"
                  f"{r['minutes']:9.1f}" for m, r in loso["methods"].items()]
    return lines


def format_edge(e: dict) -> list[str]:
    """The clip -> label table: ms per stage and end to end, per setting (flow, detection
    width), then the landmarks stage at other detection widths."""
    flows = list(e["stages"])
    width = {f: e["detect_width"][k] or "frame" for k, f in e["flow"].items()}
    lines = [f"clip -> label on one thread ({e['clip']['frames']} frames of "
             f"{e['clip']['size'][0]}x{e['clip']['size'][1]} {e['clip']['codec']}, {e['model']}; "
             "ms)", "  " + f"{'stage':<24}" + "".join(f"{f:>9}" for f in flows),
             "  " + f"{'  face detection at':<24}" + "".join(f"{width[f]:>9}" for f in flows)]
    lines += [f"  {stage:<24}" + "".join(f"{e['stages'][f][stage]:9.1f}" for f in flows)
              for stage in (*EDGE_STAGES, "sum")]
    lines += [f"  {'end to end':<24}" + "".join(f"{e['clip_to_label_ms'][f]:9.1f}" for f in flows)
              + f"   (target ≤ {e['target_ms']:.0f} with {e['flow']['edge']}: "
              + ("met" if e["met"] else f"not met; slowest stage {e['slowest_stage']}") + ")",
              f"  {'predict_clip':<24}" + "".join(f"{e['predict_clip_ms'][f]:9.1f}" for f in flows)
              + "   (with predict's face-track check on the apex frame)",
              "  landmarks by detection width (px wide; ms; mean shift from the full-frame "
              "landmarks, inter-ocular distances)"]
    lines += [f"    {w:>5}{d['landmarks_ms']:9.1f}" + (
        "   no face" if d["landmark_shift"] is None else f"{d['landmark_shift']:9.4f}")
        for w, d in e["detect_widths"].items()]
    return lines


# The MEGC2019 composite's shape: 442 samples over 68 subjects (negative, positive, surprise).
COMPOSITE = {"subjects": 68, "classes": {"negative": 250, "positive": 109, "surprise": 83}}
COMPOSITE_BASELINES = ("ststnet", "offapexnet", "lbptop_svm")


def bench_models(quick: bool, composite_folds: int = 0) -> dict:
    """Every registry model side by side in one run: parameters and training samples/s (batch
    32, float32, every core; random record-shaped inputs). With `composite_folds`, the LOSO of
    each small baseline on random records of the MEGC2019 composite's shape (442 samples, 68
    subjects, every epoch of the main command's budget run: no early stop), timed on that many
    folds and extrapolated to the 68 (the first fold, which pays the process's start-up, plus
    67 times the median of the others): an upper bound of a full composite LOSO here.
    (The full TSCNN is left out: a composite fold of it takes tens of minutes here, which its
    samples/s in the same table already tell.)"""
    import dataclasses
    from tscnn_tf import device_check, loso, models
    variant = "tiny" if quick else "full"
    out = {"variant": variant, "batch": 32, "models": {}}
    for name in models.names():
        entry = models.get(name)
        model = entry.make(3, variant=variant)
        steps = 1 if quick or name == "htnet" else 4  # HTNet full: 140 M parameters
        inputs = device_check.random_inputs(device_check.model_inputs(model), 32 * steps)
        labels = np.random.default_rng(1).integers(0, 3, 32 * steps)
        out["models"][name] = {"parameters": int(model.count_params()),
                               "samples_per_s": device_check.samples_per_s(
                                   model, entry.loss, inputs, labels, 32, 2 if quick else 3)}
    if composite_folds:
        with tempfile.TemporaryDirectory() as tmp:
            records = device_check.write_records(Path(tmp) / "records", COMPOSITE["subjects"],
                                                 COMPOSITE["classes"])
            subjects = device_check.subjects_of(records)
            budget = main_command_config(main_command_flow(), Path(tmp)).train
            out["composite_loso"] = {"subjects": len(subjects),
                                     "epochs": 1 if quick else budget.epochs,
                                     "folds_timed": composite_folds, "models": {}}
            out.update(bench_training_step(
                records, ("ststnet",) if quick else ("offapexnet", "ststnet"), variant,
                1 if quick else 5))
            out["sample_pool"] = bench_sample_pool(records)
            for name in COMPOSITE_BASELINES:
                config = dataclasses.replace(budget, model=name, patience=budget.epochs,
                                             variant=variant)
                if quick:  # the tests' form: the code path, not a figure
                    config = dataclasses.replace(config, epochs=1, patience=1, augment=False)
                times = []
                for subject in subjects[:composite_folds]:
                    start = time.perf_counter()
                    loso.train_loso(records, Path(tmp) / f"loso-{name}", config, folds=[subject])
                    times.append(time.perf_counter() - start)
                out["composite_loso"]["models"][name] = {
                    "fold_s": times, **extrapolate_loso(times, len(subjects))}
            out["loso_workers"] = bench_loso_workers(
                records, Path(tmp), variant, out["composite_loso"]["epochs"],
                1 if quick else 2 * composite_folds, quick,
                ("ststnet",) if quick else ("ststnet", "offapexnet"))
    return out


def bench_loso_workers(records: Path, tmp: Path, variant: str, epochs: int, folds: int,
                       quick: bool, names=("ststnet", "offapexnet")) -> dict:
    """Wall time of `python -m tscnn_tf.train` from the records alone on their first `folds`
    folds (`epochs` each, no early stop), in one process with TensorFlow's threads and with
    `--loso_workers=2` (two processes of cores/2 threads sharing the folds): start-up, folds
    and aggregation, as a user runs it. Extrapolated to every fold as wall x folds_all / folds,
    an upper bound (each timed fold carries a share of the start-up)."""
    from tscnn_tf import device_check
    subjects = len(device_check.subjects_of(records))
    out = {"folds_timed": folds, "subjects": subjects, "epochs": epochs, "models": {}}
    for name in names:
        row = {}
        for key, count in (("one_process", 1), ("two_processes", 2)):
            command = [sys.executable, "-m", "tscnn_tf.train", f"--records_dir={records}",
                       f"--workdir={tmp / f'workers-{name}-{count}'}", f"--model={name}",
                       f"--variant={variant}", f"--epochs={epochs}", f"--patience={epochs}",
                       "--folds=" + ",".join(str(k) for k in range(folds)),
                       f"--loso_workers={count}", *(["--noaugment"] if quick else [])]
            start = time.perf_counter()
            run = subprocess.run(command, capture_output=True, text=True)
            if run.returncode:
                raise RuntimeError(f"{' '.join(command)} failed: {run.stderr[-2000:]}")
            row[f"{key}_s"] = time.perf_counter() - start
            row[f"{key}_minutes"] = row[f"{key}_s"] * subjects / folds / 60
        row["speedup"] = row["one_process_s"] / row["two_processes_s"]
        out["models"][name] = row
    return out


# The training step as the toolkit runs it, and each speed setting undone in turn.
STEP_SETTINGS = {"toolkit": {"autotune": False, "fused": True, "stem": True},
                 "autotune": {"autotune": True, "fused": True, "stem": True},  # tf.data's tuner
                 "keras_sgd": {"autotune": False, "fused": False, "stem": True},  # Keras's SGD
                 "whole_model": {"autotune": False, "fused": True, "stem": False}}  # no stem


def bench_training_step(records: Path, names, variant: str, rounds: int) -> dict:
    """Training ms a step of each model on the first fold of `records` through the toolkit's
    pipeline (x10 expansion, cache, shuffle, batch 32, validation every epoch) as it trains
    (fixed input threads, the fused Nesterov update), with tf.data's autotuner on instead
    (TensorFlow's default), with Keras's own SGD instead, and with the whole model trained
    (its weight-free front computed in every step, not once per sample: `models.stem`): one
    model of the same weights per setting, warmed up by an epoch that fills the cache, then
    `rounds` rounds of two epochs each, the settings taking turns (the machine's drift hits
    all); medians. Returns the `input_pipeline`, `fused_update` and `stem` comparisons."""
    import keras
    from tscnn_tf import data, device_check, loso
    from tscnn_tf.models.stem import split as split_stem
    from tscnn_tf.optimizer import make_optimizer
    manifest, files = data.load_manifest(records), data.record_files(records)
    n, subjects = manifest["params"]["blocks"], device_check.subjects_of(records)
    config = loso.TrainConfig()
    val = loso.validation_subjects(subjects[1:], config.val_fraction, config.seed, subjects[0])
    fit = [s for s in subjects[1:] if s not in val]
    keras_sgd = make_optimizer(config).get_config()  # the same settings, for Keras's SGD
    out = {key: {"rounds": rounds, "epochs_a_round": 2, "models": {}}
           for key in ("input_pipeline", "fused_update", "stem")}
    for name in names:
        plan = loso.plan_model(loso.TrainConfig(model=name, variant=variant), manifest)
        runs = {}
        for key, setting in STEP_SETTINGS.items():
            keras.utils.set_random_seed(config.seed)
            model = plan.make(len(manifest["class_names"]), n)
            stem, model = split_stem(model) if setting["stem"] else (None, model)
            train_ds, val_ds = (data.make_dataset(files, n, plan.fields, subset, training=training,
                                                  seed=config.seed, autotune=setting["autotune"],
                                                  stem=stem)
                                for subset, training in ((fit, True), (val, False)))
            optimizer = (make_optimizer(config) if setting["fused"]
                         else keras.optimizers.SGD.from_config(keras_sgd))
            model.compile(optimizer, loss=plan.entry.loss, metrics=["accuracy"],
                          steps_per_execution=loso.STEPS_PER_EXECUTION)
            model.fit(train_ds, validation_data=val_ds, epochs=1, verbose=0, shuffle=False)
            runs[key] = (model, train_ds, val_ds, sum(1 for _ in train_ds), [])
        for _ in range(rounds):
            for model, train_ds, val_ds, steps, times in runs.values():
                start = time.perf_counter()
                with warnings.catch_warnings():  # each epoch's normal end, as in fit_model
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                    model.fit(train_ds, validation_data=val_ds, epochs=2, verbose=0,
                              shuffle=False)
                times.append(1000 * (time.perf_counter() - start) / (2 * steps))
        ms = {key: statistics.median(r[4]) for key, r in runs.items()}
        out["input_pipeline"]["models"][name] = {
            "fixed_threads_ms_per_step": ms["toolkit"], "autotune_ms_per_step": ms["autotune"],
            "speedup": ms["autotune"] / ms["toolkit"]}
        out["fused_update"]["models"][name] = {
            "fused_ms_per_step": ms["toolkit"], "keras_sgd_ms_per_step": ms["keras_sgd"],
            "speedup": ms["keras_sgd"] / ms["toolkit"]}
        out["stem"]["models"][name] = {
            "stem_ms_per_step": ms["toolkit"], "whole_model_ms_per_step": ms["whole_model"],
            "speedup": ms["whole_model"] / ms["toolkit"]}
    return out


def bench_sample_pool(records: Path, name: str = "offapexnet") -> dict:
    """Seconds of the first full pass over a fold's training dataset (parse, x10 expansion,
    the fold's cache): for the first fold of a process, which makes the LOSO-wide pool
    (`data.sample_pool`; what every fold paid before it), and for the next fold, which filters
    its subjects out of that pool."""
    from tscnn_tf import data, device_check, loso
    manifest, files = data.load_manifest(records), data.record_files(records)
    n, subjects = manifest["params"]["blocks"], device_check.subjects_of(records)
    fields = loso.plan_model(loso.TrainConfig(model=name), manifest).fields
    data._pool.cache_clear()  # as in a new process
    out = {"model": name}
    for key, test in (("first_fold_s", subjects[0]), ("next_fold_s", subjects[1])):
        ds = data.make_dataset(files, n, fields, [s for s in subjects if s != test],
                               training=True, flow_norm=loso.flow_norm_of(manifest))
        start = time.perf_counter()
        for _ in ds:
            pass
        out[key] = time.perf_counter() - start
    return out


def extrapolate_loso(fold_s: list[float], folds: int) -> dict:
    """A whole LOSO's minutes from the seconds of its first folds: the first fold, which also
    pays the process's start-up (imports, first traces) that a LOSO pays once, plus the median
    of the others for each remaining fold (the first alone when no other was timed)."""
    per_fold = statistics.median(fold_s[1:] or fold_s)
    return {"s_per_fold": per_fold, "full_loso_minutes": (fold_s[0] + per_fold * (folds - 1)) / 60}


def bench_model_loso() -> dict:
    """The main command's LOSO with each registry model at its full size (HTNet's 140 M
    parameters take about 20 minutes of the 2 cores here): accuracy, UF1, UAR and minutes, one
    synthetic database."""
    from tscnn_tf import models
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in models.names():
            config = main_command_config(main_command_flow(), Path(tmp) / "synthetic_db",
                                         train={"model": name})
            out[name] = timed_loso(config, Path(tmp) / f"run-{name}")
    return out


def main_command_flow() -> str:
    """The flow of the main command (flags/synthetic.cfg, else the config's default)."""
    from tscnn_tf import cli
    from tscnn_tf.config import FeatureConfig
    return flagfile_values(cli.flagfile_dir() / "synthetic.cfg").get("flow", FeatureConfig().flow)


def format_models(m: dict) -> list[str]:
    lines = ["", f"models ({m['variant']}, batch {m['batch']}, float32, every core)",
             f"  {'model':<12}{'parameters':>14}{'samples/s':>12}"]
    lines += [f"  {name:<12}{v['parameters']:>14,}{v['samples_per_s']:>12.1f}"
              for name, v in m["models"].items()]
    for name, v in m.get("main_command_loso", {}).items():
        lines.append(f"  main command LOSO {name}: accuracy {100 * v['accuracy']:.2f} %, UF1 "
                     f"{v['uf1']:.4f}, {v['minutes']:.1f} min")
    for name, v in m.get("input_pipeline", {}).get("models", {}).items():
        lines.append(f"  training step {name} (composite fold, batch 32): "
                     f"{v['fixed_threads_ms_per_step']:.1f} ms with fixed input threads, "
                     f"{v['autotune_ms_per_step']:.1f} ms with tf.data's autotuner "
                     f"({v['speedup']:.2f}x)")
    for name, v in m.get("fused_update", {}).get("models", {}).items():
        lines.append(f"  training step {name} (composite fold, batch 32): "
                     f"{v['fused_ms_per_step']:.1f} ms with the fused Nesterov update, "
                     f"{v['keras_sgd_ms_per_step']:.1f} ms with keras.optimizers.SGD "
                     f"({v['speedup']:.2f}x)")
    for name, v in m.get("stem", {}).get("models", {}).items():
        lines.append(f"  training step {name} (composite fold, batch 32): "
                     f"{v['stem_ms_per_step']:.1f} ms with its weight-free front computed "
                     f"once per sample, {v['whole_model_ms_per_step']:.1f} ms in every step "
                     f"({v['speedup']:.2f}x)")
    if p := m.get("sample_pool"):
        lines.append(f"  a composite fold's first pass over its training data ({p['model']}): "
                     f"{p['first_fold_s']:.2f} s making the x10 sample pool (every fold "
                     f"before it), {p['next_fold_s']:.2f} s for the next fold, from the pool")
    c = m.get("composite_loso")
    for name, v in (c or {}).get("models", {}).items():
        lines.append(f"  composite-shaped LOSO {name}: {v['s_per_fold']:.1f} s a fold "
                     f"({c['epochs']} epochs; first {v['fold_s'][0]:.1f} s), "
                     f"{v['full_loso_minutes']:.1f} min for all {c['subjects']} folds "
                     f"(from {c['folds_timed']})")
    w = m.get("loso_workers")
    for name, v in (w or {}).get("models", {}).items():
        lines.append(f"  composite-shaped LOSO {name}, `train` on the first {w['folds_timed']} "
                     f"folds: {v['one_process_s']:.0f} s in one process, "
                     f"{v['two_processes_s']:.0f} s with --loso_workers=2 "
                     f"({v['speedup']:.2f}x); all {w['subjects']} folds at most "
                     f"{v['one_process_minutes']:.1f} and {v['two_processes_minutes']:.1f} min")
    return lines


SECTIONS = ("features", "training", "inference", "face_box", "spotting", "learned_spotting",
            "edge", "models")
# Sections run only when asked for by name (they need inputs of the user's).
ON_REQUEST = ("real_video",)


def format_table(report: dict) -> str:
    lines = [f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores"]
    if "features" in report:
        lines += ["", *format_features(report["features"])]
    if "training" in report:
        lines += ["", *format_training(report["training"])]
    if "inference" in report:
        lines += ["", *format_inference(report["inference"])]
    if "models" in report:
        lines += format_models(report["models"])
    return "\n".join(lines + format_rest(report))


def format_features(f: dict) -> list[str]:
    lines = ["feature stage (ms per frame)"]
    lines += [f"  {k:<24}{v:8.2f}" for k, v in f["ms_per_frame"].items()]
    lines += [f"  {'landmarks (per clip)':<24}{f['ms_per_clip']['landmarks']:8.2f}",
              "", f"optical flow on a {f['face_size']}x{f['face_size']} face pair "
                  "(known displacement up to 2 px)",
              f"  {'method':<16}{'ms/pair':>10}{'EPE px':>10}"]
    lines += [f"  {m:<16}{v['ms_per_pair']:10.1f}{v['endpoint_error_px']:10.3f}"
              for m, v in f["flow"].items()]
    lines += ["", *format_flow_table(f["flow_quality"], f.get("flow_loso"))]
    lines += ["", f"whole clips ({f['end_to_end']['clips']} clips, {f['end_to_end']['frames']} "
                  f"frames, flow {f['flow_default']})"]
    lines += [f"  {k:<24}{v['clips_per_s']:8.2f} clips/s {v['ms_per_frame']:8.2f} ms/frame"
              for k, v in f["end_to_end"].items() if isinstance(v, dict)]
    return lines


def format_training(t: dict) -> list[str]:
    return ["training (full model, batch 32)",
            f"  samples/s               {t['samples_per_s']:8.1f}",
            f"  GFLOP per sample        {t['flops_per_sample'] / 1e9:8.3f}",
            f"  achieved GFLOP/s        {t['achieved_gflops']:8.1f}",
            f"  tf.matmul GFLOP/s       {t['tf_matmul_gflops']:8.1f}",
            f"  numpy sgemm GFLOP/s     {t['numpy_sgemm_gflops']:8.1f}",
            f"  roofline ratio          {t['roofline_ratio']:8.2f}   (target ≥ {TARGETS['roofline_ratio']})"]


def format_inference(i: dict) -> list[str]:
    lines = ["inference (batch 1, one thread, ms per sample)"]
    lines += [f"  {k[:-3]:<24}{v:8.2f}" for k, v in i.items() if k.endswith("_ms")]
    lines += [f"  {mode} ops off XNNPACK: " + (", ".join(
        f"{name} {e['count'] - e['xnnpack']}/{e['count']}" for name, e in ops["ops"].items()
        if e["xnnpack"] < e["count"]) or "none") + f"; {ops['xnnpack_partitions']} partitions"
        for mode, ops in i.get("tflite_ops", {}).items()]
    return lines


def format_rest(report: dict) -> list[str]:
    lines = []
    if "real_video" in report:
        r = report["real_video"]
        lines += ["", f"real video {Path(r['video']).name}: intervals, restarts; "
                      f"{len(r['movements'])} micro-expression-sized movements warped in"]
        for name in ("lbp", "learned"):
            plain, warped = r["plain"][name], r["warped"][name]
            lines.append(f"  {name:<8} {len(plain['intervals'])} interval(s) "
                         f"({sum(i['type'] == 'micro' for i in plain['intervals'])} micro), "
                         f"restarts {plain['restarts']['count']}; warped: "
                         f"{warped['movements_found_as_micro']} of {len(r['movements'])} found "
                         f"as micro, {warped['other_micro_intervals']} other micro interval(s)")
    if "learned_spotting" in report:
        s = report["learned_spotting"]
        lines += ["", f"learned spotter beside the LBP spotter ({s['frames']} frames of "
                      f"{s['frame_size'][0]}x{s['frame_size'][1]} MJPG at {s['fps']:g} fps, "
                      "start-up included, best of 3)",
                  f"  decoding alone          {s['decode_frames_per_s']:8.0f} frames/s",
                  f"  LBP spotter             {s['lbp_frames_per_s']:8.0f} frames/s",
                  f"  learned spotter         {s['learned_frames_per_s']:8.0f} frames/s   "
                  f"(target ≥ {s['target_frames_per_s']:.0f})",
                  f"  restarts                {s['restarts']}"]
    if "spotting" in report:
        s = report["spotting"]
        lines += ["", f"spotting ({s['frames']} frames of {s['frame_size'][0]}x"
                      f"{s['frame_size'][1]} MJPG at {s['fps']:g} fps, start-up included)",
                  f"  decoding alone          {s['decode_frames_per_s']:8.0f} frames/s",
                  f"  spotting                {s['spot_frames_per_s']:8.0f} frames/s   "
                  f"(target ≥ {TARGETS['spot_frames_per_s']:.0f})",
                  f"  spotting + recognition  {s['spot_and_recognise_frames_per_s']:8.0f} frames/s",
                  f"  recognition per interval{s['recognition_ms_per_interval'] or 0:8.0f} ms   "
                  f"({s['recognition_flows']['default']})",
                  f"  recognition per interval{s['recognition_ms_per_interval_edge'] or 0:8.0f} ms   "
                  f"({s['recognition_flows']['edge']})",
                  f"  recognition per interval{s['recognition_ms_per_interval_edge_int8'] or 0:8.0f} ms   "
                  f"({s['recognition_flows']['edge']}, int8 TFLite; target ≤ "
                  f"{s['recognition_target_ms']:.0f})",
                  "  of which " + ", ".join(f"{k} {v:.1f} ms" for k, v in
                                           s["recognition_parts_ms"].items() if k != "interval_frames")
                  + f" (first interval, {s['recognition_parts_ms'].get('interval_frames')} frames)",
                  f"  apex hits (±5 frames)   {s['apex_hits']['tp']} of "
                  f"{s['apex_hits']['tp'] + s['apex_hits']['fn']}, {s['apex_hits']['fp']} false"]
    if "edge" in report:
        lines += ["", *format_edge(report["edge"])]
    if "face_box" in report:
        b = report["face_box"]
        lines += ["", f"face box on {b['crops']} tight synthetic crops ({b['size']} px), NME "
                      "by inner-eye distance: median / mean / max",
                  f"  boxes used by auto      {b['auto_boxes']}"]
        lines += [f"  {name[4:]:<24}{v['median']:.3f} / {v['mean']:.3f} / {v['max']:.3f} (n={v['n']})"
                  for name, v in b.items() if name.startswith("nme_")]
    return lines


def run(quick: bool = False, flow_loso: bool = False, sections=SECTIONS, model_loso: bool = False,
        composite_folds: int = 0, real_video: str | None = None,
        spotter: str | None = None) -> dict:
    """The `sections` asked for (all by default), in one run; the training section uses every
    core, inference and edge one thread. `flow_loso` adds the LOSO accuracy of the main
    command's database by flow (tens of minutes a setting on 2 cores), side by side in the
    same run."""
    if unknown := set(sections) - set(SECTIONS) - set(ON_REQUEST):
        raise ValueError(f"unknown bench section(s) {sorted(unknown)}; choose from {SECTIONS}")
    if "real_video" in sections and not (real_video and spotter):
        raise ValueError("--sections=real_video needs --real_video=<a face video> and "
                         "--spotter=<a learned spotter's export>")
    from tscnn_tf.artifacts import package_versions
    report = {"machine": machine(), "packages": package_versions(), "code": source_commit(),
              "settings": {"quick": quick, "sections": list(sections), "flow_loso": flow_loso,
                           "model_loso": model_loso, "composite_folds": composite_folds,
                           "real_video": real_video, "spotter": spotter}}
    steps = {"features": lambda: bench_features(quick),
             "training": lambda: bench_training(quick), "inference": bench_inference,
             "face_box": lambda: bench_face_box(12 if quick else 40),
             "spotting": lambda: bench_spotting(quick),
             "learned_spotting": lambda: bench_learned_spotting(quick),
             "real_video": lambda: bench_real_video(real_video, spotter),
             "edge": lambda: bench_edge(quick),
             "models": lambda: bench_models(quick, composite_folds=composite_folds)}
    for name, step in steps.items():
        if name in sections:
            report[name] = step()
    # The LOSO comparisons last: they take tens of minutes, and a timing section after them
    # would be measured on a machine that has just been busy for that long.
    if flow_loso and "features" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            report["features"]["flow_loso"] = bench_flow_loso(
                ["tvl1", *closest_fast_flows(report["features"]["flow_quality"])], Path(tmp))
    if model_loso and "models" in sections:
        report["models"]["main_command_loso"] = bench_model_loso()
    return report


def main(argv):
    del argv
    from absl import flags
    FLAGS = flags.FLAGS
    from tscnn_tf.artifacts import check_writable_dir, write_json_atomic
    default = "device_check.json" if FLAGS.device_check else FLAGS.output
    output = Path(FLAGS.output if FLAGS["output"].present else default)
    if output.is_dir():
        raise SystemExit(f"error: --output={output} is a folder: give a file name")
    sections = [s.strip() for s in FLAGS.sections.split(",") if s.strip()] or SECTIONS
    if unknown := sorted(set(sections) - set(SECTIONS) - set(ON_REQUEST)):
        raise SystemExit(f"error: --sections: unknown {unknown}; choose from "
                         f"{SECTIONS + ON_REQUEST}")
    check_writable_dir(output.parent)  # before minutes of measuring
    if FLAGS.device_check:
        from tscnn_tf import device_check
        report = {"machine": machine(), **device_check.run(FLAGS.quick)}
        print(device_check.format_report(report))
    else:
        report = run(FLAGS.quick, FLAGS.flow_loso, sections, FLAGS.model_loso,
                     FLAGS.composite_folds, FLAGS.real_video, FLAGS.spotter)
        print(format_table(report))
    write_json_atomic(output, report)
    print(f"\nwritten: {output}")


def define_flags():
    from absl import flags
    flags.DEFINE_string("output", "bench.json", "Where the JSON report goes.")
    flags.DEFINE_bool("quick", False, "Fewer repeats and pairs, no scikit-image TV-L1 (for "
                      "tests).")
    flags.DEFINE_bool("flow_loso", False, "Also train the main command's database in LOSO with "
                      "TV-L1 and the three closest fast flows, side by side (tens of minutes a "
                      "flow on 2 cores).")
    flags.DEFINE_bool("model_loso", False, "In the models section, also train the main "
                      "command's database in LOSO with every model at its full size, side by "
                      "side (minutes a model; HTNet's about 20 on 2 cores).")
    flags.DEFINE_integer("composite_folds", 0, "In the models section, time this many folds of "
                         "a LOSO on random records of the MEGC2019 composite's shape per model "
                         "and extrapolate to its 68 folds.")
    flags.DEFINE_string("sections", ",".join(SECTIONS), "The sections to measure, comma "
                        f"separated; also {', '.join(ON_REQUEST)} (by name only).")
    flags.DEFINE_string("real_video", None, "real_video: a face video (e.g. the shared real "
                        "video) to spot plain and with micro-expression-sized movements "
                        "warped in.")
    flags.DEFINE_string("spotter", None, "real_video: a learned spotter's export.")
    flags.DEFINE_bool("device_check", False, "The GPU check instead (writes device_check.json "
                      "unless --output is given): the device, a full LOSO on a paper-sized "
                      "database, samples/s of every model with and without mixed precision, "
                      "fold workers sharing the GPU. With --quick: tiny sizes (the tests').")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
