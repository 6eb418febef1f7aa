"""Who owns a fold: the run fingerprint in each fold's files (an `--overwrite` by another process
while this one trains) and the claim checked at every epoch end (a claim taken over while this
process was paused past the stale limit)."""
import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from tscnn_tf import claims, cli, loso

TINY = loso.TrainConfig(variant="tiny", epochs=1, patience=5, batch_size=16, learning_rate=0.01)
OTHER = dataclasses.replace(TINY, seed=1)  # the settings of the process that overwrites
CLAIM_RUN_DIR = loso.claim_run_dir  # as it is, also while a test wraps it


def identity(records: Path, config: loso.TrainConfig) -> dict:
    return loso.run_identity(json.loads((records / "manifest.json").read_text()), config)


def overwrite_with_other_settings(workdir: Path, records: Path) -> str:
    """What `train --overwrite` with other settings does to the workdir; its fingerprint."""
    return CLAIM_RUN_DIR(workdir, identity(records, OTHER), None, True,
                         loso.LOSO_FILES)["fingerprint"]


def take_over(claim_path: Path) -> None:
    """Another process takes the claim over (as `claims.try_claim` does with a stale one)."""
    claim_path.write_text(json.dumps({"host": "other-node", "pid": 1, "token": "theirs"}))


def on_epoch_end_first(monkeypatch, before) -> list[int]:
    """Call `before(fold_dir, epoch)` at each epoch end ahead of the checkpoint callback's own
    work; returns the epochs seen."""
    real, seen = loso.make_checkpoint_callback, []

    def wrapped(fold_dir, patience, state, *args):
        callback = real(fold_dir, patience, state, *args)
        original = callback.on_epoch_end

        def on_epoch_end(epoch, logs=None):
            seen.append(epoch)
            before(Path(fold_dir), epoch)
            original(epoch, logs)
        callback.on_epoch_end = on_epoch_end
        return callback
    monkeypatch.setattr(loso, "make_checkpoint_callback", wrapped)
    return seen


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith("partial-")]


@pytest.fixture(scope="module")
def trained(records_3_subjects, tmp_path_factory):
    """A workdir whose fold sub02 has finished (1 epoch of the tiny model)."""
    workdir = tmp_path_factory.mktemp("trained") / "run"
    loso.train_loso(records_3_subjects, workdir, TINY, folds=["sub02"])
    return workdir


