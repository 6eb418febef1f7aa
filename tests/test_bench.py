"""The benchmark's arithmetic: FLOPs from the layer shapes, the known-displacement flow check,
and the flow table (quick form) with the choice of the LOSO comparison's candidates."""
import numpy as np
import pytest

from tscnn_tf import bench, face, flow, model as model_lib


def test_training_flops_from_table_1_shapes():
    m = model_lib.build_tscnn(5, "L+S+T", 3, "full")
    per_stream = (20 * 20 * 64 * 9 * 64) * 2 + 9 * 9 * 128 * 9 * 64 + 9 * 9 * 128 * 9 * 128 \
        + 2048 * 1024                                       # conv2-5 and FC1
    conv1 = 44 * 44 * 64 * 25 * (1 + 9 + 4)                 # S, L (n=3), T
    forward = 3 * per_stream + conv1 + 3072 * 5
    assert bench.training_flops(m) == 6 * forward           # 2 FLOPs per MAC, x3 for training


def test_known_displacement_is_recovered_by_the_flow_backends():
    rng = np.random.default_rng(0)
    face = (255 * rng.random((96, 96))).astype(np.float32)
    import cv2
    face = cv2.GaussianBlur(face, (0, 0), 2).astype(np.uint8)
    moved, truth = bench.known_displacement(face, amplitude=1.5)
    assert 1.0 < np.abs(truth).max() <= 1.5
    estimate = flow.compute_flow(face, moved, "dis")
    inner = (slice(12, -12), slice(12, -12))
    error = np.linalg.norm(estimate[inner] - truth[inner], axis=-1).mean()
    assert error < 0.5 * np.linalg.norm(truth[inner], axis=-1).mean()


