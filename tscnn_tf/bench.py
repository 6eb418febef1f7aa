"""Measured speed of every stage, side by side in one run, on synthetic data.

    python -m tscnn_tf.bench                  # prints a table, writes ./bench.json
    python -m tscnn_tf.bench --output=b.json --quick

Feature stage: ms per frame for decoding, alignment and the 36 block LBP histograms per
implementation; ms per flow pair and endpoint error against a known displacement per flow
backend; whole clips per second, in one process and on every core. Training: samples per
second of the full model, its FLOPs per sample from the layer shapes, and the share of the
machine's measured matrix-multiply rate it reaches. Inference: latency at batch 1 on one
thread for Keras, the SavedModel, TFLite float32 and int8.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
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


def bench_features(quick: bool) -> dict:
    """Per-frame stages, flow backends and whole clips (synthetic database, default settings)."""
    import cv2
    from tscnn_tf import apex, face as face_lib, flow as flow_lib
    from tscnn_tf.features import FeatureConfig, sample_features
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
        for method in flow_lib.FLOW_METHODS:
            if quick and method == "tvl1_skimage":
                continue
            estimate = flow_lib.compute_flow(faces[0], moved, method)
            error = np.linalg.norm(estimate[inner] - truth[inner], axis=-1).mean()
            out["flow"][method] = {
                "ms_per_pair": 1e3 * seconds(lambda m=method: flow_lib.compute_flow(
                    faces[0], moved, m), 3),
                "endpoint_error_px": float(error)}
        total_frames = sum(len(s.frames) for s in samples)
        start = time.perf_counter()
        for s in samples:
            sample_features(s, config, landmarker)
        one = time.perf_counter() - start
        out["end_to_end"] = {"clips": len(samples), "frames": total_frames,
                             "one_process": {"clips_per_s": len(samples) / one,
                                             "ms_per_frame": 1e3 * one / total_frames}}
        dis = FeatureConfig(flow="dis")
        start = time.perf_counter()
        for s in samples:
            sample_features(s, dis, landmarker)
        fast = time.perf_counter() - start
        out["end_to_end"]["one_process_flow_dis"] = {"clips_per_s": len(samples) / fast,
                                                     "ms_per_frame": 1e3 * fast / total_frames}
        workers = os.cpu_count() or 1
        from pipelines.extract_features import run_samples
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
    model = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    model.compile(loso.make_optimizer(loso.TrainConfig()), loss="sparse_categorical_crossentropy")
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


def bench_inference_child(queue) -> None:
    """Latency at batch 1 on one thread; runs in its own process so the thread setting holds."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from tscnn_tf import export, model as model_lib
    from tscnn_tf.artifacts import ExportedModel
    model = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    rng = np.random.default_rng(0)
    def inputs(k):
        return {"apex_gray": rng.random((k, 48, 48, 1), np.float32),
                "blocks": rng.random((k, 48, 48, 9), np.float32),
                "flow": rng.random((k, 48, 48, 4), np.float32)}
    one = inputs(1)
    with tempfile.TemporaryDirectory() as tmp:
        meta = export.export_model(model, tmp, {"class_names": list("abcde"), "params": {}},
                                   inputs(8), inputs(32))
        serve = ExportedModel(tmp, meta)
        out = {"keras_ms": 1e3 * seconds(lambda: model(one, training=False), 20),
               "saved_model_ms": 1e3 * seconds(lambda: serve.predict(one), 20)}
        for mode in ("float32", "int8"):
            runner = ExportedModel(Path(tmp) / export.TFLITE_FILES[mode], meta, num_threads=1)
            out[f"tflite_{mode}_ms"] = 1e3 * seconds(lambda r=runner: r.predict(one), 50)
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