def copy_of(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def rewrite_predictions(path: Path, **values) -> None:
    rows = loso.read_predictions(path)
    loso.write_predictions(path, [{**row, **values} for row in rows])


# --overwrite by another process ------------------------------------------------------------

def test_a_process_whose_run_was_replaced_trains_no_further_fold(records_3_subjects, tmp_path,
                                                                 monkeypatch):
    """Process A owns the run, then B replaces it (`--overwrite`, other settings) before A's
    next fold: A used to train that fold with its settings into B's run, and aggregate it under
    B's fingerprint."""
    real, replaced = loso.claim_run_dir, []

    def then_replaced(*args, **kwargs):
        record = real(*args, **kwargs)
        replaced.append(overwrite_with_other_settings(tmp_path, records_3_subjects))
        return record
    monkeypatch.setattr(loso, "claim_run_dir", then_replaced)
    with pytest.raises(loso.TrainingError, match="fold sub02: .* now holds run") as error:
        loso.train_loso(records_3_subjects, tmp_path, TINY, folds=["sub02"])
    assert f"now holds run {replaced[0]}, not run " in str(error.value)
    assert not (tmp_path / "folds" / "sub02").exists() and not (tmp_path / "results.json").exists()
    assert loso.run_fingerprint(tmp_path) == replaced[0]
    assert not claims.beside(tmp_path / "folds" / "sub02").exists()  # released


def test_an_overwrite_during_training_stops_the_old_process_at_the_next_epoch(
        records_3_subjects, tmp_path, monkeypatch):
    """B replaces the run while A trains a fold and starts the same fold itself: A stops at its
    next epoch end and writes nothing into B's fold (it used to write its checkpoints there)."""
    def replaced_at_epoch_end(fold_dir, epoch):
        if epoch == 0:
            overwrite_with_other_settings(tmp_path, records_3_subjects)
            fold_dir.mkdir(parents=True)
            take_over(claims.beside(fold_dir))  # B's claim, B's fold folder
    seen = on_epoch_end_first(monkeypatch, replaced_at_epoch_end)
    with pytest.raises(loso.TrainingError, match="fold sub02: .* now holds run") as error:
        loso.train_loso(records_3_subjects, tmp_path, dataclasses.replace(TINY, epochs=2),
                        folds=["sub02"])
    assert seen == [0] and "--overwrite by another process" in str(error.value)
    assert list((tmp_path / "folds" / "sub02").iterdir()) == []
    assert claims.read_claim(claims.beside(tmp_path / "folds" / "sub02"))["token"] == "theirs"


def test_a_fold_holding_another_runs_predictions_is_retrained_never_aggregated(
        trained, records_3_subjects, tmp_path, caplog):
    """Predictions left in the fold by a process of other settings (after an overwrite) are
    neither resumed nor pooled: the fold is retrained, with a warning, under this run."""
    workdir = copy_of(trained, tmp_path)
    fold = workdir / "folds" / "sub02"
    own = loso.run_fingerprint(workdir)
    rewrite_predictions(fold / "predictions.csv", fingerprint="0ther")
    assert not loso.fold_finished(fold, own) and loso.fold_finished(fold)
    assert loso.current_results(workdir, own) is None
    with pytest.raises(loso.TrainingError, match="no finished fold"):
        loso.aggregate(workdir, ["a", "b", "c"])
    assert "1 fold(s) hold predictions of another run" in caplog.text
    results = loso.train_loso(records_3_subjects, workdir, TINY, folds=["sub02"])
    assert "fold sub02 holds files of another run (0ther)" in caplog.text
    assert "1 fold(s) held files of another run and were retrained: sub02" in caplog.text
    assert list(results["per_fold"]) == ["sub02"] and results["fingerprint"] == own
    assert loso.fold_fingerprints(fold) == {own}
    with open(workdir / "predictions.csv", newline="") as f:
        assert "fingerprint" not in next(csv.DictReader(f))  # the pooled file keeps its columns


def test_the_fingerprint_is_recorded_in_each_folds_files(trained):
    fold, own = trained / "folds" / "sub02", loso.run_fingerprint(trained)
    assert own and json.loads((fold / "split.json").read_text())["fingerprint"] == own
    assert json.loads((fold / "state.json").read_text())["fingerprint"] == own
    assert {row["fingerprint"] for row in loso.read_predictions(fold / "predictions.csv")} == {own}


def test_folds_written_before_fingerprints_resume_and_aggregate_as_before(
        trained, records_3_subjects, tmp_path, monkeypatch, caplog):
    workdir = copy_of(trained, tmp_path)
    fold = workdir / "folds" / "sub02"
    for name in ("split.json", "state.json"):
        record = json.loads((fold / name).read_text())
        record.pop("fingerprint", None)
        (fold / name).write_text(json.dumps(record))
    rows = loso.read_predictions(fold / "predictions.csv")
    loso.write_predictions(fold / "predictions.csv",
                           [{k: v for k, v in r.items() if k != "fingerprint"} for r in rows])
    old_results = json.loads((workdir / "results.json").read_text())
    assert loso.fold_fingerprints(fold) == set()

    def no_training(*args, **kwargs):
        raise AssertionError("an old finished fold was retrained")
    monkeypatch.setattr(loso, "train_fold", no_training)
    assert loso.train_loso(records_3_subjects, workdir, TINY, folds=["sub02"]) == old_results
    (workdir / "results.json").unlink()
    results = loso.train_loso(records_3_subjects, workdir, TINY, folds=["sub02"])
    assert list(results["per_fold"]) == ["sub02"] and results["accuracy"] == old_results["accuracy"]
    assert "another run" not in caplog.text


# A claim taken over while this process trains ------------------------------------------------

def test_a_lost_claim_stops_training_at_the_next_epoch_end(records_3_subjects, tmp_path,
                                                           monkeypatch):
    """A process paused past the stale limit lost its fold after epoch 1: it stops at the end
    of epoch 2 without touching the new holder's checkpoints (it used to train on to the last
    epoch, overwriting them each epoch)."""
    kept = {}

    def taken_over_after_epoch_1(fold_dir, epoch):
        if epoch == 1:
            take_over(claims.beside(fold_dir))
            kept.update({n: (fold_dir / n).read_bytes()
                         for n in ("last.keras", "best.keras", "state.json")})
    seen = on_epoch_end_first(monkeypatch, taken_over_after_epoch_1)
    with pytest.raises(loso.TrainingError,
                       match="fold sub02: sub02.claim was taken over by other-node:1"):
        loso.train_loso(records_3_subjects, tmp_path, dataclasses.replace(TINY, epochs=4),
                        folds=["sub02"])
    fold = tmp_path / "folds" / "sub02"
    assert seen == [0, 1]  # stopped at once
    assert {n: (fold / n).read_bytes() for n in kept} == kept
    assert json.loads((fold / "state.json").read_text())["epoch"] == 1
    assert not (fold / "predictions.csv").exists() and no_partial_files(tmp_path)
    assert claims.read_claim(claims.beside(fold))["token"] == "theirs"  # left to the new holder


def test_a_lost_final_model_claim_stops_before_any_checkpoint_or_export(records_3_subjects,
                                                                        tmp_path, monkeypatch):
    seen = on_epoch_end_first(monkeypatch, lambda run_dir, epoch: take_over(claims.beside(run_dir)))
    with pytest.raises(loso.TrainingError, match="the final model: final.claim was taken over"):
        loso.train_final(records_3_subjects, tmp_path / "final",
                         dataclasses.replace(TINY, epochs=3))
    assert seen == [0]
    assert not [p.name for p in (tmp_path / "final").iterdir()
                if p.name in ("last.keras", "best.keras", "state.json")]


def test_a_lost_fold_is_one_error_line_and_a_non_zero_exit(capsys):
    def main(argv):
        raise loso.OwnershipLost("fold sub02: sub02.claim was taken over by other-node:1 ...")
    with pytest.raises(SystemExit) as exit_:
        cli.reporting_errors(main)([])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and err.splitlines() == [
        "error: fold sub02: sub02.claim was taken over by other-node:1 ..."]


def test_taken_by_reads_the_token_and_writes_nothing(tmp_path):
    path = tmp_path / "fold.claim"
    with claims.try_claim(path) as claim:
        before = path.stat().st_mtime_ns
        os.utime(path, ns=(before - 10**9, before - 10**9))
        assert claim.taken_by() is None and path.stat().st_mtime_ns == before - 10**9
        take_over(path)
        assert claim.taken_by() == "other-node:1" and not claim.held()
        path.unlink()
        assert claim.taken_by() == "an unknown process"
