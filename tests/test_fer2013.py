"""FER2013 reading (both header variants, bad rows) and the S-stream warm start."""
import numpy as np
import pytest

from tscnn_tf import model as model_lib
from tscnn_tf.databases.fer2013 import FER_CLASSES, read_fer2013
from tscnn_tf.models.tscnn import load_s_stream
from tscnn_tf.pretrain_fer2013 import PretrainConfig, pretrain_s_stream


def write_fer_csv(path, rows, header="emotion,pixels,Usage"):
    lines = [header] + [f"{e},{p},{u}" for e, p, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def fer_rows(count, usage, seed):
    rng = np.random.default_rng(seed)
    return [(i % 7, " ".join(map(str, rng.integers(0, 256, 48 * 48))), usage)
            for i in range(count)]


@pytest.fixture(scope="module")
def fer_csv(tmp_path_factory):
    rows = fer_rows(14, "Training", 0) + fer_rows(7, "PublicTest", 1) + fer_rows(7, "PrivateTest", 2)
    bad = [(3, "1 2 3", "Training"),                                   # wrong pixel count
           (9, " ".join(["7"] * 2304), "Training"),                     # unknown emotion id
           ("x", " ".join(["7"] * 2304), "PublicTest")]                 # not an id at all
    return write_fer_csv(tmp_path_factory.mktemp("fer") / "fer2013.csv", rows + bad)


def test_reader_skips_and_reports_bad_rows(fer_csv):
    data = read_fer2013(fer_csv)
    assert data.images.shape == (28, 48, 48) and data.images.dtype == np.uint8
    assert len(data.dropped) == 3
    assert "2304" in data.dropped[0][1] and "unknown emotion" in data.dropped[1][1]
    x, y = data.split("Training")
    assert len(y) == 14 and set(y) == set(range(len(FER_CLASSES)))


def test_icml_variant_with_spaced_headers(tmp_path):
    # The variant orders its columns emotion, Usage, pixels, with spaces after the commas.
    path = tmp_path / "icml_face_data.csv"
    path.write_text("emotion, Usage, pixels\n" + "\n".join(
        f"{e},{u},{p}" for e, p, u in fer_rows(3, "PublicTest", 4)) + "\n")
    data = read_fer2013(path)
    assert len(data.labels) == 3 and set(data.usage) == {"PublicTest"}
    expected = np.array(fer_rows(3, "PublicTest", 4)[1][1].split(), np.uint8).reshape(48, 48)
    np.testing.assert_array_equal(data.images[1], expected)


def test_not_a_fer_csv_is_a_clear_error(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a FER2013 CSV"):
        read_fer2013(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError):
        read_fer2013(tmp_path / "missing.csv")


def test_pretrained_s_stream_warm_starts_the_tscnn(fer_csv, tmp_path):
    out = tmp_path / "s_stream.keras"
    report = pretrain_s_stream(fer_csv, out, PretrainConfig(variant="tiny", epochs=1,
                                                             batch_size=8))
    assert out.is_file() and report["train_samples"] == 14 and report["skipped_rows"] == 3
    # An accuracy over the 7 private-test rows: a whole number of them, k / 7.
    assert report["test_samples"] == 7
    correct = report["private_test_accuracy"] * 7
    assert abs(correct - round(correct)) < 1e-5  # float32 metric
    import keras
    pretrained = keras.saving.load_model(out)
    tscnn = model_lib.build_tscnn(3, "L+S+T", 3, "tiny")
    assert load_s_stream(tscnn, out) == 12  # 5 convs, 5 PReLUs, fc1 and its PReLU
    for name in ("S_conv1_conv", "S_conv5_prelu", "S_fc1"):
        for a, b in zip(tscnn.get_layer(name).get_weights(), pretrained.get_layer(name).get_weights()):
            np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="another --variant"):
        load_s_stream(model_lib.build_tscnn(3, "L+S+T", 3, "full"), out)
    with pytest.raises(ValueError, match="no S-stream layer"):
        load_s_stream(model_lib.build_tscnn(3, "L+T", 3, "tiny"), out)


def test_a_bad_output_is_refused_before_the_data_is_read(tmp_path):
    """The output is checked first: the CSV given does not even exist, so any reading or
    training before the check would fail with another error."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder.keras").mkdir()
    for output in (tmp_path / "a_file" / "s.keras", tmp_path / "a_folder.keras",
                   tmp_path / "s.h5"):
        with pytest.raises((ValueError, OSError), match=str(output.parent.name) + "|.keras"):
            pretrain_s_stream(tmp_path / "missing.csv", output)
