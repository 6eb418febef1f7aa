"""The synthetic database: format, classes, determinism."""
import csv
import hashlib

from tscnn_tf.databases import read_database, synthetic


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path, tiny_synthetic):
    again = synthetic.generate(tmp_path / "again", seed=1, num_subjects=2, clips_per_class=1)
    assert digest(again) == digest(tiny_synthetic)
    other = synthetic.generate(tmp_path / "other", seed=2, num_subjects=1, clips_per_class=1)
    assert digest(other) != digest(tiny_synthetic)


def test_regeneration_is_skipped_when_finished(tiny_synthetic):
    before = (tiny_synthetic / "annotations.csv").stat().st_mtime_ns
    synthetic.generate(tiny_synthetic, seed=1, num_subjects=2, clips_per_class=1)
    assert (tiny_synthetic / "annotations.csv").stat().st_mtime_ns == before


def test_custom_format_with_true_apex(tiny_synthetic):
    rows = list(csv.DictReader(open(tiny_synthetic / "annotations.csv")))
    assert len(rows) == 6 and {r["label"] for r in rows} == set(synthetic.CLASS_NAMES)
    for r in rows:
        onset, apex, offset = int(r["onset"]), int(r["apex"]), int(r["offset"])
        assert onset < apex < offset
        frames = sorted(p.name for p in (tiny_synthetic / r["subject"] / r["clip"]).iterdir())
        assert len(frames) == offset - onset + 1
    database = read_database("synthetic", tiny_synthetic, seed=1, num_subjects=2, clips_per_class=1)
    assert database.class_names == synthetic.CLASS_NAMES and not database.dropped
    assert all(s.apex is not None for s in database.samples)


def test_movements_are_micro_sized():
    import numpy as np
    rng = np.random.default_rng(0)
    subject = synthetic.Subject(rng)
    for label in synthetic.CLASS_NAMES:
        centers, vectors = synthetic.movement(label, subject.points)
        field = synthetic.displacement_field(centers, vectors, sigma=15)
        magnitude = np.linalg.norm(field, axis=-1)
        assert 0.5 < magnitude.max() <= 1.0  # unit field, scaled by 0.75-3 px per clip
    profile = synthetic.intensity_profile(20, 8)
    assert profile[0] == 0 and profile[8] == 1 and profile[-1] < 1e-9 and profile.argmax() == 8
