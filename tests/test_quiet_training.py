"""What training prints is what the user should read: no false alarms from Keras or TensorFlow
about the toolkit's normal working."""
import logging


def test_training_prints_no_false_keras_warnings(tmp_path):
    """Every epoch of a fold ends its dataset inside a call of several steps: Keras must not
    tell the user that the input "ran out of data", nor that `shuffle=True` was ignored."""
    import dataclasses
    import warnings
    from tscnn_tf import device_check, loso
    records = device_check.write_records(tmp_path / "records", 3, {"a": 6, "b": 6})
    config = dataclasses.replace(loso.TrainConfig(), model="ststnet", variant="tiny", epochs=2,
                                 patience=2, augment=False, batch_size=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loso.train_loso(records, tmp_path / "run", config, folds=["sub01"])
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ran out of data" in m or "shuffle=True" in m], messages


def fresh_retracing_detector(monkeypatch) -> None:
    """TensorFlow warns of retracing at most twice per traced code in a process, and Keras's
    predict of every model is one code: any earlier test's predictions (in this process, in
    any order of the suite) may have spent them. A new detector, so that the warning can show."""
    from tensorflow.python.eager.polymorphic_function import polymorphic_function as pf
    monkeypatch.setattr(pf, "_frequent_tracing_detector_manager",
                        pf._FrequentTracingDetectorManager())


def test_six_folds_of_predictions_raise_no_retracing_warning(caplog, monkeypatch):
    """Each fold predicts its test subject with a new model, so TensorFlow traces a predict
    function per fold and, from the sixth, warns of "excessive" retracing: expected here."""
    import numpy as np
    from tscnn_tf import loso, models
    x = {"flow_raw": np.zeros((2, 48, 48, 4), np.float32)}

    def six_predictions():
        for _ in range(6):
            models.get("ststnet").make(3, variant="tiny").predict(x, verbose=0)
    caplog.set_level(logging.WARNING, logger="tensorflow")
    fresh_retracing_detector(monkeypatch)
    six_predictions()  # without the toolkit's guard: the warning (so this test can fail)
    assert any("retracing" in r.getMessage() for r in caplog.records)
    caplog.clear()
    fresh_retracing_detector(monkeypatch)  # the first six spent the detector's two warnings
    with loso.quiet_retracing():
        six_predictions()
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert logging.getLogger("tensorflow").level != logging.ERROR  # restored


def test_int8_export_prints_no_tflite_interpreter_deprecation(tmp_path):
    """TensorFlow's int8 calibration runs its own (deprecated) tf.lite.Interpreter and warns
    that the user should move to ai_edge_litert, which the toolkit already uses."""
    import warnings
    import numpy as np
    from tscnn_tf import exporting, models
    model = models.get("ststnet").make(3, variant="tiny")
    exporting.write_saved_model(model, tmp_path / "saved_model")
    representative = {"flow_raw": np.random.default_rng(0).normal(
        0, 1, (4, 48, 48, 4)).astype(np.float32)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exporting.write_tflite(tmp_path / "saved_model", tmp_path / "model.tflite", "int8",
                               representative)
    assert (tmp_path / "model.tflite").stat().st_size > 0
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "tf.lite.Interpreter is deprecated" in m], messages
