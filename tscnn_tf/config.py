"""The experiment definition: one frozen config, the single source of every default.

    ExperimentConfig(data=DataConfig, features=FeatureConfig, train=TrainConfig,
                     export=ExportConfig, run=RunConfig)

Each field's default and help text live here only; the command-line flags are made from these
fields (`cli.define_config_flags`), the per-database flagfiles are layered on top, and explicit
flags win. `identity()` is what a result depends on (everything but `run`, which only says how
and where to run); its `fingerprint()` keys every derived artifact and is written into each.
No TensorFlow here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math

from tscnn_tf.face import EDGE_DETECT_WIDTH, GRID
from tscnn_tf.flow import EDGE_FLOW, FLOW_METHODS, FLOW_NORMS, FLOW_SETTINGS

APEX_SOURCES = ("spotted", "given")


def option(default, help: str, choices=None, kind: str | None = None, bounds=None):
    """A config field with its flag's help text (and choices, or a kind when the default is
    None: 'string', 'integer', 'float', 'list'); `bounds` (low, high, inclusive-high) is the
    range of a number, checked when the config is made (`check_bounds`)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices,
                                                        "kind": kind, "bounds": bounds})


# Ranges of numbers: (low, low included, high or None, high included).
AT_LEAST_1 = (1, True, None, False)
NOT_NEGATIVE = (0, True, None, False)
POSITIVE = (0, False, None, False)
FRACTION = (0, True, 1, False)  # 0 <= x < 1


