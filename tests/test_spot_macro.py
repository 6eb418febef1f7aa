"""Macro-expressions in short recordings (issue 17 §3): one slow smile in a recording shorter
than the threshold's running window is one macro interval at its apex; peaks near a stream's
ends are decided, not lost; no interval longer than `micro_max_s` is typed micro (§2)."""
import numpy as np
import pytest

from tscnn_tf import spotting, video
from tscnn_tf.face import FIVE_POINTS
from tscnn_tf.databases import synthetic, synthetic_long


@pytest.fixture(scope="module")
def smiles(tmp_path_factory):
    """Two 2.4-s, 30-fps recordings: neutral, a 1.1-s smile peaking at frame 48, neutral."""
    folder = tmp_path_factory.mktemp("smile")
    out = []
    for seed in (0, 1):
        path = folder / f"smile{seed}.avi"
        out.append((path, synthetic_long.render_short_recording(path, np.random.default_rng(seed))))
    return out


def test_a_slow_smile_in_a_short_recording_is_one_macro_interval_at_its_apex(smiles):
    for path, truth in smiles:
        assert truth.apex == 48 and truth.type == "macro"
        out = spotting.spot_stream(video.Stream(video=path), 30)
        assert out["frames"] == 72 and out["warnings"] == []
        assert [i["type"] for i in out["intervals"]] == ["macro"], out["intervals"]
        interval = out["intervals"][0]
        assert interval["onset"] <= truth.apex <= interval["offset"] <= 71
        assert abs(interval["apex"] - truth.apex) <= 3


class FixedFace:
    """A landmarker that finds the synthetic face where it always is."""

    def __init__(self):
        self.points = synthetic.Subject(np.random.default_rng(0)).points

    def __call__(self, gray, face_box=None):
        return self.points


def burst_stream(length: int, bursts):
    """A still noise frame; at each burst frame a block of it inverted (one frame)."""
    base = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    for i in range(length):
        frame = base.copy()
        if i in bursts:
            frame[40:80, 60:100] = 255 - frame[40:80, 60:100]
        yield i, frame


@pytest.mark.parametrize("burst", [15, 280])
def test_peaks_near_the_ends_of_a_stream_are_decided(burst):
    """At 100 fps the micro scale is k = 12: a peak 15 frames from the start or 19 from the
    end has its interval inside the stream, but its ±k neighbourhood (and the 3 k frames a
    decision needs) runs past the stream's end; it is spotted all the same."""
    config = spotting.SpotConfig(redetect_s=1000)
    out = spotting.spot_stream(burst_stream(300, {burst}), 100, config, landmarker=FixedFace())
    assert [(i["apex"], i["type"]) for i in out["intervals"]] == [(burst, "micro")]
    assert 0 <= out["intervals"][0]["onset"] and out["intervals"][0]["offset"] <= 299


def test_a_lost_face_decides_the_peaks_of_the_segment_it_ends():
    class LosesFace(FixedFace):
        def __call__(self, gray, face_box=None):
            return None if gray[0, 0] == 0 else self.points

    frames = list(burst_stream(300, {90}))
    other = np.random.default_rng(1).integers(1, 255, (120, 160), dtype=np.uint8)
    other[0, 0] = 0
    for i in range(110, 300):
        frames[i] = (i, other)  # from frame 110 on another scene: nothing to follow, no face
    out = spotting.spot_stream(iter(frames), 100, spotting.SpotConfig(redetect_s=0.01),
                               landmarker=LosesFace())
    assert out["restarts"]["count"] == 1  # hidden for more than max_gap_s (1 s)
    assert any("face lost at frame 110" in w for w in out["warnings"])
    assert [(i["apex"], i["type"]) for i in out["intervals"]] == [(90, "micro")]


def test_no_interval_longer_than_micro_max_s_is_typed_micro():
    """Five overlapping micro-scale peaks still pending when the stream ends are merged into
    one interval of 0.85 s: with micro_max_s 0.5 it is a macro interval."""
    spotter = spotting.Spotter(100, spotting.SpotConfig(), FixedFace(), keep_trace=False)
    spotter.pending = [{"onset": a - 12, "apex": a, "offset": a + 12, "score": 1.0,
                        "scale": "micro", "span": 25} for a in range(100, 161, 15)]
    out = spotter.finish()
    assert [(i["onset"], i["offset"], i["type"]) for i in out] == [(88, 172, "macro")]
    for micro_max_s in (0.2, 0.5, 2.0):
        config = spotting.SpotConfig(micro_max_s=micro_max_s)
        spotter = spotting.Spotter(100, config, FixedFace(), keep_trace=False)
        spotter.pending = [{"onset": 88, "apex": 100, "offset": 112, "score": 1.0,
                            "scale": "micro", "span": 25}]
        (interval,) = spotter.finish()
        assert interval["type"] == ("micro" if 25 / 100 <= micro_max_s else "macro")


def test_a_detection_far_from_the_followed_face_corrects_it_without_a_restart():
    """The frames stand still but the detector finds the face 30 px away at its 3rd call: the
    followed face is moved there gradually, counted, and nothing restarts."""
    class MovingFace(FixedFace):
        calls = 0

        def __call__(self, gray, face_box=None):
            self.calls += 1
            return self.points + (0.0 if self.calls < 3 else 30.0)  # moved at the 3rd detection

    spotter = spotting.Spotter(100, spotting.SpotConfig(redetect_s=1.0), MovingFace(),
                               keep_trace=False)
    for i, frame in burst_stream(300, set()):
        spotter.push(i, frame)
    spotter.finish()
    assert spotter.restarts == [] and spotter.warnings == []
    assert [c["frame"] for c in spotter.tracker.corrections] == [200]
    moved = spotter.tracker.landmarks[list(FIVE_POINTS)] - spotter.landmarker.points[list(FIVE_POINTS)]
    assert np.allclose(moved, 30.0, atol=0.5)


def test_a_peak_before_the_warm_up_waits_for_it_instead_of_being_dropped():
    config = spotting.SpotConfig(redetect_s=1000, warmup_s=1.0)
    out = spotting.spot_stream(burst_stream(300, {30}), 100, config, landmarker=FixedFace())
    assert [(i["apex"], i["type"]) for i in out["intervals"]] == [(30, "micro")]
