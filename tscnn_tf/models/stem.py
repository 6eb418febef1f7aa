"""A model's weight-free front, split off so that training computes it once per sample.

The flow models derive their inputs inside the model (u, v and strain of `flow_raw`, resized
and min-max normalised: `layers.apply_onset_apex_flow`) so that every export takes the record
fields. Those layers have no weights and do not depend on training, yet in `fit` they ran on
every cached sample in every epoch: about a fifth of STSTNet's step. `split` cuts a functional
model where its first trained (or training-dependent) layers begin: the stem, run once on each
sample before the fold's cache, and the core, trained on the stem's outputs. The core shares
its layers with the model, so training it trains the model, which is what is saved and
exported (tests/test_training_speed.py: the same weights to the bit).
"""
from __future__ import annotations

import inspect

import keras


def precomputable(layer) -> bool:
    """A layer whose output is a fixed function of its input: no variables (weights, seed
    generators), no `training` argument, not a nested model, called once."""
    return (not layer.variables and not isinstance(layer, keras.Model)
            and "training" not in inspect.signature(layer.call).parameters
            and len(layer._inbound_nodes) == 1)


def split(model: keras.Model) -> tuple[keras.Model | None, keras.Model]:
    """(stem, core): stem maps the model's inputs to the tensors where its trained part starts
    (one, or a tuple in the order core takes them), core maps those to the model's outputs and shares
    its layers. (None, model) when there is nothing to compute ahead: no weight-free front, a
    model that is not functional, or one whose variables would not be the core's in order."""
    if not isinstance(model, keras.Model) or not hasattr(model, "_inputs_struct"):
        return None, model
    try:
        stem_ids = {id(t) for t in model.inputs}
        cut, seen = [], set()
        for layer in model.layers:
            node = layer._inbound_nodes[0] if layer._inbound_nodes else None
            if node is None or not node.input_tensors:  # an input layer
                continue
            if precomputable(layer) and all(id(t) in stem_ids for t in node.input_tensors):
                stem_ids.update(id(t) for t in node.outputs)
                continue
            for t in node.input_tensors:
                if id(t) in stem_ids and id(t) not in seen:
                    seen.add(id(t))
                    cut.append(t)
        if (not cut or any(id(t) in stem_ids for t in keras.tree.flatten(model.outputs))
                or {id(t) for t in cut} == {id(t) for t in model.inputs}):
            return None, model
        front = cut[0] if len(cut) == 1 else tuple(cut)
        stem = keras.Model(model.input, front, name=f"{model.name}_stem")
        core = keras.Model(front if len(cut) == 1 else list(cut), model.outputs,
                           name=f"{model.name}_core")
    except (AttributeError, ValueError, TypeError):  # an unusual graph: train it whole
        return None, model
    if ([id(v) for v in core.variables] != [id(v) for v in model.variables]
            or [id(v) for v in core.trainable_variables]
            != [id(v) for v in model.trainable_variables]):
        return None, model  # saved optimiser and seed states are ordered by these
    return stem, core