def check_bounds(section) -> None:
    """Refuse, naming the flag, a number of `section` outside its field's `bounds`, or not
    finite: every number of the config is checked when the config is made, before any work."""
    for field in dataclasses.fields(section):
        bounds = field.metadata.get("bounds")
        value = getattr(section, field.name)
        if bounds is None or value is None:
            continue
        low, low_in, high, high_in = bounds
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"--{field.name}={value}: not a number") from None
        ok = math.isfinite(number) and (number >= low if low_in else number > low) and (
            high is None or (number <= high if high_in else number < high))
        if not ok:
            want = (f"at least {low:g}" if low_in else f"greater than {low:g}") + (
                "" if high is None else f" and {'at most' if high_in else 'below'} {high:g}")
            want += " (and finite)" if high is None and isinstance(value, float) else ""
            raise ValueError(f"--{field.name}={value}: must be {want}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The database and its reader's options."""

    db: str = option("synthetic", "Database: synthetic, custom, casme2, smic, samm, casme_sq, "
                     "casme, megc2019, casme3, casme3_c, mmew or fourdme (loads flags/<db>.cfg "
                     "first).")
    data_dir: str | None = option(None, "Database folder (synthetic: rendered into "
                                  "<workdir or output_dir>/synthetic_db when absent). Training "
                                  "needs none when --records_dir holds records: it then reads "
                                  "only them.", kind="string")
    classes: tuple[str, ...] | None = option(None, "Class names to keep, in label order "
                                             "(default: the database's, or every label).",
                                             kind="list")
    image_set: str = option("auto", "Raw or cropped frames of the release (auto: raw when "
                            "present).", choices=("auto", "raw", "cropped"))
    expression_type: str = option("all", "CAS(ME)²: macro + micro expressions (all) or micro "
                                  "only.", choices=("all", "micro"))
    fps: float | None = option(None, "Frame rate of the clips (recorded in the summary).",
                               kind="float", bounds=POSITIVE)
    follow_symlinks: bool = option(False, "Read sheets, folders and frame files that resolve "
                                   "outside --data_dir (symlinks to another disk). By default "
                                   "they are neither opened nor listed, and each is counted.")
    protocol: str = option("7", "CAS(ME)³ class protocol: 7 emotions, 4 (negative, positive, "
                           "surprise, others) or 3 (without others).", choices=("3", "4", "7"))
    synthetic_seed: int = option(0, "Seed of the synthetic database.", bounds=NOT_NEGATIVE)
    synthetic_subjects: int = option(8, "Subjects of the synthetic database.",
                                     bounds=AT_LEAST_1)
    synthetic_clips_per_class: int = option(3, "Clips per class and subject (synthetic).",
                                            bounds=AT_LEAST_1)

    def __post_init__(self):
        check_bounds(self)

    def reader_options(self) -> dict:
        """The keyword arguments of `databases.read_database` for this database."""
        options = {"classes": list(self.classes) if self.classes is not None else None,
                   "fps": self.fps}
        if self.db in ("casme2", "smic", "casme_sq", "megc2019"):
            options["image_set"] = self.image_set
        if self.db == "casme_sq":
            options["expression_type"] = self.expression_type
        if self.db in ("casme3", "casme3_c"):
            options["protocol"] = self.protocol
        if self.db != "synthetic":
            options["follow_symlinks"] = self.follow_symlinks
        if self.db == "synthetic":
            options.update(seed=self.synthetic_seed, num_subjects=self.synthetic_subjects,
                           clips_per_class=self.synthetic_clips_per_class)
        return options


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """Every parameter the records depend on. `apex_source`: spotted = TSCNN-I, given = TSCNN-II."""

    blocks: int = option(3, "n of the n x n block stack of the local-spatial stream (2, 3, 4).")
    apex_lambda: int = option(25, "λ of eq. 3: how many of the 36 block distances count.")
    flow: str = option("tvl1", "Optical-flow setting: tvl1 (OpenCV TV-L1, the paper's), or "
                       f"{EDGE_FLOW} ({FLOW_SETTINGS[EDGE_FLOW].summary}) for edge devices: "
                       "~100x faster, cosine ~0.9 to tvl1 on the 48-px grid (bench's flow "
                       "table measures every setting).",
                       choices=FLOW_METHODS)
    # channel stays the default: every figure in the README and every record made so far used
    # it, and the paper's "normalise the optical flow matrix" does not say which.
    flow_norm: str = option("channel", "Eq. 5 min-max: per channel (channel) or over u and v "
                            "of each flow field (field, keeps the u:v ratio).",
                            choices=FLOW_NORMS)
    face_size: int = option(144, "Side in pixels of the aligned face crop (6x6 grid).",
                            bounds=(48, True, None, False))
    apex_source: str = option("spotted", "Apex feeding the features: spotted (TSCNN-I) or given "
                              "(TSCNN-II).", choices=APEX_SOURCES)
    landmarks: str = option("dlib", "Landmark backend.", choices=("dlib", "face_alignment"))
    face_box: str = option("auto", "Face box of the landmark predictor: detect (HOG detector, "
                           "then with a replicated border), frame (the frame is the face), or "
                           "auto (detect, then the frame box for frames shaped like a face "
                           "crop). A frame box is used only where dlib's CNN detector confirms "
                           "the face; faces under 80 px are refused. Recorded per sample.",
                           choices=("auto", "detect", "frame"))
    per_frame_landmarks: bool = option(False, "Detect landmarks on every frame instead of once "
                                       "on the onset frame.")
    detect_width: int = option(0, "Width in pixels at which the face detector (dlib) runs: "
                               "wider frames are scaled down to it for the detection only, "
                               "the 68 landmarks are fitted on the full frame; never scaled "
                               f"up. 0: the frame's own width (the paper's). {EDGE_DETECT_WIDTH} "
                               "for edge devices (4x fewer pixels at 640; faces under about "
                               "40 x frame width / detect_width px are not found).",
                               bounds=NOT_NEGATIVE)

    def __post_init__(self):
        if self.blocks not in (2, 3, 4):
            raise ValueError(f"blocks must be 2, 3 or 4, got {self.blocks}")
        if not 1 <= self.apex_lambda <= GRID ** 2:
            raise ValueError(f"apex_lambda must be in 1..36, got {self.apex_lambda}")
        if self.flow not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {self.flow!r}; choose from {FLOW_METHODS}")
        if self.apex_source not in APEX_SOURCES:
            raise ValueError(f"apex_source must be one of {APEX_SOURCES}")
        if self.face_size < 48:
            raise ValueError("face_size must be at least 48")
        if self.detect_width and self.detect_width < MIN_DETECT_WIDTH:
            raise ValueError(f"detect_width must be 0 (the frame's own) or at least "
                             f"{MIN_DETECT_WIDTH}, got {self.detect_width}")
        if self.detect_width and self.landmarks != "dlib":
            raise ValueError(f"detect_width is a setting of the dlib landmarks; "
                             f"--landmarks={self.landmarks} finds its faces itself")
        check_bounds(self)

    def to_dict(self) -> dict:
        """The parameters; those added later (FEATURE_ADDED) only where they differ from their
        default, so records and models made before them keep their fingerprint."""
        out = dataclasses.asdict(self)
        for name, default in FEATURE_ADDED.items():
            if out[name] in (default, None):
                del out[name]
        return out

    def fingerprint(self) -> str:
        """Short hash of the parameters, stored with every record."""
        return fingerprint(self.to_dict())


# Feature fields added after records were made: left out of to_dict() at their default, and
# absent from an older manifest's parameters without making it "older".
FEATURE_ADDED = {"detect_width": 0}
MIN_DETECT_WIDTH = 80  # the HOG window's side: narrower, a face must nearly fill the frame


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are the paper's (Section II.C, III.B)."""

    streams: str = option("L+S+T", "Streams: any '+' combination of S, L, T.")
    variant: str = option("full", "Model size: Table 1 (full), or tiny (tests).",
                          choices=("full", "tiny"))
    epochs: int = option(500, "Maximum epochs per fold.", bounds=AT_LEAST_1)
    patience: int = option(20, "Early-stopping patience on validation loss.",
                           bounds=NOT_NEGATIVE)
    min_delta: float = option(1e-3, "Smallest fall of the validation loss that counts as an "
                              "improvement (the paper's 'generally stable').",
                              bounds=NOT_NEGATIVE)
    batch_size: int = option(32, "Batch size.", bounds=AT_LEAST_1)
    learning_rate: float = option(1e-3, "Base learning rate.", bounds=POSITIVE)
    momentum: float = option(0.9, "Nesterov momentum.", bounds=FRACTION)
    decay: float = option(1e-5, "The paper's 'attenuation of the weight parameters'.",
                          bounds=NOT_NEGATIVE)
    decay_mode: str = option("lr", "lr: lr/(1+decay*step) as Keras' classic SGD(decay=...); "
                             "weight: weight decay.", choices=("lr", "weight"))
    dropout: float = option(0.5, "Dropout on the fully connected layers.", bounds=FRACTION)
    val_fraction: float = option(0.2, "Share of training subjects held out for early stopping "
                                 "(at least one subject).", bounds=FRACTION)
    augment: bool = option(True, "The x10 flip/rotation expansion of Section III.B.")
    seed: int = option(0, "Training seed (weights, shuffling, validation subjects).",
                       bounds=NOT_NEGATIVE)
    pretrained_s: str | None = option(None, "S-stream weights from tscnn_tf.pretrain_fer2013 "
                                      "(Section III.B).", kind="string")
    mixed_precision: bool = option(False, "float16 compute (for GPUs; softmax in float32).")
    model: str = option("tscnn", "Model: tscnn, offapexnet, ststnet, htnet, lbptop_svm, or "
                        "package.module:function (a Keras model builder of your own).")
    model_settings: tuple[str, ...] | None = option(None, "Settings of the model as k=v,k=v "
                                                    "(e.g. dropout=0.3 for htnet); each model "
                                                    "keeps its own default for the rest.",
                                                    kind="list")
    fold_by: str = option("subject", "Leave one subject out, or one database out (the "
                          "composite: the subject prefix casme2_, smic_, samm_).",
                          choices=("subject", "database"))
    task: str = option("recognition", "recognition: a clip model on --db's clips; spotting: "
                       "the learned spotter on a long-video database (synthetic_long, "
                       "casme_sq, samm_lv, casme3), leave-one-subject-out, exported for "
                       "`spot --spotter` (docs/spotting.md).",
                       choices=("recognition", "spotting"))

    def __post_init__(self):
        model_settings(self)  # a malformed k=v is refused when the config is made
        check_bounds(self)

    def identity(self) -> dict:
        """The fingerprinted train settings: the model fields only where they differ from the
        default, so runs made before models could be chosen keep their fingerprint."""
        out = dataclasses.asdict(self)
        for name in MODEL_FIELDS:
            if out[name] == TRAIN_DEFAULTS[name]:
                del out[name]
        return out


MODEL_FIELDS = ("model", "model_settings", "fold_by", "task")
TRAIN_DEFAULTS = {"model": "tscnn", "model_settings": None, "fold_by": "subject",
                  "task": "recognition"}


def model_settings(train: TrainConfig) -> dict:
    """`--model_settings=k=v,k=v` -> {k: v}, each value read as a number or boolean where it
    is one (ValueError on an entry without '=')."""
    out = {}
    for item in train.model_settings or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model_settings: {item!r} is not key=value")
        out[key.strip()] = parse_value(value.strip())
    return out


def parse_value(text: str):
    """'3' -> 3, '0.5' -> 0.5, 'true' -> True, anything else the string itself."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """What happens after LOSO: the all-subject model and its deployment artifacts."""

    final_model: bool = option(True, "After LOSO, train on all subjects and export it.")
    export_dir: str | None = option(None, "Where the final model goes (default "
                                    "saved_models/<db>).", kind="string")
    parity_samples: int = option(128, "Most samples for int8 calibration and for parity.",
                                 bounds=AT_LEAST_1)

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How and where to run; none of it changes a result, so none of it is fingerprinted."""

    folds: tuple[str, ...] | None = option(None, "Test subjects (ids or 0-based indices) to run; "
                                           "default all.", kind="list")
    num_workers: int | None = option(None, "Feature-stage processes (default: all cores).",
                                     kind="integer", bounds=AT_LEAST_1)
    loso_workers: int = option(1, "Training processes sharing the LOSO's folds (and the final "
                               "model), each with cores/N TensorFlow threads: on 2 cores, 2 "
                               "trained STSTNet's and OFF-ApexNet's composite LOSO 1.6-1.7x "
                               "faster (docs/speed.md).", bounds=AT_LEAST_1)
    threads: int | None = option(None, "TensorFlow threads per training process (default: all "
                                 "cores, shared among --loso_workers). A thread count can "
                                 "change weights in the last bits, as another machine can.",
                                 kind="integer", bounds=AT_LEAST_1)
    sweep: str | None = option(None, "Print Table 9 (streams), 7 (blocks) or 8 (lambda), or a "
                               "comparison of models in the form of Tables 2-6 (model), instead "
                               "of one run.", choices=("streams", "blocks", "lambda", "model"))
    sweep_streams: tuple[str, ...] | None = option(None, "Stream combinations of the sweep "
                                                   "(default: the table's).", kind="list")
    sweep_values: tuple[str, ...] | None = option(None, "n (blocks) or λ (lambda) values, or "
                                                  "the models (model: tscnn,ststnet,...; "
                                                  "default all registered) of the sweep.",
                                                  kind="list")
    records_dir: str | None = option(None, "Records (default <workdir>/records). Records there "
                                     "without --data_dir: trained from alone, with database, "
                                     "classes and feature parameters from their manifest.json.",
                                     kind="string")
    overwrite: bool = option(False, "Replace records, folds, final model and results made with "
                             "other settings, instead of refusing.")
    flagfiles: tuple[str, ...] = ()  # the flagfiles that were applied, for the record
    # The fields the user set (command line or own flagfile, not a database's flagfile): when
    # training from records alone, these must agree with the records' manifest.
    given: tuple[str, ...] = ()

    def __post_init__(self):
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class SpottingConfig:
    """The learned spotter (`train --task=spotting`): its features, model and training, and the
    synthetic long videos it trains on without a database. --epochs, --patience, --batch_size
    and --learning_rate override the spot_ ones when given."""

    spot_rate: float = option(20.0, "Samples a second the learned spotter reads the face at "
                              "(any input at least this fast is resampled to it).",
                              bounds=POSITIVE)
    spot_micro_s: float = option(0.1, "The micro time scale of its motion features, seconds.",
                                 bounds=POSITIVE)
    spot_macro_s: float = option(0.5, "The macro time scale of its motion features, seconds.",
                                 bounds=POSITIVE)
    spot_epochs: int = option(60, "Most epochs a spotting fold trains.", bounds=AT_LEAST_1)
    spot_patience: int = option(8, "Epochs without a better validation loss before a spotting "
                                "fold stops.", bounds=AT_LEAST_1)
    spot_batch_size: int = option(16, "Windows a batch (spotting).", bounds=AT_LEAST_1)
    spot_learning_rate: float = option(2e-3, "Adam's learning rate (spotting).",
                                       bounds=POSITIVE)
    spot_window_s: float = option(12.0, "Length of the training windows, seconds.",
                                  bounds=POSITIVE)
    spot_width: int = option(32, "Channels of the temporal model.", bounds=AT_LEAST_1)
    spot_dropout: float = option(0.1, "Dropout in its residual blocks.", bounds=FRACTION)
    synthetic_long_subjects: int = option(12, "synthetic_long: subjects (one video each).",
                                          bounds=AT_LEAST_1)
    synthetic_long_seconds: float = option(40.0, "synthetic_long: seconds a video.",
                                           bounds=POSITIVE)
    synthetic_long_fps: float = option(50.0, "synthetic_long: frames a second.",
                                       bounds=POSITIVE)
    synthetic_long_style: str = option("realistic", "synthetic_long: realistic (talking, head "
                                       "turns, hands, lighting drift, compression) or plain "
                                       "(the first renderer).", choices=("realistic", "plain"))

    def __post_init__(self):
        check_bounds(self)
        if self.spot_macro_s <= self.spot_micro_s:
            raise ValueError(f"--spot_macro_s={self.spot_macro_s:g} must be longer than "
                             f"--spot_micro_s={self.spot_micro_s:g}")


SECTIONS = {"data": DataConfig, "features": FeatureConfig, "train": TrainConfig,
            "export": ExportConfig, "run": RunConfig, "spotting": SpottingConfig}


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: what to read, how to extract, train and export, and how to run."""

    data: DataConfig = DataConfig()
    features: FeatureConfig = FeatureConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()
    run: RunConfig = RunConfig()
    spotting: SpottingConfig = SpottingConfig()

    def identity(self) -> dict:
        """Everything a result depends on (all sections but `run`; `data_dir` is where the data
        is, not what it is: the database's content fingerprint stands for the data)."""
        # Where the data is, and whether part of it lies behind symlinks, is not what it is.
        data = {k: v for k, v in dataclasses.asdict(self.data).items()
                if k not in ("data_dir", "follow_symlinks")}
        return as_json({"data": data, "features": self.features.to_dict(),
                        "train": self.train.identity(),
                        "export": dataclasses.asdict(self.export)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def effective(self, features: FeatureConfig | None = None) -> dict:
        """What a dry-run summary and a records manifest record of the experiment: the
        effective data and feature settings (classes, fps, λ, n, flow, apex source, ...) and
        the flagfiles applied."""
        return {"config": {"data": dataclasses.asdict(self.data),
                           "features": dataclasses.asdict(features or self.features)},
                "flagfiles": list(self.run.flagfiles)}


def as_json(value):
    """`value` as it reads back from JSON (tuples become lists), so stored and fresh compare."""
    return json.loads(json.dumps(value, default=str))


def fingerprint(value) -> str:
    """Short, stable hash of a JSON-able value."""
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def flatten(value, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for key, item in value.items():
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(old: dict, new: dict) -> list[str]:
    """The fields that differ between two identities, as 'field: old -> new'."""
    a, b = flatten(old), flatten(new)
    return [f"{k}: {a.get(k, '(none)')} -> {b.get(k, '(none)')}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)]
