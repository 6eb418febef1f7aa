"""The edge flow (issue 19): a model trained on records of the edge flow is fed that flow by
`predict` and by spot-then-recognise, never the paper's TV-L1, from its metadata alone."""
import types

import pytest

from pipelines import extract_features as ef
from tscnn_tf import export, flow, loso, predict, spot
from tscnn_tf.artifacts import ExportedModel
from tscnn_tf.databases import synthetic
from tscnn_tf.features import FeatureConfig, aligned_clip
from tscnn_tf.face import make_landmarker
from tests.conftest import FAST

EDGE = FeatureConfig(flow=flow.EDGE_FLOW, apex_lambda=20)
TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16)


@pytest.fixture(scope="module")
def edge_export(request, tmp_path_factory):
    """A tiny model trained on edge-flow records, exported: the shared exported model when the
    shared records are of the edge flow, else one trained one epoch on records made here."""
    if FAST == EDGE:
        out, metadata = request.getfixturevalue("exported_tiny")
        return out, metadata, request.getfixturevalue("records_3_subjects").parent / "db"
    root = tmp_path_factory.mktemp("edge")
    db = synthetic.generate(root / "db", seed=3, num_subjects=3, clips_per_class=1)
    records = root / "records"
    ef.extract_features("synthetic", db, records, EDGE,
                        {"seed": 3, "num_subjects": 3, "clips_per_class": 1}, num_workers=1,
                        progress=False)
    (root / "run").mkdir()
    (root / "run" / "records").symlink_to(records)
    loso.train_final(root / "run" / "records", root / "run" / "final", TINY)
    out = root / "export"
    metadata = export.export_run_model(root / "run" / "final" / "best.keras", out, limit=16)
    return out, metadata, records.parent / "db"


@pytest.fixture
def flow_calls(monkeypatch):
    """The methods `flow.compute_flow` is called with."""
    calls, real = [], flow.compute_flow

    def recording(prev, nxt, method="tvl1"):
        calls.append(method)
        return real(prev, nxt, method)
    monkeypatch.setattr(flow, "compute_flow", recording)
    return calls


def first_clip(db):
    return sorted((db / "sub01").iterdir())[0]


def test_the_edge_flow_is_not_the_paper_flow_and_is_a_flag_choice():
    from tscnn_tf import config
    assert flow.EDGE_FLOW != "tvl1" and FeatureConfig().flow == "tvl1"
    assert flow.EDGE_FLOW in flow.FLOW_METHODS
    help_text = config.FeatureConfig.__dataclass_fields__["flow"].metadata["help"]
    assert flow.EDGE_FLOW in help_text


def test_predict_feeds_the_model_its_own_flow(edge_export, flow_calls):
    out, metadata, db = edge_export
    assert metadata["params"]["flow"] == flow.EDGE_FLOW
    model = predict.Model(out / "model.tflite")
    result = predict.predict_clip(model, predict.clip_sample(frames=first_clip(db)))["result"]
    assert result["label"] in model.class_names
    assert flow_calls == [flow.EDGE_FLOW] * 2  # onset->apex and apex->offset


def test_spot_then_recognise_feeds_the_model_its_own_flow(edge_export, flow_calls):
    out, _, db = edge_export
    model = ExportedModel(out / "model.tflite")
    sample = predict.clip_sample(frames=first_clip(db))
    config = FeatureConfig(**model.metadata["params"])
    indices, faces, geometry = aligned_clip(sample, config, make_landmarker("dlib"), [])
    spotter = types.SimpleNamespace(geometry=geometry,
                                    crops=lambda onset, offset: (indices, faces))
    recognised = spot.make_recogniser(model)(spotter, {"onset": indices[0],
                                                       "offset": indices[-1]})
    assert recognised["label"] in model.class_names
    assert flow_calls == [flow.EDGE_FLOW] * 2
