"""The paper's ablations as sweeps of LOSO runs, printed in the form of Tables 7, 8 and 9.

    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=streams   # Table 9
    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=blocks    # Table 7
    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=lambda    # Table 8

Every point is a full, resumable LOSO run in `<workdir>/sweep/<point>`; a block pattern or λ
other than the base configuration gets its own records in `<workdir>/records-n<n>-lambda<λ>`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from tscnn_tf.config import ExperimentConfig, FeatureConfig
from tscnn_tf.loso import train_loso

# (default stream combinations, default values of the swept feature parameter)
SWEEPS = {
    "streams": (("S", "L", "T", "L+S", "L+T", "S+T", "L+S+T"), None),   # Table 9
    "blocks": (("L", "L+S", "L+T", "L+S+T"), (2, 3, 4)),               # Table 7
    "lambda": (("L+S+T",), (10, 15, 20, 25, 30)),                      # Table 8
}


def sweep_points(kind: str, base: FeatureConfig, streams=None, values=None):
    """(feature config, streams) of each point of the sweep, in table order."""
    if kind not in SWEEPS:
        raise ValueError(f"--sweep must be one of {sorted(SWEEPS)}, got {kind!r}")
    default_streams, default_values = SWEEPS[kind]
    streams = list(streams or default_streams)
    if kind == "streams":
        return [(base, s) for s in streams]
    field = {"blocks": "blocks", "lambda": "apex_lambda"}[kind]
    values = [int(v) for v in (values or default_values)]
    return [(dataclasses.replace(base, **{field: v}), s) for v in values for s in streams]


def records_dir_for(workdir: Path, config: FeatureConfig, base: FeatureConfig) -> Path:
    if config == base:
        return workdir / "records"
    return workdir / f"records-n{config.blocks}-lambda{config.apex_lambda}"


def run_dir_for(workdir: Path, config: FeatureConfig, streams: str) -> Path:
    return workdir / "sweep" / f"n{config.blocks}-lambda{config.apex_lambda}-{streams}"


def run_sweep(kind: str, workdir, config: ExperimentConfig,
              ensure_records: Callable[[FeatureConfig, Path], None], streams=None,
              values=None) -> list[dict]:
    """Run (or resume) every point; `ensure_records(features, records_dir)` makes or checks the
    records of a point. Each point is the experiment `config` with its feature config and
    streams replaced, in its own run folder tied to that point's fingerprint.

    Returns one row per point: blocks, apex_lambda, streams and the LOSO results (or `pending`,
    the folds other processes sharing the workdir still hold: they split the points' folds).
    """
    workdir = Path(workdir)
    rows = []
    for features, point_streams in sweep_points(kind, config.features, streams, values):
        records = records_dir_for(workdir, features, config.features)
        ensure_records(features, records)
        point = dataclasses.replace(config, features=features,
                                    train=dataclasses.replace(config.train, streams=point_streams))
        run = run_dir_for(workdir, features, point_streams)
        results = train_loso(records, run, point.train, config.run.folds, features.to_dict(),
                             point.to_dict(), config.run.overwrite)
        rows.append({"blocks": features.blocks, "apex_lambda": features.apex_lambda,
                     "streams": point_streams, "workdir": str(run), **results})
    return rows


def format_table(rows: list[dict], title: str) -> str:
    """The rows as the paper prints Tables 7-9, with UF1 and UAR added."""
    lines = [title, f"{'Block pattern':<14}{'λ':>4}  {'Net structure':<14}{'Protocol':<10}"
                    f"{'Accuracy(%)':>12}{'F1-score':>10}{'UF1':>8}{'UAR':>8}{'Samples':>9}"]
    for r in rows:
        if "pending" in r:
            lines.append(f"{r['blocks']}x{r['blocks']:<12}{r['apex_lambda']:>4}  "
                         f"{r['streams']:<14}{'LOSO':<10}  {len(r['pending'])} fold(s) in "
                         "training by other processes")
            continue
        lines.append(f"{r['blocks']}x{r['blocks']:<12}{r['apex_lambda']:>4}  {r['streams']:<14}"
                     f"{'LOSO':<10}{100 * r['accuracy']:>12.2f}{r['f1_macro']:>10.4f}"
                     f"{r['uf1']:>8.4f}{r['uar']:>8.4f}{r['num_samples']:>9}")
    return "\n".join(lines)
