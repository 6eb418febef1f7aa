"""The registry of models: `--model=NAME` (default `tscnn`) or `--model=package.module:function`.

    entry = models.get("ststnet")              # or models.get("mypkg.nets:build_net")
    model = entry.make(num_classes, **settings)  # keras.Model; inputs named after record fields
    entry.loss                                  # the loss to compile it with

Every builder is `build(num_classes, **settings) -> keras.Model` whose Keras inputs are named
after record fields (`record_fields`), so the data pipeline feeds `{field: example[field]}` and
export, predict and spot need nothing model-specific. `make` passes a builder only the settings
its signature names. Adding a model: one file in this package with `build` and `fields`, and one
`ModelEntry` line in REGISTRY; or no file here at all, `--model=module:function`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import keras

from tscnn_tf.errors import ToolkitError
from tscnn_tf.features import INPUT_SIZE
from tscnn_tf.lbptop import lbptop_size
from tscnn_tf.models import htnet, lbptop_svm, offapexnet, ststnet, tscnn

DEFAULT = "tscnn"
DEFAULT_LOSS = "sparse_categorical_crossentropy"


class ModelError(ToolkitError):
    """A model that cannot be found, built or fed from the records."""


@dataclasses.dataclass(frozen=True)
class Reported:
    """A figure a paper reports: the row of a comparison table (paper Tables 2-6)."""

    database: str        # "composite" (MEGC2019: SMIC + CASME II + SAMM, 442 clips), "SAMM", ...
    protocol: str        # e.g. "LOSO, 3 classes"
    uf1: float | None = None       # unweighted (macro) F1 over the pooled LOSO predictions
    uar: float | None = None
    accuracy: float | None = None
    f1: float | None = None        # "mean F1-score" as a paper states it (not named UF1)
    source: str = ""     # where the figure is printed


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model: its builder, the record fields it reads, citation, figures and loss."""

    name: str
    build: Callable[..., Any]
    fields: Callable[..., tuple[str, ...]] | None  # None: known once built (`input_fields`)
    citation: str = ""
    reported: tuple[Reported, ...] = ()
    loss: Any = DEFAULT_LOSS
    user: bool = False

    def fields_for(self, **settings) -> tuple[str, ...]:
        """The record fields the model reads with these settings (built-in models only)."""
        if self.fields is None:
            raise ModelError(f"the fields of {self.name} are known once it is built: "
                             "use input_fields(model)")
        return tuple(call_with_settings(self.fields, settings))

    def make(self, num_classes: int, blocks: int = 3, **settings) -> keras.Model:
        """Build the model for `num_classes`; `blocks` (the n of the records' n x n stack) and
        every other setting reach the builder only if its signature names them."""
        settings = {"blocks": blocks, **settings}
        shapes = record_fields(blocks, settings.get("features") or lbptop_size())
        if self.user:
            model = call_user_builder(self.name, self.build, num_classes, settings, shapes)
        else:
            try:
                model = call_with_settings(self.build, settings, num_classes)
            except ValueError as e:
                raise ModelError(f"--model={self.name}: {e}") from None
        check_inputs(self.name, model, shapes)
        return model


COMPOSITE = "composite"
LOSO3 = "LOSO, 3 classes (MEGC2019)"
# Where the MEGC2019 figures are printed (sources and what stays unverified: docs/models.md).
MEGC_TABLES = "STSTNet (arXiv:1902.03634v1) Table III; HTNet Table 2"
HTNET_TABLE = "HTNet Table 2 (as in the authors' README, github.com/wangzhifengharrison/HTNet)"
BASELINE_TABLES = ("MEGC2019 baseline (See et al.) as reprinted in STSTNet (arXiv:1902.03634v1) "
                   "Table III and HTNet Table 2; See et al. not read")


def in_composite(database: str) -> str:
    """The protocol of a per-database MEGC2019 figure: one LOSO over the whole composite
    (68 subjects), scored on that database's clips only (not a LOSO within the database)."""
    return f"{LOSO3}: the composite's LOSO scored on its {database} clips"


