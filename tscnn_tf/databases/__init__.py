"""Database readers. Each turns a folder into a `Database` of `Sample`s and drop findings."""
from tscnn_tf.databases.base import Database, Dropped, Sample, frame_number, list_frames
from tscnn_tf.databases.custom import read_custom
from tscnn_tf.databases.synthetic import read_synthetic

READERS = {"custom": read_custom, "synthetic": read_synthetic}


def read_database(db: str, data_dir, **options) -> Database:
    """Read database `db` from `data_dir` with the reader's options (classes, ...)."""
    if db not in READERS:
        raise ValueError(f"unknown database {db!r}; choose from {sorted(READERS)}")
    return READERS[db](data_dir, **options)


__all__ = ["Database", "Dropped", "Sample", "READERS", "frame_number", "list_frames",
           "read_custom", "read_database", "read_synthetic"]
