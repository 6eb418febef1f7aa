"""Pretrain the static-spatial (S) stream on FER2013 (Section III.B), for a warm start.

    python -m tscnn_tf.pretrain_fer2013 --csv=fer2013.csv
    python -m tscnn_tf.train --db=casme2 --data_dir=... --pretrained_s=runs/fer2013/s_stream.keras

The S stream of Table 1 is trained with a 7-way softmax on the `Training` rows, stopped early
on `PublicTest` and scored once on `PrivateTest`. `train --pretrained_s` copies the weights of
every `S_*` layer into the TSCNN; the other streams start from random weights, as in the paper.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

from tscnn_tf.models.tscnn import load_s_stream  # noqa: F401  (its old import path)

log = logging.getLogger("tscnn_tf")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Settings of the FER2013 pretraining (the paper gives none; these are ours)."""

    variant: str = "full"
    epochs: int = 60
    patience: int = 8
    batch_size: int = 128
    learning_rate: float = 1e-2
    momentum: float = 0.9
    dropout: float = 0.5
    seed: int = 0


def build_s_classifier(num_classes: int, variant: str = "full", dropout: float = 0.5):
    """The S stream of Table 1 with its own softmax; layer names match the TSCNN's."""
    import keras
    from tscnn_tf import model as model_lib
    from tscnn_tf.features import INPUT_SIZE
    spec = model_lib.VARIANTS[variant]
    gray = keras.Input((INPUT_SIZE, INPUT_SIZE, 1), name="apex_gray")
    x = model_lib.apply_stream(gray, spec["filters"], spec["fc"], dropout, "S")
    out = keras.layers.Dense(num_classes, activation="softmax", name="fer_output")(x)
    return keras.Model(gray, out, name="fer2013_S")


def fer_dataset(images, labels, batch_size: int, training: bool, seed: int = 0):
    """Scaled to [0, 1] as the records' apex_gray; training batches are shuffled and flipped."""
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensor_slices((images[..., None], labels))
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    # Small enough to keep in memory; later epochs skip the conversion.
    ds = ds.cache()
    if training:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        # A mirrored face shows the same expression.
        ds = ds.map(lambda x, y: (tf.image.random_flip_left_right(x, seed=seed), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pretrain_s_stream(csv_path, output, config: PretrainConfig = PretrainConfig()) -> dict:
    """Train the S stream on FER2013 and save the best (by PublicTest loss) as `output`.

    Returns the figures also written beside it as `<output>.json`.
    """
    import keras
    from tscnn_tf.databases.fer2013 import FER_CLASSES, read_fer2013
    from tscnn_tf.artifacts import check_writable_dir, save_model_atomic, write_json_atomic
    from tscnn_tf.config import TrainConfig
    from tscnn_tf.optimizer import make_optimizer

    output = Path(output)  # checked before the data is read and hours are spent training
    if output.is_dir() or output.suffix != ".keras":
        raise ValueError(f"--output={output}: give a file name ending in .keras")
    check_writable_dir(output.parent)
    data = read_fer2013(csv_path)
    train_x, train_y = data.split("Training")
    val_x, val_y = data.split("PublicTest")
    test_x, test_y = data.split("PrivateTest")
    if len(train_y) == 0 or len(val_y) == 0:
        raise ValueError(f"{csv_path}: need Training and PublicTest rows, found "
                         f"{len(train_y)} and {len(val_y)}")
    keras.utils.set_random_seed(config.seed)
    model = build_s_classifier(len(FER_CLASSES), config.variant, config.dropout)
    model.compile(make_optimizer(TrainConfig(learning_rate=config.learning_rate,
                                             momentum=config.momentum)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    history = model.fit(fer_dataset(train_x, train_y, config.batch_size, True, config.seed),
                        validation_data=fer_dataset(val_x, val_y, config.batch_size, False),
                        epochs=config.epochs, callbacks=[stop], verbose=2,
                        shuffle=False)  # the dataset shuffles itself
    save_model_atomic(model, output)
    report = {"train_samples": int(len(train_y)), "val_samples": int(len(val_y)),
              "skipped_rows": len(data.dropped), "epochs": len(history.history["loss"]),
              "val_accuracy": float(max(history.history["val_accuracy"])),
              "config": dataclasses.asdict(config)}
    if len(test_y):
        _, acc = model.evaluate(fer_dataset(test_x, test_y, config.batch_size, False), verbose=0)
        report.update(test_samples=int(len(test_y)), private_test_accuracy=float(acc))
    write_json_atomic(Path(str(output) + ".json"), report)
    return report


def main(argv):
    del argv
    from absl import flags
    FLAGS = flags.FLAGS
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = PretrainConfig(variant=FLAGS.variant, epochs=FLAGS.epochs, patience=FLAGS.patience,
                            batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                            seed=FLAGS.seed)
    try:
        report = pretrain_s_stream(FLAGS.csv, FLAGS.output, config)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(report, indent=1))
    print(f"S stream: {FLAGS.output}   use it with: python -m tscnn_tf.train "
          f"--pretrained_s={FLAGS.output} ...")


def define_flags():
    from absl import flags
    flags.DEFINE_string("csv", None, "fer2013.csv or icml_face_data.csv.", required=True)
    flags.DEFINE_string("output", "runs/fer2013/s_stream.keras", "The pretrained model file.")
    flags.DEFINE_enum("variant", "full", ["full", "tiny"], "Model size; must match training.")
    flags.DEFINE_integer("epochs", PretrainConfig.epochs, "Maximum epochs.")
    flags.DEFINE_integer("patience", PretrainConfig.patience, "Early stopping on PublicTest loss.")
    flags.DEFINE_integer("batch_size", PretrainConfig.batch_size, "Batch size.")
    flags.DEFINE_float("learning_rate", PretrainConfig.learning_rate, "Nesterov SGD rate.")
    flags.DEFINE_integer("seed", 0, "Random seed.")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
