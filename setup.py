"""tscnn-tf: three-stream CNN (Song et al., IEEE Access 2019) for micro-expression recognition."""
from setuptools import find_packages, setup

setup(
    name="tscnn-tf",
    version="0.3.0",
    description="TensorFlow/Keras toolkit for facial micro-expression recognition with the "
                "three-stream CNN (TSCNN) of Song et al., IEEE Access 2019.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    author="The tscnn-tf maintainers",
    keywords="micro-expression recognition spotting TSCNN tensorflow keras tflite",
    project_urls={
        # The paper the toolkit implements; the toolkit's own documentation ships in the
        # sdist (README.md, docs/, CHANGELOG.md, CITATION.cff).
        "Paper": "https://doi.org/10.1109/ACCESS.2019.2960629",
    },
    classifiers=[
        "Development Status :: 4 - Beta",
        "Intended Audience :: Science/Research",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
    python_requires=">=3.11",
    packages=find_packages(include=["tscnn_tf", "tscnn_tf.*", "pipelines", "pipelines.*"])
    + ["tscnn_tf.flagfiles"],
    # The top-level flags/ folder is installed as the package data tscnn_tf.flagfiles, so the
    # per-database flagfiles are found after a non-editable install, from any folder.
    package_dir={"tscnn_tf.flagfiles": "flags"},
    package_data={"tscnn_tf.flagfiles": ["*.cfg"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",          # ships Keras 3
        "tensorboard>=2.21,<2.22",         # no longer pulled in by TF 2.21; the callback needs it
        # The contrib server build: cv2.optflow (DualTVL1) and the Haar cascades. OpenCV 5 wheels
        # dropped them, and a second OpenCV package beside this one would shadow it.
        "opencv-contrib-python-headless>=4.8,<5",
        "scikit-image>=0.22",              # uniform LBP, reference TV-L1, the astronaut face
        "scikit-learn>=1.3",
        "numpy>=1.26",
        "absl-py>=2.0",
        "dlib-bin>=19.24",                 # prebuilt dlib: HOG face detector + ERT landmarks
        "face-recognition-models>=0.3",    # ships the 68-point ERT predictor (no download)
        "pandas>=2.0",
        "python-calamine>=0.2",            # .xls and .xlsx annotation sheets (pandas' engine)
        "tqdm>=4.66",
        "ai-edge-litert>=1.2",             # the TFLite interpreter (tf.lite.Interpreter is deprecated)
    ],
    extras_require={
        # openpyxl and xlwt write the xlsx and xls fixtures of the release formats.
        # apache-beam: the test that the Beam feature stage writes the local path's records.
        # pytest-xdist: the suite runs on 2 processes, one test file each at a time.
        "test": ["pytest>=8", "pytest-xdist>=3.5", "openpyxl>=3.1", "xlwt>=1.3",
                 "apache-beam[tfrecord]>=2.55"],
        # The feature stage on Apache Beam (pipelines/beam_extract.py).
        "beam": ["apache-beam[tfrecord]>=2.55"],
        # Optional landmark backend; fetches its weights from the internet on first use.
        "face-alignment": ["face-alignment>=1.4"],
    },
)
