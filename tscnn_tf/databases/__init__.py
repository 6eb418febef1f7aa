"""Database readers. Each turns a folder into a `Database` of `Sample`s and drop findings."""
import inspect
from pathlib import Path

from tscnn_tf.databases.base import Database, Dropped, Sample, frame_number, list_frames
from tscnn_tf.databases.casme import read_casme
from tscnn_tf.databases.casme2 import read_casme2
from tscnn_tf.databases.casme3 import read_casme3, read_casme3_c
from tscnn_tf.databases.casme_sq import read_casme_sq
from tscnn_tf.databases.custom import read_custom
from tscnn_tf.databases.fourdme import read_fourdme
from tscnn_tf.databases.megc2019 import read_megc2019
from tscnn_tf.databases.mmew import read_mmew
from tscnn_tf.databases.samm import read_samm
from tscnn_tf.databases.smic import read_smic
from tscnn_tf.databases.synthetic import read_synthetic

READERS = {"custom": read_custom, "synthetic": read_synthetic, "casme2": read_casme2,
           "smic": read_smic, "samm": read_samm, "casme_sq": read_casme_sq, "casme": read_casme,
           "megc2019": read_megc2019, "casme3": read_casme3, "casme3_c": read_casme3_c,
           "mmew": read_mmew, "fourdme": read_fourdme}


def check_name(db: str) -> None:
    """Refuse a database name no reader has (a typo), naming the closest one."""
    if db not in READERS:
        import difflib
        close = difflib.get_close_matches(db, READERS, n=1)
        raise ValueError(f"unknown database {db!r}" + (f" (did you mean {close[0]!r}?)"
                                                       if close else "")
                         + f"; choose from {sorted(READERS)}")


def read_database(db: str, data_dir, fps: float | None = None, **options) -> Database:
    """Read database `db` from `data_dir` with the reader's options (classes, image_set, ...)."""
    check_name(db)
    if db != "synthetic" and not Path(data_dir).is_dir():  # synthetic: generated when absent
        raise FileNotFoundError(f"data_dir does not exist: {data_dir}")
    if "follow_symlinks" not in inspect.signature(READERS[db]).parameters:
        if options.pop("follow_symlinks", False):
            raise ValueError(f"{db}: --follow_symlinks is not supported for this database")
    database = READERS[db](data_dir, **options)
    database.fps = fps
    ids = [s.sample_id for s in database.samples]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"{db}: {len(repeated)} sample id(s) name more than one sample "
                         f"(e.g. {repeated[0]}); a record would be attached to the wrong label")
    return database


__all__ = ["Database", "Dropped", "Sample", "READERS", "frame_number", "list_frames",
           "read_casme", "read_casme2", "read_casme_sq", "read_custom", "read_database",
           "read_megc2019", "read_samm", "read_smic", "read_synthetic"]
