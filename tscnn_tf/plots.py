"""Images for people: the confusion matrix as a PNG and for TensorBoard, the apex-and-flow
picture of predict and spot, and the contact sheet and run report of `tscnn_tf.inspect`.

Drawn with OpenCV, which the feature stage needs anyway, so no plotting library is installed.
TensorFlow and the feature stage are imported only by the functions that read records or clips.
"""
from __future__ import annotations

import base64
import csv
import html
import json
import os
from pathlib import Path

import cv2
import numpy as np

from tscnn_tf.artifacts import atomic_write
from tscnn_tf.errors import ToolkitError
from tscnn_tf.face import GRID

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def confusion_matrix_image(cm, class_names: list[str], title: str = "",
                           cell: int = 72) -> np.ndarray:
    """An RGB uint8 image of a confusion matrix: rows are true labels, columns predictions.

    Each cell shows its count and, shaded by it, the share of its row (the per-class recall):
    green on the diagonal, red off it.
    """
    cm = np.asarray(cm, dtype=np.int64)
    k = len(class_names)
    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    label_w = max(cv2.getTextSize(c, _FONT, 0.5, 1)[0][0] for c in class_names) + 16
    top = 40 + label_w
    width = max(24 + label_w + k * cell + 8, cv2.getTextSize(title, _FONT, 0.55, 1)[0][0] + 16)
    img = np.full((top + k * cell + 24, width, 3), 255, np.uint8)
    cv2.putText(img, title, (8, 22), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    x0, y0 = 24 + label_w, top
    for i in range(k):
        for j in range(k):
            shade = int(255 - 200 * share[i, j])
            p, q = (x0 + j * cell, y0 + i * cell), (x0 + (j + 1) * cell, y0 + (i + 1) * cell)
            # RGB: errors red, hits green, both deeper with the row's share.
            cv2.rectangle(img, p, q, (255, shade, shade) if i != j else (shade, 255, shade), -1)
            cv2.rectangle(img, p, q, (160, 160, 160), 1)
            text = f"{cm[i, j]}"
            (tw, th), _ = cv2.getTextSize(text, _FONT, 0.6, 1)
            cv2.putText(img, text, (p[0] + (cell - tw) // 2, p[1] + (cell + th) // 2), _FONT,
                        0.6, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, class_names[i], (8, y0 + i * cell + cell // 2 + 5), _FONT, 0.5,
                    (0, 0, 0), 1, cv2.LINE_AA)
    # Column labels, written vertically so long class names fit.
    strip = np.full((k * cell, label_w, 3), 255, np.uint8)
    for j, name in enumerate(class_names):
        cv2.putText(strip, name, (8, j * cell + cell // 2 + 5), _FONT, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    img[40:40 + label_w, x0:x0 + k * cell] = np.rot90(strip)
    cv2.putText(img, "true \\ predicted", (8, 40 + label_w - 8), _FONT, 0.4, (90, 90, 90), 1,
                cv2.LINE_AA)
    return img


def write_png(path, rgb: np.ndarray) -> None:
    """Write an RGB image atomically (a finished PNG or none)."""
    with atomic_write(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise OSError(f"could not write {path}")


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """A (H, W, 2) flow field in the usual colour code: hue = direction, brightness = magnitude."""
    magnitude, angle = cv2.cartToPolar(flow[..., 0].astype(np.float32),
                                       flow[..., 1].astype(np.float32), angleInDegrees=True)
    top = max_magnitude or float(magnitude.max()) or 1.0
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(255 * magnitude / top, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def apex_and_flow_image(apex_face: np.ndarray, landmarks: np.ndarray, flow_raw: np.ndarray,
                        title: str, grid: int = 6) -> np.ndarray:
    """In the manner of the paper's Fig. 6: the aligned apex face with its landmarks and block
    grid, beside the colour-coded onset->apex and apex->offset flows (shared colour scale)."""
    size = apex_face.shape[0]
    face = cv2.cvtColor(apex_face, cv2.COLOR_GRAY2RGB)
    for k in range(1, grid):
        p = round(k * size / grid)
        cv2.line(face, (p, 0), (p, size - 1), (0, 200, 255), 1)
        cv2.line(face, (0, p), (size - 1, p), (0, 200, 255), 1)
    for x, y in landmarks:
        cv2.circle(face, (int(round(x)), int(round(y))), 1, (255, 40, 40), -1)
    top = float(np.hypot(flow_raw[..., 0::2], flow_raw[..., 1::2]).max()) or 1.0
    flows = [cv2.resize(flow_to_rgb(flow_raw[..., c:c + 2], top), (size, size),
                        interpolation=cv2.INTER_NEAREST) for c in (0, 2)]
    panel = np.concatenate([face, np.full((size, 4, 3), 255, np.uint8), flows[0],
                            np.full((size, 4, 3), 255, np.uint8), flows[1]], axis=1)
    out = np.full((size + 44, panel.shape[1], 3), 255, np.uint8)
    out[44:] = panel
    cv2.putText(out, title, (4, 16), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for k, text in enumerate(("apex, landmarks, grid", "onset->apex", "apex->offset")):
        cv2.putText(out, text, (4 + k * (size + 4), 38), _FONT, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
    return out


def spotting_image(trace: dict, intervals: list[dict], fps: float, width: int = 1200,
                   height: int = 360) -> np.ndarray:
    """The spotting signal of each scale over time (micro blue, macro orange, each scaled to
    its maximum), with the spotted intervals shaded (micro green, macro red) and labelled."""
    img = np.full((height, width, 3), 255, np.uint8)
    stamps = [np.asarray(trace[k][0], float) for k in trace if len(trace[k][0])]
    if not stamps:
        return img
    first = min(s[0] for s in stamps)
    last = max(max(s[-1] for s in stamps), max((i["offset"] for i in intervals), default=0))
    def x_of(i):
        return int(8 + (width - 16) * (i - first) / max(last - first, 1))
    top, bottom = 40, height - 30
    for interval in intervals:
        colour = (200, 240, 200) if interval["type"] == "micro" else (200, 200, 250)
        cv2.rectangle(img, (x_of(interval["onset"]), top), (x_of(interval["offset"]), bottom),
                      colour, -1)
        label = interval.get("label") or interval["type"]
        cv2.putText(img, label, (x_of(interval["onset"]), top - 6), _FONT, 0.35, (60, 60, 60), 1,
                    cv2.LINE_AA)
    for name, colour in (("micro", (200, 90, 20)), ("macro", (20, 120, 230))):
        index, values = (np.asarray(a, float) for a in trace.get(name, ([], [])))
        if len(values) < 2:
            continue
        scaled = values / max(values.max(), 1e-12)
        points = [(x_of(i), int(bottom - (bottom - top) * v)) for i, v in zip(index, scaled)]
        cv2.polylines(img, [np.array(points, np.int32)], False, colour, 1, cv2.LINE_AA)
    seconds = (last - first) / fps
    cv2.putText(img, f"spotting signal, {seconds:.1f} s at {fps:g} fps: micro scale (blue), "
                     "macro scale (orange)", (8, 18), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


# --- Contact sheets and run reports (`python -m tscnn_tf.inspect`) -------------------------

PANEL = 96   # side of each picture in a tile
GAP = 6      # between panels, tiles and groups
_TEXT_H = 15
_BACKGROUND = 255


def blocks_to_face(blocks: np.ndarray, n: int) -> np.ndarray:
    """(48, 48, n²) row-major block stack in [0, 1] -> the (48n, 48n) uint8 face it came from."""
    size = blocks.shape[0]
    face = np.asarray(blocks).reshape(size, size, n, n).transpose(2, 0, 3, 1)
    return np.clip(np.rint(face.reshape(n * size, n * size) * 255), 0, 255).astype(np.uint8)


def draw_grid(rgb: np.ndarray, cells: int, colour, thickness: int = 1) -> np.ndarray:
    """`rgb` with the lines of a cells x cells grid drawn in place."""
    h, w = rgb.shape[:2]
    for k in range(1, cells):
        x, y = round(k * w / cells), round(k * h / cells)
        cv2.line(rgb, (x, 0), (x, h - 1), colour, thickness)
        cv2.line(rgb, (0, y), (w - 1, y), colour, thickness)
    return rgb


def apex_panel(blocks: np.ndarray, n: int, grid: int = GRID, size: int = PANEL) -> np.ndarray:
    """The recorded apex face (reassembled from the block stack) with the apex-spotting grid
    (thin, cyan) and the n x n block grid of the local-spatial stream (thick, yellow)."""
    face = cv2.resize(blocks_to_face(blocks, n), (size, size), interpolation=cv2.INTER_AREA)
    rgb = draw_grid(cv2.cvtColor(face, cv2.COLOR_GRAY2RGB), grid, (0, 200, 255), 1)
    return draw_grid(rgb, n, (255, 210, 0), 2)


def face_panel(face: np.ndarray | None, size: int = PANEL) -> np.ndarray:
    """An aligned grey face crop at `size`, or a grey placeholder when there is none."""
    if face is None:
        panel = np.full((size, size, 3), 200, np.uint8)
        cv2.putText(panel, "not read", (8, size // 2 + 4), _FONT, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        return panel
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(face, cv2.COLOR_GRAY2RGB)


def flow_panels(flow_raw: np.ndarray, size: int = PANEL) -> tuple[list[np.ndarray], float]:
    """The onset->apex and apex->offset fields of a (48, 48, 4) raw flow in colour, both on the
    tile's own scale (brightness 255 = the larger field's largest vector); and that maximum."""
    top = float(np.hypot(flow_raw[..., 0::2], flow_raw[..., 1::2]).max())
    panels = [cv2.resize(flow_to_rgb(flow_raw[..., c:c + 2], top or 1.0), (size, size),
                         interpolation=cv2.INTER_NEAREST) for c in (0, 2)]
    return panels, top


def apex_text(sample: dict, source: str) -> str:
    """`apex 193 spotted (given 195)`: the apex frame the features used, where it came from
    (the records' apex_source), and the other apex."""
    given, spotted, used = sample["apex_given"], sample["apex_spotted"], sample["apex_used"]
    if source == "given" and given >= 0:
        return f"apex {used} given " + ("(= spotted)" if spotted == used
                                        else f"(spotted {spotted})")
    other = "none given" if given < 0 else "= given" if given == used else f"given {given}"
    return f"apex {used} spotted ({other})"


def _text_fit(text: str, width: int, scale: float) -> str:
    while len(text) > 4 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[:-2] + "~"
    return text


def tile_shape(faces: bool, verdict: bool, size: int = PANEL) -> tuple[int, int]:
    """(height, width) of every tile of a sheet: the layout depends only on these choices."""
    panels = 5 if faces else 3
    lines = 4 if verdict else 3
    return (GAP + lines * _TEXT_H + 4 + size + _TEXT_H + _TEXT_H + GAP,
            2 * GAP + panels * size + (panels - 1) * 4)


def sample_tile(sample: dict, n: int, apex_source: str, faces: list | None = None,
                show_faces: bool = True, verdict: str | None = None, correct: bool | None = None,
                size: int = PANEL) -> np.ndarray:
    """One sample as a person checks it: subject, label, clip, frame range and apex source above
    [onset face, recorded apex face with grids, offset face,] onset->apex flow, apex->offset
    flow (hue = direction, brightness = magnitude on the tile's own scale, its maximum written
    below). `sample` holds a record's arrays (`blocks`, `flow_raw`) and its manifest fields;
    `faces` the re-aligned (onset, apex, offset) crops, if read; `verdict` a prediction line,
    framed green or red by `correct`."""
    h, w = tile_shape(show_faces, verdict is not None, size)
    tile = np.full((h, w, 3), _BACKGROUND, np.uint8)
    flows, top = flow_panels(sample["flow_raw"], size)
    apex = apex_panel(sample["blocks"], n, size=size)
    if show_faces:
        onset, _, offset = faces if faces is not None else (None, None, None)
        panels = [face_panel(onset, size), apex, face_panel(offset, size), *flows]
        captions = ["onset", "apex (record)", "offset", "onset->apex", "apex->offset"]
    else:
        panels, captions = [apex, *flows], ["apex (record)", "onset->apex", "apex->offset"]
    lines = [(f"{sample['subject']}  {sample['label_name']}", 0.45, (0, 0, 0)),
             (f"{sample['clip']}  frames {sample['onset']}-{sample['offset']}", 0.38, (40, 40, 40)),
             (apex_text(sample, apex_source), 0.38, (40, 40, 40))]
    if verdict is not None:
        lines.append((verdict, 0.4, (0, 130, 0) if correct else (200, 0, 0)))
    for k, (text, scale, colour) in enumerate(lines):
        cv2.putText(tile, _text_fit(text, w - 2 * GAP, scale), (GAP, GAP + (k + 1) * _TEXT_H - 3),
                    _FONT, scale, colour, 1, cv2.LINE_AA)
    y = GAP + len(lines) * _TEXT_H + 4
    for k, (panel, caption) in enumerate(zip(panels, captions)):
        x = GAP + k * (size + 4)
        tile[y:y + size, x:x + size] = panel
        cv2.putText(tile, _text_fit(caption, size, 0.33), (x, y + size + 12), _FONT, 0.33,
                    (70, 70, 70), 1, cv2.LINE_AA)
    cv2.putText(tile, f"flow max {top:.2f} px (48-px grid), scale per tile",
                (GAP, y + size + _TEXT_H + 11), _FONT, 0.33, (70, 70, 70), 1, cv2.LINE_AA)
    if correct is not None:
        cv2.rectangle(tile, (0, 0), (w - 1, h - 1), (0, 160, 0) if correct else (220, 0, 0), 3)
    return tile


def direction_key(size: int = 44) -> np.ndarray:
    """A colour wheel: the hue of each flow direction, brighter outwards (image axes, y down)."""
    y, x = np.mgrid[:size, :size].astype(np.float32) - (size - 1) / 2
    wheel = np.dstack([x, y]) * (np.hypot(x, y) <= size / 2)[..., None]
    return flow_to_rgb(wheel, size / 2)


HEADER_H = 3 * _TEXT_H + 2 * GAP
MIN_WIDTH = 720
GROUP_H = 22


def sheet_layout(group_sizes: list[int], columns: int, tile: tuple[int, int]
                 ) -> tuple[tuple[int, int], list[int], list[tuple[int, int]]]:
    """Where everything of a contact sheet goes: the (height, width) of the sheet, the top of
    each group's title strip, and the (top, left) of each tile, groups one after the other,
    each in rows of `columns` tiles."""
    th, tw = tile
    width = GAP + columns * (tw + GAP)
    y, tops, places = HEADER_H, [], []
    for count in group_sizes:
        tops.append(y)
        y += GROUP_H
        places += [(y + (k // columns) * (th + GAP), GAP + (k % columns) * (tw + GAP))
                   for k in range(count)]
        y += -(-count // columns) * (th + GAP)
    return (y + GAP, max(width, MIN_WIDTH)), tops, places


def contact_sheet_image(groups: list[tuple[str, list[np.ndarray]]], columns: int,
                        header: list[str]) -> np.ndarray:
    """Tiles (all of one shape) grouped under titles, `columns` to a row, below a header of up
    to three lines and the flow colour key."""
    tile = next(t for _, tiles in groups for t in tiles).shape[:2]
    (h, w), tops, places = sheet_layout([len(t) for _, t in groups], columns, tile)
    sheet = np.full((h, w, 3), _BACKGROUND, np.uint8)
    key = direction_key(HEADER_H - 2 * GAP)
    sheet[GAP:GAP + key.shape[0], w - GAP - key.shape[1]:w - GAP] = key
    for k, line in enumerate(header[:3]):
        cv2.putText(sheet, _text_fit(line, w - 3 * GAP - key.shape[1], 0.4),
                    (GAP, GAP + (k + 1) * _TEXT_H - 3), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    tiles = [t for _, group in groups for t in group]
    for (title, group), top in zip(groups, tops):
        sheet[top + 2:top + GROUP_H - 2, GAP:w - GAP] = 232
        cv2.putText(sheet, f"{title}  ({len(group)})", (GAP + 4, top + GROUP_H - 7), _FONT,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for t, (y, x) in zip(tiles, places):
        sheet[y:y + tile[0], x:x + tile[1]] = t
    return sheet


def png_bytes(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise OSError("could not encode a PNG")
    return data.tobytes()


class InspectError(ToolkitError):
    """Inputs a contact sheet or run report cannot be drawn from (missing, empty, mismatched)."""


SORTS = ("subject", "class")


def check_output(path, suffix: str) -> Path:
    """Refuse an output that is a folder, lies in a missing folder or has another suffix."""
    path = Path(path)
    if path.is_dir():
        raise InspectError(f"--output {path} is a folder; give a file name ending in {suffix}")
    if path.suffix.lower() != suffix:
        raise InspectError(f"--output {path} must end in {suffix}")
    if not path.parent.is_dir():
        raise InspectError(f"the folder {path.parent} of --output does not exist")
    if not os.access(path.parent, os.W_OK):
        raise InspectError(f"cannot write in {path.parent}")
    return path


def load_records_manifest(records_dir) -> dict:
    """The manifest of a records folder that exists and holds at least one sample."""
    records_dir = Path(records_dir)
    if not records_dir.is_dir():
        raise InspectError(f"no records folder {records_dir}")
    from tscnn_tf import manifest as manifest_lib
    manifest = manifest_lib.load(records_dir, InspectError)  # the contract's one loader
    if not manifest.get("samples"):
        raise InspectError(f"the records in {records_dir} hold no sample")
    return manifest


def _in_turns(group: list[dict], key: str, start: int) -> list[dict]:
    """`group` (ordered by `key`) reordered to take one sample of each `key` value in turn,
    beginning at the `start`-th value (so that groups begin at different classes)."""
    values = sorted({e[key] for e in group})
    seen: dict = {}
    rank = {}
    for e in group:
        seen[e[key]] = seen.get(e[key], 0) + 1
        rank[e["sample_id"]] = (seen[e[key]], (values.index(e[key]) - start) % len(values))
    return sorted(group, key=lambda e: rank[e["sample_id"]])


def select_samples(entries: list[dict], classes=None, sort: str = "subject",
                   limit: int | None = None) -> list[tuple[str, list[dict]]]:
    """Manifest entries in groups (by subject, or by class with sort="class"), each group
    ordered by the other key (class or subject) then the sample id. `classes` keeps only those
    labels. `limit` takes samples from the groups in turn, so every group shows before any
    shows more, and within a group from each class (or subject) in turn, each group starting
    at another one."""
    if sort not in SORTS:
        raise InspectError(f"--sort must be one of {SORTS}, not {sort!r}")
    group_of, other_of = (("subject", "label") if sort == "subject" else ("label", "subject"))
    groups: dict = {}
    for entry in sorted(entries, key=lambda e: (e[group_of], e[other_of], e["sample_id"])):
        if not classes or entry["label_name"] in classes:
            groups.setdefault(entry[group_of], []).append(entry)
    queues = {key: _in_turns(group, other_of, g) for g, (key, group) in enumerate(groups.items())}
    limit = len(entries) if limit is None else max(limit, 0)
    chosen: dict = {key: set() for key in groups}
    for depth in range(max(map(len, groups.values()), default=0)):
        for key, queue in queues.items():
            if depth < len(queue) and limit > 0:
                chosen[key].add(queue[depth]["sample_id"])
                limit -= 1
    return [(group[0]["subject" if sort == "subject" else "label_name"],
             [e for e in group if e["sample_id"] in chosen[key]])
            for key, group in groups.items() if chosen[key]]


def check_classes(classes, manifest: dict) -> None:
    if unknown := [c for c in classes or () if c not in manifest["class_names"]]:
        raise InspectError(f"--classes {unknown} not in the records' classes "
                           f"{manifest['class_names']}")


def read_record_arrays(records_dir, manifest: dict, sample_ids) -> dict[str, dict]:
    """{sample id: its record's numpy arrays} for the wanted ids, reading only their shards.

    A wanted sample missing from its shard is an InspectError (a shard changed or was lost)."""
    import tensorflow as tf
    from tscnn_tf import records
    wanted = set(sample_ids)
    from tscnn_tf import manifest as manifest_lib
    shards = sorted({e["shard"] for e in manifest["samples"] if e["sample_id"] in wanted})
    paths = [manifest_lib.shard_path(records_dir, s, InspectError) for s in shards]
    if missing := [str(p) for p in paths if not p.is_file()]:
        raise InspectError(f"record shard(s) {missing} named by the manifest are missing")
    n = manifest["params"]["blocks"]
    out = {}
    for path in paths:  # one at a time, so that a damaged one is named
        try:
            for serialized in tf.data.TFRecordDataset(str(path)):
                example = records.parse(serialized, n)
                sample_id = example["sample_id"].numpy().decode()
                if sample_id in wanted:
                    out[sample_id] = {k: example[k].numpy() for k in ("blocks", "flow_raw")}
        except tf.errors.OpError as e:
            raise InspectError(f"unreadable records in {path}: {records.op_error_reason(e)}; "
                               "extract them again") from None
    if lost := sorted(wanted - set(out)):
        raise InspectError(f"{len(lost)} sample(s) of the manifest are not in their shards "
                           f"(e.g. {lost[0]}): the records are damaged; extract them again")
    return out


def realigned_faces(manifest: dict, entries: list[dict], warnings: list[str]) -> dict:
    """{sample id: (onset, apex, offset) aligned face crops}, re-made from the database folder
    the records came from with the feature stage's own alignment (the records hold only the
    apex face). Nothing is read, and a warning says why, when the folder is gone, or its
    content is no longer what the records were made from; a clip that fails is counted."""
    import dataclasses
    from tscnn_tf import face as face_lib, features
    from tscnn_tf.config import DataConfig, FeatureConfig
    from tscnn_tf.databases import read_database
    from tscnn_tf.video import ClipError
    data_dir = manifest.get("data_dir")
    data = (manifest.get("config") or {}).get("data") or {"db": manifest["db"]}
    if not data_dir:
        warnings.append("onset and offset faces not shown: the records name no database folder "
                        "(their manifest has no data_dir)")
        return {}
    if not Path(data_dir).is_dir():
        warnings.append(f"onset and offset faces not shown: the database folder {data_dir} of "
                        "the records is not there")
        return {}
    names = {f.name for f in dataclasses.fields(DataConfig)}
    config = DataConfig(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in data.items() if k in names})
    try:
        if manifest["db"] == "synthetic":  # read as it is: never render into it
            from tscnn_tf.databases import read_custom, synthetic
            database = read_custom(data_dir, list(config.classes or synthetic.CLASS_NAMES),
                                   db="synthetic")
        else:
            database = read_database(manifest["db"], data_dir, **config.reader_options())
    except (ToolkitError, OSError, ValueError) as e:
        warnings.append(f"onset and offset faces not shown: cannot read {data_dir}: {e}")
        return {}
    if database.content_fingerprint() != manifest.get("data_fingerprint"):
        warnings.append(f"onset and offset faces not shown: {data_dir} no longer holds the data "
                        "the records were made from")
        return {}
    by_id = {s.sample_id: s for s in database.samples}
    feature_config = FeatureConfig(**manifest["params"])
    landmarker = face_lib.make_landmarker(feature_config.landmarks, feature_config.face_box,
                                          feature_config.detect_width)
    out, failed = {}, []
    for entry in entries:
        sample = by_id.get(entry["sample_id"])
        try:
            if sample is None:
                raise ClipError("not in the database")
            indices, faces, _ = features.aligned_clip(sample, feature_config, landmarker, [])
            at = {index: k for k, index in enumerate(indices)}.get(entry["apex_used"])
            out[entry["sample_id"]] = (faces[0], None if at is None else faces[at], faces[-1])
        except (ClipError, face_lib.FaceNotFound) as e:
            failed.append(f"{entry['sample_id']}: {e}")
    if failed:
        warnings.append(f"onset and offset faces of {len(failed)} sample(s) could not be re-made "
                        f"(e.g. {failed[0]}); their panels say 'not read'")
    return out


def _tiles(records_dir, manifest, entries, faces: bool, warnings, verdicts=None) -> dict:
    arrays = read_record_arrays(records_dir, manifest, [e["sample_id"] for e in entries])
    crops = realigned_faces(manifest, entries, warnings) if faces else {}
    n, source = manifest["params"]["blocks"], manifest["params"].get("apex_source", "spotted")
    out = {}
    for entry in entries:
        verdict, correct = (verdicts or {}).get(entry["sample_id"], (None, None))
        out[entry["sample_id"]] = sample_tile({**entry, **arrays[entry["sample_id"]]}, n, source,
                                              crops.get(entry["sample_id"]), faces, verdict,
                                              correct)
    return out


LEGEND = (f"apex: the recorded face; thin cyan lines: {GRID}x{GRID} apex-spotting grid, thick "
          "yellow: {n}x{n} blocks",
          "flow: hue = direction (key at right), brightness = magnitude, scaled per tile")


def contact_sheet(records_dir, output, limit: int | None = 48, classes=None,
                  sort: str = "subject", columns: int = 4, faces: bool = True) -> dict:
    """Draw the contact sheet of a records folder into the PNG `output` (atomically): at most
    `limit` samples, grouped by subject (or class), of the `classes` wanted. Inputs are checked
    before anything is drawn. Returns {"output", "shown", "total", "groups", "warnings"}."""
    output = check_output(output, ".png")
    manifest = load_records_manifest(records_dir)
    check_classes(classes, manifest)
    if columns < 1:
        raise InspectError("--columns must be at least 1")
    groups = select_samples(manifest["samples"], classes, sort, limit)
    if not groups:
        raise InspectError(f"no sample of the classes {list(classes or [])} in {records_dir}"
                           if classes else "--limit 0 shows no sample")
    entries = [e for _, group in groups for e in group]
    n = manifest["params"]["blocks"]
    warnings: list[str] = []
    tiles = _tiles(records_dir, manifest, entries, faces, warnings)
    total = sum(1 for e in manifest["samples"] if not classes or e["label_name"] in classes)
    header = [f"{manifest['db']}: {len(entries)} of {total} samples" +
              (f" of {', '.join(classes)}" if classes else "") + f", grouped by {sort}; "
              f"records {records_dir}", LEGEND[0].format(n=n), LEGEND[1]]
    image = contact_sheet_image([(title, [tiles[e["sample_id"]] for e in group])
                                 for title, group in groups], columns, header)
    write_png(output, image)
    return {"output": str(output), "shown": len(entries), "total": total,
            "groups": [(title, [e["sample_id"] for e in group]) for title, group in groups],
            "warnings": warnings, "shape": image.shape}


def read_run(workdir) -> tuple[dict, list[dict]]:
    """results.json and the pooled predictions.csv of a training run folder."""
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise InspectError(f"no run folder {workdir}")
    for name in ("results.json", "predictions.csv"):
        if not (workdir / name).is_file():
            raise InspectError(f"no {name} in {workdir}: not a run folder, or no fold has "
                               f"finished yet (python -m tscnn_tf.train --workdir={workdir})")
    results = json.loads((workdir / "results.json").read_text())
    with open(workdir / "predictions.csv", newline="") as f:
        rows = [{**row, "label": int(row["label"]), "pred": int(row["pred"])}
                for row in csv.DictReader(f)]
    if not rows:
        raise InspectError(f"{workdir / 'predictions.csv'} holds no prediction")
    return results, rows


def run_records(workdir, results: dict, records_dir=None) -> tuple[Path, dict]:
    """The records a run was trained on (`records_dir`, else the run's own) and their manifest,
    refused when they are not the run's (other feature settings or data)."""
    run = results.get("config") or {}
    if records_dir is None:
        recorded = ((run.get("experiment") or {}).get("run") or {}).get("records_dir")
        records_dir = Path(recorded) if recorded else Path(workdir) / "records"
    manifest = load_records_manifest(records_dir)
    expected = (run.get("identity") or {}).get("records") or {}
    for key in ("params", "data_fingerprint", "class_names"):
        if key in expected and expected[key] != manifest.get(key):
            raise InspectError(f"the records in {records_dir} are not the run's ({key}: "
                               f"{manifest.get(key)} there, {expected[key]} in the run); pass "
                               "--records=<the folder the run was trained on>")
    return Path(records_dir), manifest


def _table(header: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _img(rgb: np.ndarray, css: str, alt: str) -> str:
    data = base64.b64encode(png_bytes(rgb)).decode()
    return f'<img class="{css}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


_STYLE = """body{font-family:sans-serif;margin:1.5em;color:#111}table{border-collapse:collapse;
margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .6em;text-align:right}th{background:#eee}
.box{display:inline-block;vertical-align:top;margin-right:2.5em}figure{display:inline-block;
vertical-align:top;margin:0 8px 8px 0}figcaption{font-size:.85em;max-width:508px}
.warning{color:#a40}"""


def report_html(title: str, subtitle: str, results: dict, rows: list[dict],
                class_names: list[str], tiles: dict, shown: list[str], notes: list[str]) -> str:
    """The run report as one self-contained HTML page: results, warnings, per-subject and
    per-class figures, the confusion matrix, then the tiles of `shown` (misclassified first)."""
    train = ((results.get("config") or {}).get("identity") or {}).get("train") or {}
    summary = _table(["streams", "variant", "accuracy", "F1", "UF1", "UAR", "samples", "folds",
                      "fingerprint"],
                     [[train.get("streams", "?"), train.get("variant", "?"),
                       f"{100 * results['accuracy']:.2f}%", f"{results['f1_macro']:.4f}",
                       f"{results['uf1']:.4f}", f"{results['uar']:.4f}", results["num_samples"],
                       len(results.get("per_fold", {})), results.get("fingerprint")]])
    subjects = sorted({r["subject"] for r in rows})
    per_subject = [[s, sum(r["subject"] == s for r in rows),
                    sum(r["subject"] == s and r["label"] == r["pred"] for r in rows)]
                   for s in subjects]
    per_subject = [[s, n, k, f"{100 * k / n:.1f}%"] for s, n, k in per_subject]
    per_class = [[c, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}",
                  v["support"]] for c, v in results.get("per_class", {}).items()]
    cm_title = (f"LOSO, {len(results.get('per_fold', {}))} folds: accuracy "
                f"{100 * results['accuracy']:.1f}%, UF1 {results['uf1']:.3f}")
    by_id = {r["sample_id"]: r for r in rows}
    wrong = [r for r in rows if r["label"] != r["pred"]]

    def figures(ids):
        out = []
        for sample_id in ids:
            r = by_id[sample_id]
            caption = (f"{sample_id}: true {class_names[r['label']]}, predicted "
                       f"{class_names[r['pred']]}")
            out.append(f'<figure id="{html.escape(sample_id)}">'
                       f'{_img(tiles[sample_id], "tile", caption)}'
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        return "<div>" + "".join(out) + "</div>"
    shown_wrong = [i for i in shown if by_id[i]["label"] != by_id[i]["pred"]]
    shown_right = [i for i in shown if by_id[i]["label"] == by_id[i]["pred"]]
    parts = [f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(subtitle)}</p>",
             "<h2>Results (leave one subject out)</h2>", summary,
             *[f'<p class="warning">{html.escape(w)}</p>'
               for w in [*results.get("warnings", []), *notes]],
             '<div class="box"><h2>Per subject</h2>',
             _table(["subject", "samples", "correct", "accuracy"], per_subject),
             '</div><div class="box"><h2>Per class</h2>',
             _table(["class", "precision", "recall", "F1", "support"], per_class),
             '</div><div class="box"><h2>Confusion matrix</h2>',
             _img(confusion_matrix_image(results["confusion_matrix"], class_names, cm_title),
                  "confusion", "confusion matrix"), "</div>",
             f"<h2>Misclassified samples: {len(shown_wrong)} of {len(wrong)} shown</h2>",
             figures(shown_wrong),
             f"<h2>Correctly classified samples: {len(shown_right)} of "
             f"{len(rows) - len(wrong)} shown</h2>", figures(shown_right),
             "</body></html>"]
    return "\n".join(parts)


def run_report(workdir, output, records_dir=None, limit: int | None = 48,
               faces: bool = True) -> dict:
    """Write the HTML run report of a training run folder to `output` (atomically): its
    results, per-subject accuracy, confusion matrix, and a tile per sample, misclassified
    first (at most `limit` tiles; the correct ones are cut first). Inputs are checked before
    anything is drawn. Returns {"output", "shown", "misclassified", "total", "warnings"}."""
    output = check_output(output, ".html")
    results, rows = read_run(workdir)
    records_dir, manifest = run_records(workdir, results, records_dir)
    entries = {e["sample_id"]: e for e in manifest["samples"]}
    if lost := [r["sample_id"] for r in rows if r["sample_id"] not in entries]:
        raise InspectError(f"{len(lost)} predicted sample(s) are not in the records "
                           f"{records_dir} (e.g. {lost[0]})")
    class_names = results.get("class_names") or manifest["class_names"]
    order = sorted(rows, key=lambda r: (r["label"] == r["pred"], r["subject"], r["sample_id"]))
    shown = [r["sample_id"] for r in order][:len(order) if limit is None else max(limit, 0)]
    verdicts = {}
    for r in rows:
        p = r.get(f"p_{class_names[r['pred']]}")
        verdicts[r["sample_id"]] = (
            f"true {class_names[r['label']]} -> predicted {class_names[r['pred']]}" +
            (f" ({float(p):.2f})" if p not in (None, "") else ""), r["label"] == r["pred"])
    warnings: list[str] = []
    tiles = _tiles(records_dir, manifest, [entries[i] for i in shown], faces, warnings, verdicts)
    page = report_html(f"Run report: {workdir}",
                       f"records {records_dir} ({manifest['db']}, params "
                       f"{manifest.get('params_fingerprint')}); made by python -m tscnn_tf.inspect",
                       results, rows, class_names, tiles, shown, warnings)
    with atomic_write(output) as tmp:
        tmp.write_text(page, encoding="utf-8")
    wrong = sum(r["label"] != r["pred"] for r in rows)
    return {"output": str(output), "shown": len(shown), "misclassified": wrong,
            "total": len(rows), "warnings": warnings}