REGISTRY: dict[str, ModelEntry] = {e.name: e for e in (
    ModelEntry("tscnn", tscnn.build, tscnn.fields,
               "The paper this toolkit reproduces (TSCNN, Section II.C, Table 1).",
               # TSCNN-I: the apex spotted as in Section II.A (the toolkit's default).
               (Reported("CASME II", "LOSO, 5 classes", accuracy=.7405, f1=.7327,
                         source="TSCNN paper, Table 2"),
                Reported("SMIC-HS", "LOSO, 3 classes", accuracy=.7274, f1=.7236,
                         source="TSCNN paper, Table 3"),
                Reported("SAMM", "LOSO, 5 classes", accuracy=.6353, f1=.6065,
                         source="TSCNN paper, Table 4"),
                Reported("CASME", "LOSO, 4 classes", accuracy=.7073, f1=.6736,
                         source="TSCNN paper, Table 6"))),
    ModelEntry("offapexnet", offapexnet.build, offapexnet.fields,
               "Gan, Liong, Yau, Huang, Tan, OFF-ApexNet on micro-expression recognition system, "
               "Signal Processing: Image Communication 74 (2019) 129-139, arXiv:1805.08699.",
               (Reported(COMPOSITE, LOSO3, accuracy=.7460, f1=.7104, uf1=.7196, uar=.7096,
                         source="STSTNet (arXiv:1902.03634v1) Table III; UF1, UAR also HTNet "
                                "Table 2; acc, F1 also OFF-ApexNet's abstract"),
                Reported("SMIC", in_composite("SMIC"), uf1=.6817, uar=.6695, source=MEGC_TABLES),
                Reported("CASME II", in_composite("CASME II"), uf1=.8764, uar=.8681,
                         source=MEGC_TABLES),
                Reported("SAMM", in_composite("SAMM"), uf1=.5409, uar=.5392, source=MEGC_TABLES),
                Reported("SMIC-HS", "LOSO, 3 classes", accuracy=.6768, f1=.6709,
                         source="TSCNN paper, Table 3"))),
    ModelEntry("ststnet", ststnet.build, ststnet.fields,
               "Liong et al., Shallow triple stream three-dimensional CNN (STSTNet) for "
               "micro-expression recognition, IEEE FG 2019 (MEGC2019), arXiv:1902.03634.",
               (Reported(COMPOSITE, LOSO3, accuracy=.7692, f1=.7389, uf1=.7353, uar=.7605,
                         source="STSTNet (arXiv:1902.03634v1) Table III; UAR also its abstract"),
                Reported("SMIC", in_composite("SMIC"), uf1=.6801, uar=.7013, source=MEGC_TABLES),
                Reported("CASME II", in_composite("CASME II"), uf1=.8382, uar=.8686,
                         source=MEGC_TABLES),
                Reported("SAMM", in_composite("SAMM"), uf1=.6588, uar=.6810,
                         source=MEGC_TABLES))),
    ModelEntry("htnet", htnet.build, htnet.fields,
               "Wang et al., HTNet for micro-expression recognition, Neurocomputing 602 (2024) "
               "128196, arXiv:2307.14637.",
               (Reported(COMPOSITE, LOSO3 + "; the authors' script keeps each fold's best epoch "
                         "on its test subject", uf1=.8603, uar=.8475, source=HTNET_TABLE),
                Reported("SMIC", in_composite("SMIC"), uf1=.8049, uar=.7905, source=HTNET_TABLE),
                Reported("CASME II", in_composite("CASME II"), uf1=.9532, uar=.9516,
                         source=HTNET_TABLE),
                Reported("SAMM", in_composite("SAMM"), uf1=.8131, uar=.8124,
                         source=HTNET_TABLE))),
    ModelEntry("lbptop_svm", lbptop_svm.build, lbptop_svm.fields,
               "LBP-TOP (Zhao & Pietikäinen, TPAMI 2007) + linear SVM: the MEGC2019 baseline "
               "(See et al., MEGC 2019 - the second facial micro-expressions grand challenge, "
               "IEEE FG 2019).",
               (Reported(COMPOSITE, LOSO3, uf1=.5882, uar=.5785, source=BASELINE_TABLES),
                Reported("SMIC", in_composite("SMIC"), uf1=.2000, uar=.5280,
                         source=BASELINE_TABLES),
                Reported("CASME II", in_composite("CASME II"), uf1=.7026, uar=.7429,
                         source=BASELINE_TABLES),
                Reported("SAMM", in_composite("SAMM"), uf1=.3954, uar=.4102,
                         source=BASELINE_TABLES)),
               loss=lbptop_svm.crammer_singer_squared_hinge),
)}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str | None) -> ModelEntry:
    """The registry entry of `name`, or of a user builder `package.module:function`."""
    name = name or DEFAULT
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        return resolve(name)
    raise ModelError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}, or give a "
                     "builder of your own as package.module:function")


def record_fields(blocks: int = 3, lbptop_features: int | None = None) -> dict[str, tuple]:
    """The record fields a model may read -> the shape of one sample (`lbptop` is added by the
    feature stage; records without it train every model but `lbptop_svm`)."""
    s = INPUT_SIZE
    return {"apex_gray": (s, s, 1), "blocks": (s, s, blocks * blocks), "flow": (s, s, 4),
            "flow_raw": (s, s, 4), "lbptop": (lbptop_features or lbptop_size(),)}