def face_crop(size=144):
    """The synthetic database's face (the astronaut), cropped to its landmarks' box."""
    import cv2
    from tscnn_tf.databases import synthetic
    gray, points = synthetic.source_face()
    (x0, y0), (x1, y1) = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
    return cv2.resize(gray[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA
                      ).astype(np.uint8)


def test_real_amplitude_pairs_have_the_real_amplitude():
    pairs = bench.real_amplitude_pairs([face_crop()])
    assert [round(p["p99_px"], 3) for p in pairs] == list(bench.REAL_P99_PX)
    assert 0.04 < pairs[0]["mean_px"] < pairs[-1]["mean_px"] < 1.3   # real: 0.05-1.2


def test_the_quick_flow_table(capsys):
    """Every setting (but the slow scikit-image one) with its times and its agreement with
    TV-L1 on the 48-px grid; TV-L1 agrees with itself, DIS nearly, a zero field not at all."""
    face = face_crop(96)  # smaller than the default crop, for the test's time
    moved, _ = bench.known_displacement(face, 1.0)
    table = bench.bench_flow_quality([face], [(face, moved)], quick=True)
    methods = table["methods"]
    assert set(methods) == set(flow.FLOW_METHODS) - {"tvl1_skimage"}
    assert table["pairs"]["known_field"] == 2 and table["pairs"]["clip_onset_apex"] == 1
    for entry in methods.values():
        assert entry["ms_per_pair"]["one_thread"] > 0 and entry["ms_per_pair"]["all_cores"] > 0
        assert -1 <= entry["agreement_48"]["cosine"] <= 1
    assert methods["tvl1"]["agreement_48"]["cosine"] > 0.9999
    assert methods["tvl1"]["agreement_48"]["mean_abs_px"] < 1e-6
    assert methods["dis"]["agreement_48"]["cosine"] > 0.7
    assert methods["dis"]["agreement_48_clip_pairs"]["cosine"] > 0.8
    assert methods["tvl1"]["truth_48"]["cosine"] > 0.7
    print("\n".join(bench.format_flow_table(table)))
    assert "dis_fast" in capsys.readouterr().out


def test_agreement_and_the_choice_of_candidates():
    a = np.ones((48, 48, 2), np.float32)
    assert bench.agreement(a, a) == {"cosine": 1.0, "mean_abs_px": 0.0}
    assert bench.agreement(a, -a)["cosine"] == -1.0
    assert bench.agreement(a, 0 * a)["cosine"] == 0.0
    np.testing.assert_allclose(bench.agreement(a, 0 * a)["mean_abs_px"], np.sqrt(2))

    def entry(ms, cosine):
        return {"ms_per_pair": {"one_thread": ms}, "agreement_48": {"cosine": cosine}}
    table = {"methods": {"tvl1": entry(100, 1.0), "near_slow": entry(90, 0.99),
                         "a": entry(20, 0.9), "b": entry(1, 0.8), "c": entry(2, 0.95),
                         "d": entry(0.5, 0.5)}}
    assert bench.closest_fast_flows(table) == ["c", "a", "b"]


def test_the_loso_comparison_runs_the_main_commands_database(tmp_path):
    """The flagfiles' values (6 subjects x 2 clips, λ 20, at most 25 epochs) with the flow
    asked for and no final model."""
    config = bench.main_command_config("dis", tmp_path / "db")
    assert (config.data.db, config.data.synthetic_subjects,
            config.data.synthetic_clips_per_class) == ("synthetic", 6, 2)
    assert (config.features.flow, config.features.apex_lambda, config.features.blocks,
            config.features.apex_source) == ("dis", 20, 3, "spotted")
    assert (config.train.epochs, config.train.patience, config.train.variant) == (25, 5, "full")
    assert not config.export.final_model and config.data.data_dir == str(tmp_path / "db")
    small = bench.main_command_config("tvl1", tmp_path, train={"variant": "tiny"})
    assert small.train.variant == "tiny" and small.train.epochs == 25


def test_the_edge_section_times_every_stage_of_both_flows():
    """Clip -> label on one thread: the 30-frame 640 x 480 MJPG clip through the predict path
    and the int8 TSCNN, per stage and end to end, for the default flow and the edge flow; the
    table says whether the target was met and, if not, the slowest stage. No timing asserted."""
    report = bench.run(quick=True, sections=("edge",))
    assert set(report) == {"machine", "packages", "code", "settings", "edge"}
    assert report["packages"]["tscnn-tf"] and report["settings"]["sections"] == ["edge"]
    assert report["code"] is None or len(report["code"]["commit"]) == 40  # None: installed
    edge = report["edge"]
    assert edge["flow"] == {"default": "tvl1", "edge": flow.EDGE_FLOW}
    assert set(edge["stages"]) == set(edge["clip_to_label_ms"]) == {"tvl1", flow.EDGE_FLOW}
    for stages in edge["stages"].values():
        assert set(stages) == {*bench.EDGE_STAGES, "sum"} and all(v > 0 for v in stages.values())
        np.testing.assert_allclose(stages["sum"], sum(stages[s] for s in bench.EDGE_STAGES))
    assert edge["clip"] == {"frames": 30, "size": [640, 480], "codec": "MJPG", "face_px": 256}
    assert edge["target_ms"] == 100 and edge["threads"] == 1
    assert edge["met"] == (edge["clip_to_label_ms"][flow.EDGE_FLOW] <= 100)
    assert edge["slowest_stage"] in bench.EDGE_STAGES
    # The edge column is measured with the edge detection width, not projected (issue 19).
    assert edge["detect_width"] == {"default": 0, "edge": face.EDGE_DETECT_WIDTH}
    assert set(edge["predict_clip_ms"]) == set(edge["stages"])
    assert set(edge["detect_widths"]) == {str(w) for w in bench.EDGE_DETECT_WIDTHS}
    assert all(d["landmark_shift"] < 0.05 for d in edge["detect_widths"].values())
    text = bench.format_table(report)
    assert "clip -> label on one thread" in text and "end to end" in text


def test_the_edge_clip_shows_one_face_the_predict_path_finds(tmp_path):
    from tscnn_tf import face
    from tscnn_tf.video import iter_frames
    sample = bench.edge_clip(tmp_path / "clip.avi")
    frames = [f for _, f in iter_frames(sample, [])]
    assert len(frames) == 30 and frames[0].shape == (480, 640)
    landmarker = face.make_landmarker("dlib", "auto")
    assert landmarker(frames[0]) is not None
    assert (landmarker.last_box, landmarker.last_faces) == ("detector", 1)


def test_every_model_side_by_side_and_the_composite_loso_estimate():
    """The models section: parameters and samples/s of every registry model in one run, and
    (quick, 1 fold) the composite-shaped LOSO estimate of the baselines."""
    from tscnn_tf import models
    m = bench.bench_models(quick=True, composite_folds=1)
    assert set(m["models"]) == set(models.names())
    assert all(v["parameters"] > 0 and v["samples_per_s"] > 0 for v in m["models"].values())
    c = m["composite_loso"]
    assert c["subjects"] == 68 and set(c["models"]) == {"ststnet", "offapexnet", "lbptop_svm"}
    assert all(len(v["fold_s"]) == 1 and v["full_loso_minutes"] == pytest.approx(
        v["s_per_fold"] * 68 / 60) for v in c["models"].values())
    assert "composite-shaped LOSO ststnet" in "\n".join(bench.format_models(m))
    step = m["input_pipeline"]["models"]["ststnet"]
    assert step["fixed_threads_ms_per_step"] > 0 and step["autotune_ms_per_step"] > 0
    fused = m["fused_update"]["models"]["ststnet"]
    assert fused["fused_ms_per_step"] == step["fixed_threads_ms_per_step"]  # one measurement
    assert fused["keras_sgd_ms_per_step"] > 0
    text = "\n".join(bench.format_models(m))
    assert "with tf.data's autotuner" in text and "with keras.optimizers.SGD" in text
    pool = m["sample_pool"]
    assert pool["first_fold_s"] > pool["next_fold_s"] > 0  # the next fold reads the pool
    assert "making the x10 sample pool" in text
    stem = m["stem"]["models"]["ststnet"]
    assert stem["stem_ms_per_step"] == step["fixed_threads_ms_per_step"]
    assert stem["whole_model_ms_per_step"] > 0 and "computed once per sample" in text
    w = m["loso_workers"]
    assert (w["folds_timed"], w["subjects"], set(w["models"])) == (1, 68, {"ststnet"})
    row = w["models"]["ststnet"]
    assert row["one_process_s"] > 0 and row["two_processes_s"] > 0
    assert row["two_processes_minutes"] == pytest.approx(row["two_processes_s"] * 68 / 60)
    assert "with --loso_workers=2" in text


def test_composite_extrapolation_counts_the_start_up_once():
    """The first fold pays the process's start-up; the rest are the median of the others."""
    e = bench.extrapolate_loso([30.0, 10.0, 12.0, 11.0], 68)
    assert e["s_per_fold"] == 11.0
    assert e["full_loso_minutes"] == pytest.approx((30 + 67 * 11) / 60)
    assert bench.extrapolate_loso([20.0], 68)["full_loso_minutes"] == pytest.approx(20 * 68 / 60)
