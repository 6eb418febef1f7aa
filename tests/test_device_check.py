"""The GPU check in its quick form (CPU, tiny sizes): every part runs and reports its figures;
no timing is asserted."""
import json

import numpy as np

from tscnn_tf import data, device_check, models


def test_the_quick_device_check_reports_every_part():
    report = device_check.run(quick=True, model_names=("tscnn", "lbptop_svm"))
    assert report["device"]["on"] in ("cpu", "gpu") and "tensorflow" in report["device"]
    assert set(report["models"]) == {"tscnn", "lbptop_svm"} and not report["skipped"]
    for entry in report["models"].values():
        assert entry["samples_per_s_float32"] > 0 and entry["samples_per_s_mixed_float16"] > 0
        assert 0 <= entry["parity"]["max_abs_diff"] < 0.05       # same weights, float16 compute
        assert entry["parity"]["samples"] == device_check.QUICK["batch"]
    loso = report["loso"]
    assert (loso["subjects"], loso["folds_done"], loso["extrapolated"]) == (3, 1, True)
    assert loso["full_loso_wall_s"] == loso["s_per_fold"] * 3
    workers = report["workers"]
    assert workers["workers"] == 2 and workers["folds_finished_by_workers"] == 2
    assert workers["one_worker_wall_s"] > 0 and workers["workers_wall_s"] > 0
    json.dumps(report)                                   # device_check.json can hold it
    text = device_check.format_report(report)
    assert "tscnn" in text and "fold workers" in text and "LOSO" in text


def test_a_spent_budget_skips_every_part_and_says_so():
    report = device_check.run(quick=True, budget_s=0)
    assert report["models"] == {} and "loso" not in report and "workers" not in report
    assert len(report["skipped"]) == len(models.names()) + 2
    assert all("budget" in s for s in report["skipped"])
    assert "skipped" in device_check.format_report(report)


def test_the_paper_sized_records_have_casme_iis_shape(tmp_path):
    records = device_check.write_records(tmp_path, device_check.CASME2_SUBJECTS,
                                         device_check.CASME2_CLASSES)
    manifest = data.load_manifest(records)
    assert len(manifest["samples"]) == 247 == sum(device_check.CASME2_CLASSES.values())
    assert len({e["subject"] for e in manifest["samples"]}) == 26
    counts = {c: sum(e["label_name"] == c for e in manifest["samples"])
              for c in manifest["class_names"]}
    assert counts == device_check.CASME2_CLASSES
    assert "lbptop" in manifest["fields"]             # every model of the registry can read it
    batch = next(iter(data.make_dataset(data.record_files(records), 3, ("lbptop", "flow_raw"),
                                        batch_size=5)))
    assert np.asarray(batch[0]["lbptop"]).shape[0] == 5