def input_fields(model) -> tuple[str, ...]:
    """The record fields a built model reads: its input names."""
    return tuple(t.name.split(":")[0] for t in model.inputs)


def require_fields(name: str, needed, available, records: str = "the records") -> None:
    """One clear error before any work when the records lack a field the model reads (e.g.
    `lbptop` in records made before the feature stage wrote it)."""
    if missing := [f for f in needed if f not in set(available)]:
        hint = (" (LBP-TOP histograms: re-run the feature stage of this version to add them)"
                if "lbptop" in missing else "")
        raise ModelError(f"--model={name} reads {', '.join(missing)}, which {records} do not "
                         f"hold{hint}; they hold {', '.join(sorted(available))}")


def accepted(fn: Callable, available: dict) -> dict:
    """The entries of `available` that `fn`'s signature names (all of them for **kwargs)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(available)
    return {k: v for k, v in available.items() if k in params}


def call_with_settings(fn: Callable, settings: dict, *args):
    return fn(*args, **accepted(fn, settings))


def resolve(spec: str) -> ModelEntry:
    """A user's builder `package.module:function` as a registry entry (no fields list: they are
    the built model's input names; the loss is sparse categorical cross-entropy unless the
    function has an attribute `loss`)."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name or ":" in function_name:
        raise ModelError(f"--model={spec}: a model of your own is given as "
                         "package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise ModelError(f"--model={spec}: no module named {module_name!r} (is its folder "
                             "on PYTHONPATH, or the package installed?)") from None
        raise ModelError(f"--model={spec}: {module_name} imports {e.name!r}, which is not "
                         "installed") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed to import: say where
        raise ModelError(f"--model={spec}: importing {module_name} failed: {describe(e)}") from None
    function = getattr(module, function_name, None)
    if function is None:
        found = sorted(k for k, v in vars(module).items()
                       if callable(v) and not k.startswith("_") and not isinstance(v, type)
                       and getattr(v, "__module__", None) == module.__name__)
        raise ModelError(f"--model={spec}: {module_name} has no {function_name!r}"
                         + (f" (its functions: {', '.join(found)})" if found else ""))
    if not callable(function):
        raise ModelError(f"--model={spec}: {function_name} is a {type(function).__name__}, not "
                         "a function that builds a keras.Model")
    return ModelEntry(spec, function, None, f"user model {spec}",
                      loss=getattr(function, "loss", DEFAULT_LOSS), user=True)


_CODE: dict[str, str | None] = {}


def code_fingerprint(entry: ModelEntry) -> str | None:
    """A user builder's code as a run's fingerprint sees it: the SHA-256 (12 hex digits) of the
    source file of the module that defines it, read once per process (a file edited during a
    run does not split the run); None for a registry model (its code is this toolkit's) or a
    module without a readable file. Code the module imports from elsewhere is not covered."""
    if not entry.user:
        return None
    name = getattr(entry.build, "__module__", None)
    if name not in _CODE:
        try:
            _CODE[name] = hashlib.sha256(Path(sys.modules[name].__file__).read_bytes()
                                         ).hexdigest()[:12]
        except (KeyError, AttributeError, OSError, TypeError):
            _CODE[name] = None
    return _CODE[name]


def describe(error: Exception) -> str:
    """'Type: message (file:line)' of the innermost frame where `error` was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def call_user_builder(spec: str, fn: Callable, num_classes: int, settings: dict,
                      shapes: dict) -> keras.Model:
    """fn(num_classes, ...): a parameter named `fields` gets {record field: shape}, one named
    after a record field gets that field's shape, one named after a setting its value (the
    setting wins where both share a name: `blocks` is n; its shape is in `fields`)."""
    available = {**shapes, **settings, "fields": dict(shapes)}
    try:
        model = call_with_settings(fn, available, num_classes)
    except Exception as e:  # noqa: BLE001 - the user's code failed: one line, with its place
        raise ModelError(f"--model={spec} failed to build: {describe(e)}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"--model={spec} returned a {type(model).__name__}, not a keras.Model")
    return model


def check_inputs(name: str, model: keras.Model, shapes: dict) -> None:
    """Every input is named after a record field and has its per-sample shape."""
    for field, tensor in zip(input_fields(model), model.inputs):
        if field not in shapes:
            raise ModelError(f"--model={name}: input {field!r} is no record field; name each "
                             f"keras.Input after the field it reads: {', '.join(shapes)}")
        got = tuple(tensor.shape[1:])
        if got != shapes[field]:
            raise ModelError(f"--model={name}: input {field!r} has shape {got}; the records "
                             f"hold {shapes[field]} per sample")
