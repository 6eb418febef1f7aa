"""The model registry walked model by model (build, forward, one training step, .keras round
trip, TFLite parity), the input layers, user builders and their errors, and LBP-TOP against a
brute-force reference."""
import itertools

import cv2
import keras
import numpy as np
import pytest

from tscnn_tf import lbptop, models
from tscnn_tf.models import htnet, layers as model_layers, lbptop_svm

LBPTOP_FEATURES = 60  # a short `lbptop` field keeps the tiny SVM tiny
TINY = {"variant": "tiny", "blocks": 2, "features": LBPTOP_FEATURES}


def user_model(num_classes, flow_raw, fields):
    """A user's own builder: asks for the shape of `flow_raw` and the table of fields."""
    assert "lbptop" in fields
    x = keras.Input(flow_raw, name="flow_raw")
    y = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model({"flow_raw": x}, keras.layers.Dense(num_classes, activation="softmax")(y))


def hinge_model(num_classes, flow_raw, fields):
    return user_model(num_classes, flow_raw, fields)


hinge_model.loss = "categorical_hinge"


def not_a_model(num_classes):
    return "model"


def wrong_input_name(num_classes):
    x = keras.Input((48, 48, 4), name="optical_flow")
    return keras.Model(x, keras.layers.Dense(num_classes)(keras.layers.Flatten()(x)))


def wrong_input_shape(num_classes):
    x = keras.Input((28, 28, 4), name="flow_raw")
    return keras.Model(x, keras.layers.Dense(num_classes)(keras.layers.Flatten()(x)))


def broken(num_classes):
    return 1 / 0


USER = f"{__name__}:user_model"
WALK = [*models.names(), USER]


def batch(model, n=3, seed=0):
    """Random record-shaped inputs for every input of `model` (flow in pixels, others [0, 1])."""
    rng = np.random.default_rng(seed)
    shapes = models.record_fields(TINY["blocks"], LBPTOP_FEATURES)
    return {f: (rng.normal(0, 1.5, (n, *shapes[f])) if f == "flow_raw"
                else rng.random((n, *shapes[f]))).astype(np.float32)
            for f in models.input_fields(model)}


@pytest.mark.parametrize("name", WALK)
def test_every_model_builds_trains_saves_and_converts(name, tmp_path):
    from tscnn_tf.export import run_tflite, write_saved_model, write_tflite
    keras.utils.set_random_seed(0)
    entry = models.get(name)
    model = entry.make(3, **TINY)
    x = batch(model)
    p = model.predict(x, verbose=0)
    assert p.shape == (3, 3) and np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    if not entry.user:
        assert set(models.input_fields(model)) == set(entry.fields_for(**TINY))

    before = [w.copy() for w in model.get_weights()]
    model.compile(keras.optimizers.Adam(1e-2), loss=entry.loss)
    loss = model.train_on_batch(x, np.array([0, 1, 2]))
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))

    p = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras").predict(
        x, verbose=0), p)

    write_saved_model(model, tmp_path / "saved")
    write_tflite(tmp_path / "saved", tmp_path / "m.tflite")
    delta = float(np.max(np.abs(run_tflite(tmp_path / "m.tflite", x) - p)))
    print(f"{name}: TFLite float32 max |dp| = {delta:.2e}")
    assert delta < 1e-4


def test_full_size_parameter_counts():
    # STSTNet: 3 convs (3x3x3 + 1) x (3, 5, 8) = 448, batch norm 4 x 16 = 64, dense 400 x 3 + 3.
    assert models.get("ststnet").make(3).count_params() == 448 + 64 + 1203
    # OFF-ApexNet: 2 x (26 x 6 + 151 x 16), 1568 -> 1024 -> 1024 -> 3.
    assert models.get("offapexnet").make(3).count_params() == (
        2 * (26 * 6 + 151 * 16) + 1569 * 1024 + 1025 * 1024 + 1025 * 3)
    assert models.get("lbptop_svm").make(3).count_params() == 4425 * 3 + 3


