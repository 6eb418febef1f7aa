"""The paper's ablations as sweeps of LOSO runs, printed in the form of Tables 7, 8 and 9, and
the comparison of models in the form of Tables 2-6.

    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=streams   # Table 9
    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=blocks    # Table 7
    python -m tscnn_tf.train --db=casme2 --data_dir=... --sweep=lambda    # Table 8
    python -m tscnn_tf.train --db=megc2019 --data_dir=... --sweep=model --sweep_values=tscnn,ststnet

Every point is a full, resumable LOSO run in `<workdir>/sweep/<point>`; a block pattern or λ
other than the base configuration gets its own records in `<workdir>/records-n<n>-lambda<λ>`.
Every point has the same folds, validation subjects, seed and early stopping; only the swept
setting differs.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable

from tscnn_tf.artifacts import atomic_write, write_json_atomic
from tscnn_tf.config import ExperimentConfig, FeatureConfig
from tscnn_tf.loso import train_loso

# (default stream combinations or models, default values of the swept feature parameter)
SWEEPS = {
    "streams": (("S", "L", "T", "L+S", "L+T", "S+T", "L+S+T"), None),   # Table 9
    "blocks": (("L", "L+S", "L+T", "L+S+T"), (2, 3, 4)),               # Table 7
    "lambda": (("L+S+T",), (10, 15, 20, 25, 30)),                      # Table 8
    "model": (None, None),                                             # Tables 2-6
}
MODEL_TABLE = "sweep_model"  # <workdir>/sweep_model.json and .md
# --db -> the database names the registry's reported figures use.
REPORTED_AS = {"casme2": ("CASME II",), "smic": ("SMIC-HS", "SMIC"), "samm": ("SAMM",),
               "casme": ("CASME",), "megc2019": ("composite",)}


def sweep_points(kind: str, base: FeatureConfig, streams=None, values=None):
    """(feature config, streams or model) of each point of the sweep, in table order."""
    if kind not in SWEEPS:
        raise ValueError(f"--sweep must be one of {sorted(SWEEPS)}, got {kind!r}")
    if kind == "model":
        from tscnn_tf import models
        names = list(dict.fromkeys(values or models.names()))
        for name in names:
            models.get(name)  # an unknown model is refused before any point runs
        return [(base, name) for name in names]
    default_streams, default_values = SWEEPS[kind]
    streams = list(streams or default_streams)
    if kind == "streams":
        return [(base, s) for s in streams]
    field = {"blocks": "blocks", "lambda": "apex_lambda"}[kind]
    values = [int(v) for v in (values or default_values)]
    return [(dataclasses.replace(base, **{field: v}), s) for v in values for s in streams]


def records_dir_for(workdir: Path, config: FeatureConfig, base: FeatureConfig,
                    base_dir: Path | None = None) -> Path:
    """The records of a point: `base_dir` (default <workdir>/records) for the base features."""
    if config == base:
        return Path(base_dir or workdir / "records")
    return workdir / f"records-n{config.blocks}-lambda{config.apex_lambda}"


def run_dir_for(workdir: Path, config: FeatureConfig, streams: str) -> Path:
    return workdir / "sweep" / f"n{config.blocks}-lambda{config.apex_lambda}-{streams}"


def point_dir(kind: str, workdir: Path, config: FeatureConfig, value: str) -> Path:
    """The run folder of a point; a model's is `sweep/model-<name>` (a user's builder
    `pkg.mod:fn` gives `model-pkg.mod_fn`)."""
    if kind == "model":
        return workdir / "sweep" / ("model-" + re.sub(r"[^A-Za-z0-9_.-]", "_", value))
    return run_dir_for(workdir, config, value)


def run_sweep(kind: str, workdir, config: ExperimentConfig,
              ensure_records: Callable[[FeatureConfig, Path], dict | None], streams=None,
              values=None, records_dir: Path | None = None,
              check: Callable[..., None] | None = None) -> list[dict]:
    """Run (or resume) every point; `ensure_records(features, records_dir)` makes or checks the
    records of a point (and may return their manifest, which `check(train, manifest, where)`
    then checks for every point before any is trained). Each point is the experiment `config`
    with its feature config and streams (or model) replaced, in its own run folder tied to that
    point's fingerprint.

    Returns one row per point: blocks, apex_lambda, streams, model and the LOSO results (or
    `pending`, the folds other processes sharing the workdir still hold: they split the
    points' folds).
    """
    workdir = Path(workdir)
    points = []
    for features, value in sweep_points(kind, config.features, streams, values):
        records = records_dir_for(workdir, features, config.features, records_dir)
        manifest = ensure_records(features, records)
        train = dataclasses.replace(config.train, **{"model" if kind == "model" else
                                                     "streams": value})
        if check is not None and manifest is not None:
            check(train, manifest, f"the records in {records}")
        points.append((features, value, records, train))
    rows = []
    for features, value, records, train in points:
        point = dataclasses.replace(config, features=features, train=train)
        run = point_dir(kind, workdir, features, value)
        results = train_loso(records, run, train, config.run.folds, features.to_dict(),
                             point.to_dict(), config.run.overwrite)
        # After the results: their `model` is {name, settings, fold_by}, in results.json.
        rows.append({**results, "blocks": features.blocks, "apex_lambda": features.apex_lambda,
                     "streams": train.streams, "model": train.model, "workdir": str(run)})
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


def protocol(config: ExperimentConfig, num_classes: int | None) -> str:
    """This toolkit's protocol of a model sweep, as the papers name theirs."""
    held = "LOSO" if config.train.fold_by == "subject" else "leave one database out"
    return f"{held}, {num_classes} classes" if num_classes else held


def reported_for(name: str, db: str) -> list[dict]:
    """The figures the model's paper reports on this database (none for a user's model, or a
    database no paper reports on)."""
    from tscnn_tf import models
    wanted = REPORTED_AS.get(db, ())
    return [dataclasses.asdict(r) for r in models.get(name).reported if r.database in wanted]


def model_table(rows: list[dict], config: ExperimentConfig) -> dict:
    """The comparison of models (Tables 2-6): per model the measured figures under this
    toolkit's protocol, its run's fingerprint, and what its paper reports with the paper's
    protocol and source."""
    from tscnn_tf import models
    classes = next((r["class_names"] for r in rows if "class_names" in r), None)
    keys = ("accuracy", "f1_macro", "uf1", "uar", "num_samples")
    return {
        "db": config.data.db, "protocol": protocol(config, len(classes) if classes else None),
        "class_names": classes,
        "same_for_every_model": {"folds": list(config.run.folds or ()) or "all",
                                 **{k: getattr(config.train, k) for k in (
                                     "fold_by", "seed", "val_fraction", "epochs", "patience",
                                     "min_delta", "batch_size", "augment", "variant")}},
        "rows": [{"model": r["model"], "citation": models.get(r["model"]).citation,
                  "workdir": r["workdir"], "fingerprint": r.get("fingerprint"),
                  **({"pending": sorted(r["pending"])} if "pending" in r else
                     {"measured": {k: r[k] for k in keys}}),
                  "reported": reported_for(r["model"], config.data.db)} for r in rows]}


def figure(value, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" if percent else f"{value:.4f}"


def reported_text(figures: list[dict], db: str) -> str:
    """'acc 74.05 F1 .7327 UF1 - UAR - (CASME II, LOSO, 5 classes; TSCNN paper, Table 2)'."""
    if not figures:
        return f"none reported on {db}"
    return "; ".join(
        " ".join(f"{label} {figure(f[k], k == 'accuracy')}" for label, k in (
            ("acc", "accuracy"), ("F1", "f1"), ("UF1", "uf1"), ("UAR", "uar")) if f[k] is not None)
        + f" ({f['database']}, {f['protocol']}; {f['source']})" for f in figures)


def format_models(rows: list[dict], config: ExperimentConfig) -> str:
    """The comparison as text: one row per model, measured beside reported."""
    table = model_table(rows, config)
    lines = [f"{table['db']}: models compared under one protocol ({table['protocol']}; the same "
             "folds, validation subjects, seed and early stopping for every model)",
             f"{'Method':<16}{'Protocol':<24}{'Accuracy(%)':>12}{'F1-score':>10}{'UF1':>8}"
             f"{'UAR':>8}{'Samples':>9}  {'Run':<14}Reported (the paper's protocol)"]
    for r in table["rows"]:
        if "pending" in r:
            lines.append(f"{r['model']:<16}{table['protocol']:<24}  {len(r['pending'])} fold(s) "
                         "in training by other processes")
            continue
        m = r["measured"]
        lines.append(f"{r['model']:<16}{table['protocol']:<24}{figure(m['accuracy'], True):>12}"
                     f"{figure(m['f1_macro']):>10}{figure(m['uf1']):>8}{figure(m['uar']):>8}"
                     f"{m['num_samples']:>9}  {r['fingerprint'] or '-':<14}"
                     f"{reported_text(r['reported'], table['db'])}")
    return "\n".join(lines)


def models_markdown(table: dict) -> str:
    """The comparison as a Markdown table (sweep_model.md)."""
    lines = [f"# {table['db']}: models compared under one protocol ({table['protocol']})", "",
             "Same folds, validation subjects, seed and early stopping for every model; the "
             "reported figures are the papers' own, under their protocols.", "",
             "| Method | Protocol | Accuracy (%) | F1-score | UF1 | UAR | Samples | Run | "
             "Reported (paper's protocol) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        m = r.get("measured")
        cells = ([figure(m["accuracy"], True), figure(m["f1_macro"]), figure(m["uf1"]),
                  figure(m["uar"]), str(m["num_samples"])] if m else
                 [f"{len(r['pending'])} fold(s) pending", "", "", "", ""])
        lines.append(f"| {r['model']} | {table['protocol']} | " + " | ".join(cells)
                     + f" | {r['fingerprint'] or '-'} | {reported_text(r['reported'], table['db'])} |")
    return "\n".join(lines) + "\n"


def write_model_table(workdir: Path, rows: list[dict], config: ExperimentConfig) -> dict:
    """<workdir>/sweep_model.json and .md, each written atomically."""
    table = model_table(rows, config)
    write_json_atomic(Path(workdir) / f"{MODEL_TABLE}.json", table)
    with atomic_write(Path(workdir) / f"{MODEL_TABLE}.md") as tmp:
        Path(tmp).write_text(models_markdown(table))
    return table
