"""The benchmark's fair timing of TFLite float32 against int8 (issue 19)."""
import pytest

from tscnn_tf import bench


def test_interleaved_ms_takes_turns_skips_warmup_and_gives_medians(monkeypatch):
    clock, order = [0.0], []
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    costs = {"float32": [9.0, 9.0, 0.002, 0.003, 0.002], "int8": [9.0, 9.0, 0.001, 0.001, 0.5]}

    def call(name):
        clock[0] += costs[name][len([o for o in order if o == name])]
        order.append(name)
    ms = bench.interleaved_ms({name: lambda n=name: call(n) for name in costs}, repeat=3,
                              warmup=2)
    assert order == ["float32", "int8"] * 5      # in turns, warm-up runs included
    assert ms == pytest.approx({"float32": 2.0, "int8": 1.0})  # medians in ms, no warm-up


def test_int8_export_of_a_model_with_min_max_normalisation_runs(tmp_path):
    """The int8 DIV of the normalisation (max - min as divisor) stopped the interpreter
    ("data[i] != zero_point") for OffApexNet, STSTNet and HTNet; it stays in float."""
    import keras
    import numpy as np
    from tscnn_tf import export, models
    keras.utils.set_random_seed(0)
    model = models.get("offapexnet").make(3, variant="tiny")
    rng = np.random.default_rng(0)
    x = {name: rng.random((8, *model.get_layer(name).output.shape[1:])).astype(np.float32)
         for name in export.input_names(model)}
    export.write_saved_model(model, tmp_path / "saved")
    export.write_tflite(tmp_path / "saved", tmp_path / "int8.tflite", "int8", x)
    p = export.run_tflite(tmp_path / "int8.tflite", x)
    assert "DIV float32" in bench.tflite_ops(tmp_path / "int8.tflite")["ops"]
    assert export.parity(model.predict(x, verbose=0), p)["top1_agreement"] >= 0.75