def test_offapexnet_layer_shapes_follow_the_public_description():
    # u and v at 28 x 28 (STSTNet Table V: input 28 x 28 x 2, depth 5), one stream each:
    # conv 5x5 (6) / pool 2 / conv 5x5 (16) / pool 2, concatenated, FC 1024, FC 1024, output.
    model = models.get("offapexnet").make(3)
    shape = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    for stream in ("u", "v"):
        assert shape[f"{stream}_select"] == (28, 28, 1)
        assert model.get_layer(f"{stream}_conv1").kernel_size == (5, 5)
        assert model.get_layer(f"{stream}_conv2").kernel_size == (5, 5)
        assert [shape[f"{stream}_{n}"] for n in ("conv1", "pool1", "conv2", "pool2")] == [
            (28, 28, 6), (14, 14, 6), (14, 14, 16), (7, 7, 16)]
    assert [shape[n] for n in ("fusion_concat", "fc1", "fc2", "output")] == [
        (1568,), (1024,), (1024,), (3,)]
    chain = [layer for layer in model.layers if isinstance(layer, (
        keras.layers.Conv2D, keras.layers.Dense))]
    assert len(chain) == 2 * 2 + 3  # depth 5: two convolutions per stream, three dense layers
    assert [model.get_layer(f"fc{i}_dropout").rate for i in (1, 2)] == [0.5, 0.5]


def test_the_tscnn_keeps_its_old_import_path():
    from tscnn_tf import model as model_lib
    from tscnn_tf.models import tscnn
    assert model_lib.build_tscnn is tscnn.build_tscnn
    assert models.get(None) is models.get("tscnn")
    assert models.get("tscnn").fields_for(streams="S+T") == ("apex_gray", "flow")


def test_area_resize_equals_opencv_inter_area_with_the_displacements_scaled():
    img = np.random.default_rng(1).normal(size=(48, 48, 2)).astype(np.float32)
    got = model_layers.AreaResize(28, scale=28 / 48)(img[None]).numpy()[0]
    want = cv2.resize(img, (28, 28), interpolation=cv2.INTER_AREA) * 28 / 48
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_optical_strain_is_the_finite_difference_strain_magnitude():
    rng = np.random.default_rng(2)
    u, v = rng.normal(size=(2, 48, 48))
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    want = np.sqrt(ux ** 2 + vy ** 2 + 2 * ((uy + vx) / 2) ** 2)
    flow = np.stack([u, v], -1)[None].astype(np.float32)
    np.testing.assert_allclose(model_layers.OpticalStrain()(flow).numpy()[0, ..., 0], want,
                               rtol=1e-4, atol=1e-5)
    # a pure translation has no strain; a uniform stretch u = a·x has strain a
    x = np.arange(48, dtype=np.float32)
    shift = np.full((1, 48, 48, 2), 3.0, np.float32)
    stretch = np.stack([np.broadcast_to(0.1 * x, (48, 48)), np.zeros((48, 48))], -1)[None]
    assert np.abs(model_layers.OpticalStrain()(shift).numpy()).max() < 1e-6
    np.testing.assert_allclose(model_layers.OpticalStrain()(stretch.astype(np.float32)).numpy(),
                               0.1, atol=1e-6)


def test_htnet_tiles_the_four_facial_areas_in_facial_order():
    img = np.arange(28 * 28, dtype=np.float32).reshape(1, 28, 28, 1)
    tiled = htnet.FacialRegions()(img).numpy()[0, ..., 0]
    assert tiled.shape == (28, 28)
    np.testing.assert_array_equal(tiled[:14, :14], img[0, 2:16, 0:14, 0])    # left eye
    np.testing.assert_array_equal(tiled[:14, 14:], img[0, 2:16, 14:28, 0])   # right eye
    np.testing.assert_array_equal(tiled[14:, :14], img[0, 14:28, 0:14, 0])   # left lip
    np.testing.assert_array_equal(tiled[14:, 14:], img[0, 14:28, 14:28, 0])  # right lip


def test_htnet_attention_stays_inside_its_blocks():
    # 4 x 4 tokens in 2 x 2 blocks: changing a token of one block leaves the others' outputs.
    layer = htnet.BlockTransformer(blocks=2, depth=1, heads=2)
    x = np.random.default_rng(3).normal(size=(1, 4, 4, 8)).astype(np.float32)
    y = x.copy()
    y[0, 0, 0] += 5
    a, b = layer(x).numpy(), layer(y).numpy()
    assert not np.allclose(a[0, :2, :2], b[0, :2, :2])
    np.testing.assert_allclose(a[0, 2:], b[0, 2:], atol=1e-6)
    np.testing.assert_allclose(a[0, :2, 2:], b[0, :2, 2:], atol=1e-6)