def bench_spotting(quick: bool = False) -> dict:
    """Spotting on a 640 x 480 synthetic long video (MJPG at 100 fps, over 1000 frames):
    frames per second with decoding and start-up (the landmark model) included, decoding alone
    side by side, and with recognition of every spotted interval by the full TSCNN (TV-L1 for
    its two flow pairs), whose per-interval latency is reported. Throughputs are the best of
    3 runs: on this shared machine a single run was seen to vary by 25 %."""
    from tscnn_tf import model as model_lib, spot, spotting, video
    from tscnn_tf.artifacts import ExportedModel
    from tscnn_tf.config import FeatureConfig
    from tscnn_tf.databases import synthetic_long
    seconds = 6 if quick else 12
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.avi"
        truth = synthetic_long.render_long_video(path, np.random.default_rng(3), seconds, 100.0,
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
        exported = ExportedModel(Path(tmp) / "model.keras",
                                 {"class_names": ["negative", "positive", "surprise"],
                                  "params": FeatureConfig().to_dict()})
        recognise = spot.make_recogniser(exported)
        latencies = []

        def timed(spotter, interval):
            begin = time.perf_counter()
            out = recognise(spotter, interval)
            latencies.append(time.perf_counter() - begin)
            return out
        stream = video.Stream(video=path)
        recognised = spotting.spot_stream(stream, stream.fps, recognise=timed)
    hits = spotting.apex_hits(truth, plain["intervals"], 5)
    return {"frame_size": [640, 480], "fps": 100.0, "frames": plain["frames"],
            "decode_frames_per_s": decode_fps, "spot_frames_per_s": plain["frames_per_s"],
            "spot_and_recognise_frames_per_s": recognised["frames_per_s"],
            "recognition_ms_per_interval": 1e3 * float(np.median(latencies)) if latencies else None,
            "intervals": len(plain["intervals"]), "apex_hits": hits}


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


def format_table(report: dict) -> str:
    f, t, i = report["features"], report["training"], report["inference"]
    lines = [f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores",
             "", "feature stage (ms per frame)"]
    lines += [f"  {k:<24}{v:8.2f}" for k, v in f["ms_per_frame"].items()]
    lines += [f"  {'landmarks (per clip)':<24}{f['ms_per_clip']['landmarks']:8.2f}",
              "", f"optical flow on a {f['face_size']}x{f['face_size']} face pair "
                  "(known displacement up to 2 px)",
              f"  {'method':<16}{'ms/pair':>10}{'EPE px':>10}"]
    lines += [f"  {m:<16}{v['ms_per_pair']:10.1f}{v['endpoint_error_px']:10.3f}"
              for m, v in f["flow"].items()]
    lines += ["", f"whole clips ({f['end_to_end']['clips']} clips, {f['end_to_end']['frames']} "
                  f"frames, flow {f['flow_default']})"]
    lines += [f"  {k:<24}{v['clips_per_s']:8.2f} clips/s {v['ms_per_frame']:8.2f} ms/frame"
              for k, v in f["end_to_end"].items() if isinstance(v, dict)]
    lines += ["", "training (full model, batch 32)",
              f"  samples/s               {t['samples_per_s']:8.1f}",
              f"  GFLOP per sample        {t['flops_per_sample'] / 1e9:8.3f}",
              f"  achieved GFLOP/s        {t['achieved_gflops']:8.1f}",
              f"  tf.matmul GFLOP/s       {t['tf_matmul_gflops']:8.1f}",
              f"  numpy sgemm GFLOP/s     {t['numpy_sgemm_gflops']:8.1f}",
              f"  roofline ratio          {t['roofline_ratio']:8.2f}   (target ≥ {TARGETS['roofline_ratio']})",
              "", "inference (batch 1, one thread, ms per sample)"]
    lines += [f"  {k[:-3]:<24}{v:8.2f}" for k, v in i.items() if k.endswith("_ms")]
    if "spotting" in report:
        s = report["spotting"]
        lines += ["", f"spotting ({s['frames']} frames of {s['frame_size'][0]}x"
                      f"{s['frame_size'][1]} MJPG at {s['fps']:g} fps, start-up included)",
                  f"  decoding alone          {s['decode_frames_per_s']:8.0f} frames/s",
                  f"  spotting                {s['spot_frames_per_s']:8.0f} frames/s   "
                  f"(target ≥ {TARGETS['spot_frames_per_s']:.0f})",
                  f"  spotting + recognition  {s['spot_and_recognise_frames_per_s']:8.0f} frames/s",
                  f"  recognition per interval{s['recognition_ms_per_interval'] or 0:8.0f} ms",
                  f"  apex hits (±5 frames)   {s['apex_hits']['tp']} of "
                  f"{s['apex_hits']['tp'] + s['apex_hits']['fn']}, {s['apex_hits']['fp']} false"]
    if "face_box" in report:
        b = report["face_box"]
        lines += ["", f"face box on {b['crops']} tight synthetic crops ({b['size']} px), NME "
                      "by inner-eye distance: median / mean / max",
                  f"  boxes used by auto      {b['auto_boxes']}"]
        lines += [f"  {name[4:]:<24}{v['median']:.3f} / {v['mean']:.3f} / {v['max']:.3f} (n={v['n']})"
                  for name, v in b.items() if name.startswith("nme_")]
    return "\n".join(lines)


def run(quick: bool = False) -> dict:
    """All sections; the training section uses every core, inference one thread."""
    report = {"machine": machine(), "features": bench_features(quick)}
    report["training"] = bench_training(quick)
    report["inference"] = bench_inference()
    report["face_box"] = bench_face_box(12 if quick else 40)
    report["spotting"] = bench_spotting(quick)
    return report


def main(argv):
    del argv
    from absl import flags
    FLAGS = flags.FLAGS
    report = run(FLAGS.quick)
    print(format_table(report))
    Path(FLAGS.output).write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {FLAGS.output}")


def define_flags():
    from absl import flags
    flags.DEFINE_string("output", "bench.json", "Where the JSON report goes.")
    flags.DEFINE_bool("quick", False, "Fewer repeats, no scikit-image TV-L1 (for tests).")


if __name__ == "__main__":
    from absl import app
    define_flags()
    app.run(main)
