"""The records format as a contract: a folder of TFRecord shards and the `manifest.json` that
lists every sample in them (docs/records.md). `load` is the one validating loader of a
manifest, used by `train`, `export`, `inspect` and the benchmark; `records.verify` checks the
shards against it, and `records.RecordsWriter` writes records of features made elsewhere.

No TensorFlow here.
"""
from __future__ import annotations

import json
from pathlib import Path

from tscnn_tf.errors import ToolkitError

FORMAT_VERSION = 1  # `format` in a manifest; manifests made before it was written are format 1
MANIFEST = "manifest.json"
# Keys every manifest holds, and the optional ones (absent: derived from the samples).
REQUIRED_KEYS = ("db", "class_names", "params", "samples", "data_fingerprint")
OPTIONAL_KEYS = ("format", "shards", "shard_samples", "fields", "lbptop", "data_dir", "config",
                 "flagfiles", "fps", "skipped", "per_class", "per_subject", "num_samples",
                 "num_subjects", "params_fingerprint", "apex_spotting", "faces", "versions",
                 "created", "made_by", "dropped", "dropped_per_reason")
# Keys every sample entry holds, and the optional ones with the value they read as when absent
# (-1: not known; `clip` defaults to the sample id).
ENTRY_REQUIRED = ("sample_id", "subject", "label", "label_name", "shard")
ENTRY_DEFAULTS = {"clip": None, "onset": -1, "offset": -1, "apex_given": -1,
                  "apex_spotted": -1, "apex_used": -1, "warnings": []}
REMEDY = "copy the records folder again or re-run the feature stage"


class RecordsError(ToolkitError):
    """Records that cannot be used as they are (damaged, incomplete, not of this format)."""


def shard_path(records_dir, shard, error=RecordsError) -> Path:
    """The file of `shard` in `records_dir`; a name that leads out of the folder (`..`, an
    absolute path, a link elsewhere) is refused: a manifest never makes a command read
    anything outside its records folder."""
    folder = Path(records_dir)
    if not isinstance(shard, str) or not shard or "/" in shard or "\\" in shard or shard in (
            ".", ".."):
        raise error(f"{folder / MANIFEST}: the shard name {shard!r} is not a file name in the "
                    "records folder; refusing to read it")
    path = folder / shard
    if path.exists() and not path.resolve().is_relative_to(folder.resolve()):
        raise error(f"{folder / MANIFEST}: the shard {shard} resolves outside the records "
                    f"folder ({path.resolve()}); refusing to read it")
    return path


def shards_of(manifest: dict) -> list[str]:
    """The shard names of a manifest: its `shards` and those its samples name (a sample's
    shard "" says it is in one of `shards`, as the Beam pipeline writes it)."""
    return sorted(set(manifest.get("shards") or ()) | {e["shard"] for e in manifest["samples"]
                                                       if e["shard"] != ""})


def validate(manifest, where: str, error=RecordsError) -> dict:
    """`manifest` checked against the contract, with the optional sample keys filled in (a copy);
    anything else is `error` naming `where` and what is wrong."""
    if not isinstance(manifest, dict):
        raise error(f"{where} is damaged or not a records manifest: a JSON "
                    f"{type(manifest).__name__}, not an object; {REMEDY}")
    if missing := [k for k in REQUIRED_KEYS if k not in manifest]:
        raise error(f"{where} is damaged or not a records manifest: no {', '.join(missing)}; "
                    f"{REMEDY}")
    version = manifest.get("format", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise error(f"{where} is of records format {version!r}; this version reads format "
                    f"{FORMAT_VERSION} and earlier: upgrade tscnn-tf, or re-run the feature stage")
    names, params, samples = manifest["class_names"], manifest["params"], manifest["samples"]
    if not (isinstance(names, list) and names and all(isinstance(c, str) for c in names)):
        raise error(f"{where}: class_names must be a non-empty list of names, got {names!r}")
    if not isinstance(params, dict) or params.get("blocks") not in (2, 3, 4):
        raise error(f"{where}: params must hold blocks (the n of the n x n block stack: 2, 3 "
                    f"or 4), got {params!r}")
    if not isinstance(samples, list) or not all(isinstance(e, dict) for e in samples):
        raise error(f"{where}: samples must be a list of objects")
    entries, seen = [], set()
    for entry in samples:
        if lost := [k for k in ENTRY_REQUIRED if k not in entry]:
            raise error(f"{where}: the sample {entry.get('sample_id', '?')} has no "
                        f"{', '.join(lost)} (each sample needs {', '.join(ENTRY_REQUIRED)})")
        label = entry["label"]
        if not isinstance(label, int) or not 0 <= label < len(names) \
                or names[label] != entry["label_name"]:
            raise error(f"{where}: the sample {entry['sample_id']} has label {label!r} "
                        f"({entry['label_name']!r}), not one of class_names {names}")
        if entry["shard"] == "" and not manifest.get("shards"):
            raise error(f"{where}: the sample {entry['sample_id']} names no shard, and the "
                        "manifest lists no shards")
        if entry["sample_id"] in seen:
            raise error(f"{where}: the sample {entry['sample_id']} is listed twice")
        seen.add(entry["sample_id"])
        filled = {**ENTRY_DEFAULTS, **entry}
        filled["clip"] = entry.get("clip") or str(entry["sample_id"])
        filled["warnings"] = list(entry.get("warnings") or [])
        entries.append(filled)
    counts = manifest.get("shard_samples")
    if counts is not None and all(e["shard"] for e in entries):
        listed: dict[str, int] = {}
        for e in entries:
            listed[e["shard"]] = listed.get(e["shard"], 0) + 1
        if not isinstance(counts, dict) or {k: v for k, v in counts.items() if v} != listed:
            raise error(f"{where}: shard_samples {counts} does not count the samples listed per "
                        f"shard {listed}; {REMEDY}")
    return {**manifest, "samples": entries}


def load(records_dir, error=RecordsError, require_shards: bool = True) -> dict:
    """The validated manifest of the records in `records_dir` (`validate`); every shard name
    must stay inside the folder and, with `require_shards`, each shard must be there."""
    folder = Path(records_dir)
    path = folder / MANIFEST
    if not path.is_file():
        raise error(f"no {MANIFEST} in {folder}: not a records folder, or the feature stage has "
                    "not finished (python -m pipelines.extract_features)")
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise error(f"{path} is damaged ({type(e).__name__}: {e}); {REMEDY}") from None
    manifest = validate(manifest, str(path), error)
    shards = shards_of(manifest)
    paths = [shard_path(folder, s, error) for s in shards]
    if require_shards and (absent := [s for s, p in zip(shards, paths) if not p.is_file()]):
        raise error(f"{folder}: {len(absent)} of the {len(shards)} record shard(s) its manifest "
                    f"lists are missing (e.g. {absent[0]}); copy the whole records folder")
    return manifest