def test_svm_loss_is_the_squared_multiclass_hinge_on_the_margins():
    margins = np.array([[2.0, 0.5, -1.0], [0.0, 0.2, 0.1]], np.float32)
    p = keras.ops.softmax(margins).numpy()
    got = lbptop_svm.crammer_singer_squared_hinge(np.array([0, 2]), p).numpy()
    want = [max(0, 1 + 0.5 - 2.0) ** 2, max(0, 1 + 0.2 - 0.1) ** 2]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    one_hot = np.eye(3, dtype=np.float32)[[0, 2]]
    np.testing.assert_allclose(lbptop_svm.crammer_singer_squared_hinge(one_hot, p).numpy(),
                               want, rtol=1e-5)


def test_svm_learns_separable_histograms():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(4)
    y = np.arange(30) % 3
    x = (rng.random((30, LBPTOP_FEATURES)) * 0.1 + np.eye(3)[y].repeat(20, axis=1)).astype(
        np.float32)
    entry = models.get("lbptop_svm")
    model = entry.make(3, features=LBPTOP_FEATURES)
    model.compile(keras.optimizers.Adam(5e-2), loss=entry.loss)
    model.fit({"lbptop": x}, y, epochs=40, batch_size=10, verbose=0)
    assert np.all(model.predict({"lbptop": x}, verbose=0).argmax(1) == y)


def test_a_user_builder_gets_the_fields_it_asks_for():
    entry = models.get(USER)
    assert entry.user and entry.loss == models.DEFAULT_LOSS
    model = entry.make(4)
    assert models.input_fields(model) == ("flow_raw",) and model.output.shape == (None, 4)
    seen = {}

    def spy(num_classes, blocks, fields, **others):
        seen.update(blocks=blocks, fields=fields, others=others)
        return user_model(num_classes, fields["flow_raw"], fields)

    spied = models.ModelEntry("spy", spy, None, user=True)
    spied.make(2, blocks=4, dropout=0.3)
    assert seen["blocks"] == 4 and seen["fields"]["blocks"] == (48, 48, 16)
    assert seen["others"]["dropout"] == 0.3 and seen["others"]["lbptop"] == (4425,)
    assert models.get(f"{__name__}:hinge_model").loss == "categorical_hinge"


@pytest.mark.parametrize("spec, message", [
    ("no_such_package.nets:build", "no module named 'no_such_package.nets'"),
    (f"{__name__}:no_such_function", "has no 'no_such_function'"),
    (f"{__name__}:USER", "is a str, not a function"),
    ("nets", "unknown model 'nets'; choose from tscnn, offapexnet"),
    ("a:b:c", "package.module:function"),
])
def test_a_model_that_cannot_be_found_is_one_clear_error(spec, message):
    with pytest.raises(models.ModelError, match=message.replace("(", r"\(")):
        models.get(spec)


@pytest.mark.parametrize("function, message", [
    ("not_a_model", "returned a str, not a keras.Model"),
    ("wrong_input_name", "input 'optical_flow' is no record field; name each keras.Input after "
                         "the field it reads: apex_gray, blocks, flow, flow_raw, lbptop"),
    ("wrong_input_shape", r"input 'flow_raw' has shape \(28, 28, 4\); the records hold "
                          r"\(48, 48, 4\)"),
    ("broken", "failed to build: ZeroDivisionError: division by zero"),
])
def test_a_user_model_that_cannot_be_used_is_one_clear_error(function, message):
    with pytest.raises(models.ModelError, match=message):
        models.get(f"{__name__}:{function}").make(3)


def test_records_without_a_field_the_model_reads_are_refused_by_name():
    old = ["apex_gray", "blocks", "flow", "flow_raw"]
    models.require_fields("ststnet", models.get("ststnet").fields_for(), old)  # no error
    with pytest.raises(models.ModelError, match="--model=lbptop_svm reads lbptop, which the "
                                                "records do not hold .LBP-TOP histograms"):
        models.require_fields("lbptop_svm", models.get("lbptop_svm").fields_for(), old)


