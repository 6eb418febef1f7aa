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


def test_six_folds_of_predictions_raise_no_retracing_warning(caplog):
    """Each fold predicts its test subject with a new model, so TensorFlow traces a predict
    function per fold and, from the sixth, warns of "excessive" retracing: expected here."""
    import numpy as np
    from tscnn_tf import loso, models
    x = {"flow_raw": np.zeros((2, 48, 48, 4), np.float32)}

    def six_predictions():
        for _ in range(6):
            models.get("ststnet").make(3, variant="tiny").predict(x, verbose=0)
    caplog.set_level(logging.WARNING, logger="tensorflow")
    six_predictions()  # without the toolkit's guard: the warning (so this test can fail)
    assert any("retracing" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with loso.quiet_retracing():
        six_predictions()
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]
    assert logging.getLogger("tensorflow").level != logging.ERROR  # restored
