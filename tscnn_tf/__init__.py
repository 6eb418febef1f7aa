"""tscnn-tf: the three-stream CNN of Song et al. (IEEE Access 2019) for micro-expression recognition.

Importing the package is light (no TensorFlow): the offline feature stage runs in worker
processes that never need TensorFlow.
"""
__version__ = "0.1.0"