def test_bad_settings_of_a_built_in_model_are_one_clear_error():
    with pytest.raises(models.ModelError, match="--model=htnet: variant must be one of"):
        models.get("htnet").make(3, variant="huge")


# ---- LBP-TOP against a brute-force reference --------------------------------------------

def bilinear(clip, t, y, x):
    """clip at a real point by trilinear weights (two of the three axes vary in a plane)."""
    value = 0.0
    for ct, cy, cx in itertools.product(*[(int(np.floor(c)), int(np.floor(c)) + 1)
                                          for c in (t, y, x)]):
        w = (1 - abs(t - ct)) * (1 - abs(y - cy)) * (1 - abs(x - cx))
        if w > 1e-12:
            value += w * clip[ct, cy, cx]
    return value


def reference_lbptop(clip, blocks, radii, points):
    rx, ry, rt = radii
    mt, my, mx = (int(np.ceil(r)) for r in (rt, ry, rx))
    T, H, W = clip.shape
    u2 = {}
    for code in range(2 ** points):
        bits = [(code >> i) & 1 for i in range(points)]
        if sum(bits[i] != bits[i - 1] for i in range(points)) <= 2:
            u2[code] = len(u2)
    bins = points * (points - 1) + 3
    hist = np.zeros((blocks, blocks, 3, bins))
    for t, y, x in itertools.product(range(mt, T - mt), range(my, H - my), range(mx, W - mx)):
        for k, (ra, rb, axes) in enumerate(((ry, rx, "yx"), (rt, rx, "tx"), (rt, ry, "ty"))):
            code = 0
            for p in range(points):
                a, b = -ra * np.sin(2 * np.pi * p / points), rb * np.cos(2 * np.pi * p / points)
                at = {"t": t, "y": y, "x": x}
                at[axes[0]] += round(a, 9)
                at[axes[1]] += round(b, 9)
                if bilinear(clip, at["t"], at["y"], at["x"]) >= clip[t, y, x]:
                    code |= 1 << p
            hist[y * blocks // H, x * blocks // W, k, u2.get(code, bins - 1)] += 1
    return (hist / hist.sum(axis=3, keepdims=True)).ravel()


@pytest.mark.parametrize("radii, points", [((1, 1, 4), 8), ((2, 1.5, 1), 4)])
def test_lbptop_equals_a_brute_force_reference(radii, points):
    clip = np.random.default_rng(5).integers(0, 6, (9, 11, 10)).astype(np.float64)
    got = lbptop.lbptop_histograms(clip, blocks=2, radius=radii, points=points)
    want = reference_lbptop(clip, 2, radii, points)
    assert got.shape == (2 * 2 * 3 * (points * (points - 1) + 3),)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_lbptop_defaults_and_refusals():
    assert lbptop.lbptop_size() == 4425 and lbptop.u2_bins(8) == 59
    clip = np.random.default_rng(6).random((12, 48, 48))
    h = lbptop.lbptop_histograms(clip)
    assert h.shape == (4425,) and h.dtype == np.float32
    np.testing.assert_allclose(h.reshape(25, 3, 59).sum(axis=2), 1, atol=1e-5)
    with pytest.raises(lbptop.LbpTopError, match="needs at least 9 frames; the clip has 8"):
        lbptop.lbptop_histograms(clip[:8])
    with pytest.raises(lbptop.LbpTopError, match="grey clip"):
        lbptop.lbptop_histograms(clip[0])


def test_lbptop_imports_no_tensorflow():
    import subprocess
    import sys
    code = "import sys, tscnn_tf.lbptop; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


@pytest.mark.parametrize("name", ["ststnet", "offapexnet", "htnet"])
def test_predict_and_spot_load_a_flow_models_keras_file_in_a_new_process(name, tmp_path):
    """An exported `model.keras` of a flow model holds the package's layers: the loader of
    `predict` and `spot --model` (`predicting.load_model`) registers them first, as a new
    process of those commands must (it crashed with "Could not locate class
    'SelectChannels'")."""
    import subprocess
    import sys
    models.get(name).make(3, variant="tiny").save(tmp_path / "model.keras")
    code = ("import sys; from tscnn_tf.predicting import load_model; "
            "m = load_model(sys.argv[1], {'class_names': list('abc')}); "
            "print(m.kind, sorted(m.input_shapes))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model.keras")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "keras ['flow_raw']"
