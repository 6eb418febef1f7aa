"""What every written artifact shares: it is finished or absent (atomic writes), and it records
the package versions that made it. No TensorFlow import here."""
from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import sys
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tscnn_tf.errors import ToolkitError

PACKAGES = ("tscnn-tf", "tensorflow", "keras", "numpy", "opencv-contrib-python-headless",
            "scikit-image", "dlib-bin", "face-recognition-models", "ai-edge-litert")


def package_versions() -> dict[str, str | None]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


PARTIAL_PREFIX = "partial-"  # the temporary name of every artifact being written


def partial_path(path) -> Path:
    """The temporary name of `path` while it is written (it keeps its suffix: Keras needs it)."""
    path = Path(path)
    return path.with_name(PARTIAL_PREFIX + path.name)


def is_partial(path) -> bool:
    return Path(path).name.startswith(PARTIAL_PREFIX)


@contextlib.contextmanager
def atomic_write(path):
    """Yield the temporary path to write `path` under; it becomes `path` only when the block
    ends without an error, so readers see a finished artifact or none. Folders work too."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = partial_path(path)
    remove(tmp)
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        remove(tmp)


def remove(path) -> None:
    """Delete a file or a folder tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def disk_full(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, says the disk (or the quota) is full:
    an OSError ENOSPC / EDQUOT, or TensorFlow's or Keras' error of a failed write saying so."""
    import errno
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(getattr(error, "message", "") or error)
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return True
        error = error.__cause__ or error.__context__
    return False


def free_space(folder) -> int | None:
    """Bytes free to this user on the filesystem of `folder` (or its nearest existing parent)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def megabytes(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:.1f} MB"


def folder_size(path) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def sha256_of(path) -> str:
    """SHA-256 of a file, or of a folder's files (their relative paths and contents, sorted)."""
    import hashlib
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def swap_folder(new, path) -> None:
    """Put the finished folder `new` at `path`, replacing what is there: the old folder is
    renamed aside first and removed only once `new` is in place, so `path` holds the old
    folder or the new one, whole (a rename is atomic), never a mix."""
    new, path = Path(new), Path(path)
    old = path.with_name(f"{PARTIAL_PREFIX}old-{path.name}")
    remove(old)
    if path.exists():
        os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.replace(old, path)  # the old one back
        raise
    remove(old)


def write_json_atomic(path, data) -> None:
    """Write JSON under a temporary name, then rename: readers never see half a file."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def save_model_atomic(model, path) -> None:
    """model.save() under a temporary name, then rename."""
    with atomic_write(path) as tmp:
        model.save(tmp)


def copy_atomic(source, path) -> None:
    with atomic_write(path) as tmp:
        shutil.copyfile(source, tmp)


_made_by_checks: list[Path] = []  # the folders check_writable_dir made, shallowest first


def check_writable_dir(folder, flag: str | None = None) -> Path:
    """Create `folder` if needed and prove it can be written, before any long work starts.
    The folders it makes are remembered, so a command refused afterwards removes them again
    while still empty (`remove_empty_checked_dirs`). `flag` (e.g. "--records_dir") is named in
    the error."""
    folder = Path(folder)
    named = f"{flag} {folder}" if flag else str(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{named} is a file, not a folder")
    try:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        _made_by_checks.extend(reversed(missing))
        probe = folder / f"{PARTIAL_PREFIX}write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"cannot write in {named}: {e.strerror or e}") from None
    return folder


def remove_empty_checked_dirs() -> list[Path]:
    """Remove, deepest first, the folders `check_writable_dir` made in this process that are
    still empty (a refused command leaves no empty --workdir behind); returns those removed.
    A folder that holds anything is kept."""
    removed = []
    while _made_by_checks:
        folder = _made_by_checks.pop()
        try:
            folder.rmdir()
            removed.append(folder)
        except OSError:
            pass
    return removed


SIGNATURE = "serving_default"  # the serving signature of every SavedModel and TFLite export


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what a --visualize picture can be written as


class OutputError(ToolkitError):
    """An output location that could not be written, found before any work."""


def check_output_file(path, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any frame is read, an output that could not be written: a folder, a name
    without one of `suffixes`, a folder that does not exist or cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag}={path} is a folder: give a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise OutputError(f"{flag}={path}: the name must end in {', '.join(suffixes)}")
    if not path.parent.is_dir():
        raise OutputError(f"{flag}={path}: the folder {path.parent} does not exist")
    try:
        check_writable_dir(path.parent)
    except OSError as e:
        raise OutputError(f"{flag}={path}: {e}") from None
    return path


class ArtifactError(ToolkitError):
    """An exported model that cannot be used as it is (missing, unreadable, mismatched)."""


REEXPORT = "copy the export again, or write it anew with `python -m tscnn_tf.export`"


def read_metadata(path: Path) -> dict:
    """An export's metadata.json; a damaged one is an ArtifactError naming it."""
    try:
        metadata = json.loads(path.read_bytes())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ArtifactError(f"{path} is damaged or truncated (not valid JSON: {e}); {REEXPORT}") \
            from None
    if not isinstance(metadata, dict):
        raise ArtifactError(f"{path} is damaged: it holds a JSON {type(metadata).__name__}, "
                            f"not the metadata object; {REEXPORT}")
    return metadata


def load_keras_file(path: Path):
    """The Keras model of a `.keras` file, without its optimizer. A truncated or damaged archive
    (every member's checksum is read first) is an ArtifactError naming it: Keras says
    "File not found" for a truncated file that is there, and loads some damaged ones."""
    import keras
    path = Path(path)
    remedy = ("copy it again, or write it anew (`tscnn_tf.train` writes best.keras, "
              "`tscnn_tf.export` model.keras)")
    if path.suffix == ".keras" and path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, EOFError):
            raise ArtifactError(f"{path} is damaged or truncated (not a complete .keras zip "
                                f"archive); {remedy}") from None
        except zlib.error:
            bad = "a member"
        if bad:
            raise ArtifactError(f"{path} is damaged ({bad} inside it fails its checksum); "
                                f"{remedy}")
    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as e:  # TypeError: a class Keras cannot locate
        raise ArtifactError(f"unreadable Keras model {path}: {e}") from e


