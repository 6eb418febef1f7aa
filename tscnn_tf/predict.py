"""Predict the micro-expression of a new clip with an exported or trained model.

    python -m tscnn_tf.predict --model=saved_models/synthetic --video=clip.mp4
    python -m tscnn_tf.predict --model=saved_models/synthetic/model_int8.tflite --frames=DIR --json
    python -m tscnn_tf.predict --model=... --frames=DIR --onset=12 --offset=40 \
        --visualize=apex.png --dump_features=features.npz

The clip goes through the feature stage's own code (face, landmarks, alignment, apex spotting,
flow, the three inputs), with the parameters in the model's metadata.json.
"""
from __future__ import annotations

import json
import sys

import numpy as np

# The library's names, as before the entry was split from it (a contract for users' imports).
from tscnn_tf.predicting import *  # noqa: F401,F403
from tscnn_tf.predicting import (Model, check_model_inputs, clip_sample, format_result,  # noqa: F401
                                 load_model, predict_clip)

def main(argv):
    del argv
    from absl import flags
    from tscnn_tf.artifacts import IMAGE_SUFFIXES, atomic_write, check_output_file
    FLAGS = flags.FLAGS
    if FLAGS.visualize:  # every output before the first frame is read
        check_output_file(FLAGS.visualize, "--visualize", IMAGE_SUFFIXES)
    if FLAGS.dump_features:
        check_output_file(FLAGS.dump_features, "--dump_features", (".npz",))
    sample = clip_sample(FLAGS.video, FLAGS.frames, FLAGS.onset, FLAGS.offset)  # before the model
    out = predict_clip(check_model_inputs(load_model(FLAGS.model)), sample)
    result, features = out["result"], out["features"]
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if FLAGS.dump_features:
        names = dict.fromkeys(("apex_gray", "blocks", "flow", *out["inputs"]))
        with atomic_write(FLAGS.dump_features) as tmp:  # partial-<name>.npz, then renamed
            np.savez(tmp, **{k: np.asarray(features[k], np.float32)[None] for k in names})
    if FLAGS.visualize:
        from tscnn_tf import plots
        title = (f"{result['label']} ({result['probabilities'][result['label']]:.2f})  "
                 f"onset {result['onset']} apex {result['apex']} offset {result['offset']}")
        geometry = features["geometry"]
        plots.write_png(FLAGS.visualize, plots.apex_and_flow_image(
            features["apex_face"], geometry.to_crop(geometry.landmarks), features["flow_raw"],
            title))
    print(json.dumps(result) if FLAGS.json else format_result(result))


def define_flags():
    from absl import flags
    flags.DEFINE_string("model", None, "Export folder (SavedModel), .keras or .tflite file.",
                        required=True)
    flags.DEFINE_string("video", None, "A video file (.mp4, .avi, ...).")
    flags.DEFINE_string("frames", None, "A folder of frames, ordered by the integer in their names.")
    flags.DEFINE_integer("onset", None, "Onset frame (default: the first).")
    flags.DEFINE_integer("offset", None, "Offset frame (default: the last).")
    flags.DEFINE_bool("json", False, "Print one JSON object: label, probabilities, onset, apex, "
                      "offset, warnings.")
    flags.DEFINE_string("visualize", None, "Write the apex face, landmarks, grid and flow to this PNG.")
    flags.DEFINE_string("dump_features", None, "Write the TSCNN's three inputs and the model's "
                        "own (batch of 1) to this .npz.")


if __name__ == "__main__":
    from tscnn_tf import cli
    define_flags()
    cli.run(main, db_flagfiles=False)
