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
from pathlib import Path

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


def check_writable_dir(folder) -> Path:
    """Create `folder` if needed and prove it can be written, before any long work starts."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f"{PARTIAL_PREFIX}write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"cannot write in {folder}: {e.strerror or e}") from None
    return folder