def saved_model_fault(saved: Path, error: Exception) -> str:
    """What tf.saved_model.load's `error` says is wrong with the SavedModel `saved`."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, IndexError):  # "Read less bytes than requested"
        data = ", ".join(str(p) for p in sorted((saved / "variables").glob("variables.data-*")))
        return f"{data or saved / 'variables'} is truncated ({text})"
    if "sstable" in text:
        return f"{saved / 'variables' / 'variables.index'} is damaged or truncated ({text})"
    if "Cannot parse" in text:
        return f"{saved / 'saved_model.pb'} is damaged or truncated"
    return f"the SavedModel {saved} is damaged or incomplete ({text})"


def find_metadata(model_path: Path) -> dict:
    """metadata.json of the export folder `model_path`, or beside a model file inside one."""
    folders = [model_path] if model_path.is_dir() else [model_path.parent, model_path.parent.parent]
    for folder in folders:
        if (folder / "metadata.json").is_file():
            return read_metadata(folder / "metadata.json")
    raise ArtifactError(
        f"missing {folders[0] / 'metadata.json'}: a model needs the metadata.json of its export "
        "folder (class names and feature parameters). Copy it beside the model file, or pass the "
        "export folder itself; `python -m tscnn_tf.export` writes both.")


# The record fields predict and spot make for a new clip: `features.clip_features`'s four,
# and `lbptop` (`features.lbptop_field`) when the model reads it.
CLIP_FIELDS = ("apex_gray", "blocks", "flow", "flow_raw", "lbptop")


def clip_fields() -> tuple[str, ...]:
    """The fields predict and spot can feed a model from a new clip."""
    return CLIP_FIELDS


BUILT_IN_NAMES = ("offapexnet", "ststnet", "htnet", "lbptop_svm")  # Keras name = registry name


def name_matches(keras_name: str, model: str | None) -> bool:
    """Whether a Keras model named `keras_name` can be the registry model `model` (the TSCNN
    is named `tscnn_<streams>`; a user's builder names its model freely)."""
    if model == "tscnn":
        return keras_name.startswith("tscnn")
    if model in BUILT_IN_NAMES:
        return keras_name == model
    return True


class ExportedModel:
    """Any exported artifact (export folder / SavedModel, `.tflite`, `.keras`) behind one call,
    with its metadata: the one loader of predict, export's parity check and the benchmark.

    `predict(inputs)` takes a batch {input name: array} and returns the probabilities;
    calling the model on one sample's features checks their shapes against the inputs first.
    """

    def __init__(self, path, metadata: dict | None = None, num_threads: int | None = None):
        path = Path(path)
        if not path.exists():
            raise ArtifactError(f"no model at {path}")
        self.path = path
        self.metadata = find_metadata(path) if metadata is None else metadata
        self.class_names = self.metadata.get("class_names")
        if path.is_dir():
            self._load_saved_model(path / "saved_model" if (path / "saved_model").is_dir()
                                   else path)
        elif path.suffix == ".tflite":
            self._load_tflite(path, num_threads)
        elif path.suffix == ".keras":
            self._load_keras(path)
        else:
            raise ArtifactError(f"{path}: expected an export folder, a .keras or a .tflite file")
        if self.class_names is not None and self.num_outputs != len(self.class_names):
            raise ArtifactError(
                f"{path} has {self.num_outputs} outputs but its metadata.json names "
                f"{len(self.class_names)} classes {self.class_names}: the model and the metadata "
                "come from different exports")
        self.check_metadata()

    def check_metadata(self) -> None:
        """Refuse a model that is not the one its metadata.json describes: other inputs (or
        input shapes), another model name, or, for an export that recorded them, other bytes
        than the file's SHA-256 (`exporting` records it for every artifact)."""
        meta, path = self.metadata, self.path
        mixed = f"the model and the metadata.json come from different exports; {REEXPORT}"
        inputs = meta.get("inputs")
        if isinstance(inputs, dict) and inputs:
            if set(inputs) != set(self.input_shapes):
                raise ArtifactError(f"{path} reads {', '.join(sorted(self.input_shapes))}, but "
                                    "its metadata.json describes a model reading "
                                    f"{', '.join(sorted(inputs))}: {mixed}")
            for name, spec in inputs.items():
                shape = spec.get("shape") if isinstance(spec, dict) else None
                if shape is not None and list(shape) != list(self.input_shapes[name]):
                    raise ArtifactError(f"{path} takes {name} of shape "
                                        f"{tuple(self.input_shapes[name])}, its metadata.json "
                                        f"{tuple(shape)}: {mixed}")
        if self.kind == "keras":
            wanted = meta.get("model_name")
            if wanted and self.model_name != wanted or not wanted and not name_matches(
                    self.model_name, meta.get("model")):
                raise ArtifactError(f"{path} is the model {self.model_name!r}, its metadata.json "
                                    f"describes {wanted or meta.get('model')!r}: {mixed}")
        hashes = meta.get("sha256")
        if isinstance(hashes, dict) and hashes:
            artifact = path.parent if path.name == "saved_model" else path
            key = {"keras": "model.keras", "saved_model": "saved_model"}.get(self.kind, path.name)
            recorded = ([hashes[key]] if key in hashes else
                        [v for k, v in hashes.items() if k.endswith(".tflite")]
                        if self.kind == "tflite" else [])
            target = artifact / "saved_model" if self.kind == "saved_model" and \
                (artifact / "saved_model").is_dir() else artifact
            if recorded and sha256_of(target) not in recorded:
                raise ArtifactError(f"{target} is not the file its metadata.json describes (its "
                                    "SHA-256 differs from the one recorded at export): it was "
                                    f"changed since, or {mixed}")

    def _load_saved_model(self, saved: Path) -> None:
        if not (saved / "saved_model.pb").is_file():
            raise ArtifactError(f"{saved} holds no SavedModel")
        import tensorflow as tf
        try:
            fn = tf.saved_model.load(str(saved)).signatures[SIGNATURE]
        except (OSError, IndexError, tf.errors.OpError) as e:
            raise ArtifactError(f"{saved_model_fault(saved, e)}; {REEXPORT}") from None
        self.kind = "saved_model"
        self.input_shapes = {k: tuple(v.shape[1:]) for k, v in
                             fn.structured_input_signature[1].items()}
        self.num_outputs = int(fn.structured_outputs["probabilities"].shape[-1])
        self._fn = fn
        self._run = lambda x: fn(**{k: tf.constant(v, tf.float32) for k, v in x.items()})[
            "probabilities"].numpy()

    def _load_tflite(self, path: Path, num_threads: int | None) -> None:
        from ai_edge_litert.interpreter import Interpreter
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        except ValueError as e:
            raise ArtifactError(f"unreadable TFLite file {path}: {e}") from e
        runner = interpreter.get_signature_runner(SIGNATURE)
        self.kind = "tflite"
        self.input_shapes = {k: tuple(v["shape"][1:]) for k, v in
                             runner.get_input_details().items()}
        self.num_outputs = int(runner.get_output_details()["probabilities"]["shape"][-1])

        def run(x):  # one sample at a time, inputs by name (TFLite reorders them)
            count = len(next(iter(x.values())))
            return np.concatenate([runner(**{k: v[i:i + 1] for k, v in x.items()})[
                "probabilities"] for i in range(count)])
        self._run = run

    def _load_keras(self, path: Path) -> None:
        model = load_keras_file(path)
        self.kind = "keras"
        self.model_name = model.name
        self.input_shapes = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
        self.num_outputs = int(model.outputs[0].shape[-1])
        self._run = lambda x: np.asarray(model(x, training=False))

    def predict(self, inputs: dict) -> np.ndarray:
        """Probabilities of a batch {input name: (N, ...) array}."""
        return np.asarray(self._run({k: np.asarray(inputs[k], np.float32)
                                     for k in self.input_shapes}))

    def require(self, fields, source: str) -> None:
        """Refuse, before any work, a model reading a field `source` (e.g. "the clip path of
        predict and spot") cannot make."""
        if missing := [f for f in self.input_shapes if f not in set(fields)]:
            raise ArtifactError(f"{self.path} reads {', '.join(missing)}, which {source} does "
                                f"not make (it makes {', '.join(fields)})")

    def check(self, features: dict) -> None:
        """Refuse features whose shapes differ from the model's inputs (e.g. another n)."""
        if missing := [f for f in self.input_shapes if f not in features]:
            raise ArtifactError(f"{self.path} reads {', '.join(missing)}, which the features "
                                "of this clip do not hold")
        for name, shape in self.input_shapes.items():
            have = tuple(np.shape(features[name]))
            if have != tuple(shape):
                raise ArtifactError(f"the model takes {name} of shape {tuple(shape)}, the "
                                    f"features made with its metadata "
                                    f"({self.metadata.get('params')}) have {have}: the metadata "
                                    "does not match the model")

    def __call__(self, features: dict) -> np.ndarray:
        """The probabilities of one sample's features."""
        self.check(features)
        return self.predict({k: np.asarray(features[k])[None] for k in self.input_shapes})[0]
