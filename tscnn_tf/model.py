"""The TSCNN now lives in `tscnn_tf.models.tscnn`; this module keeps the old import path."""
from tscnn_tf.models.tscnn import (  # noqa: F401
    STREAM_INPUTS, VARIANTS, apply_conv, apply_stream, build, build_tscnn, input_channels,
    parse_streams)
