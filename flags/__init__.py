"""Per-database flagfiles (`<db>.cfg`, `<db>.train.cfg`), installed as the package data
`tscnn_tf.flagfiles` and found with importlib.resources (tscnn_tf.cli.flagfile_dir)."""
