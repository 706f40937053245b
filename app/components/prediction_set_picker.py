"""Choosing a prediction set on the Inspect and Review pages: one remembered in the workdir (the
list the Evaluate page keeps) or new files. The library (panoptic_deeplab.prediction_sets) opens
and checks it; its messages are shown as they are, and the page keeps running."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from panoptic_deeplab.app.components import eval_results as er
from panoptic_deeplab.prediction_sets import FORMATS, PredictionSet, default_name

NEW_SET = "New prediction set…"
FORMAT_LABELS = {
    "coco_panoptic": "COCO panoptic (JSON + PNG folder)",
    "two_channel_png": "deeplab2 raw PNGs (R class, G instance)",
    "three_channel_png": "deeplab2 raw PNGs (R class, G·256 + B instance)",
}


@dataclass(frozen=True)
class SetChoice:
    """What the user gave: the files (as typed, may be wrong) and the set's name."""

    json: str
    folder: str
    format: str
    class_table: str
    name: str

    @property
    def key(self) -> tuple:
        """Plain values naming the choice (for caches), with when the files last changed."""
        json_path = Path(self.json).expanduser() if self.json else None
        stamp = er.prediction_stamp(json_path, Path(self.folder or self.json).expanduser())
        return (self.json, self.folder, self.format, self.class_table, self.name, stamp)


def choose(prefix: str, workdir: Path, formats: tuple[str, ...] = FORMATS) -> SetChoice | None:
    """The widgets (keys start with ``prefix``); None until files are given."""
    ss = st.session_state
    known = {
        name: entry
        for name, entry in er.known_prediction_sets(workdir).items()
        if entry.get("format", "coco_panoptic") in formats
    }
    if known:
        pick = st.selectbox("Prediction set", [*known, NEW_SET], key=f"{prefix}_pick")
        if ss.get(f"_{prefix}_picked") != pick:
            ss[f"_{prefix}_picked"] = pick
            if pick != NEW_SET:  # fill the fields below from the remembered entry
                entry = known[pick]
                ss[f"{prefix}_format"] = entry.get("format", "coco_panoptic")
                ss[f"{prefix}_json"] = entry.get("json") or ""
                ss[f"{prefix}_folder"] = entry["folder"]
                ss[f"{prefix}_table"] = entry.get("class_table") or ""
                ss[f"{prefix}_name"] = pick
    fmt = formats[0]
    if len(formats) > 1:
        fmt = st.radio(
            "Format",
            formats,
            format_func=FORMAT_LABELS.get,
            horizontal=True,
            key=f"{prefix}_format",
        )
    c = st.columns([2, 2, 1.2])
    json_text = table_text = ""
    if fmt == "coco_panoptic":
        json_text = c[0].text_input(
            "Predictions JSON (COCO panoptic)",
            key=f"{prefix}_json",
            help="As panopticapi, detectron2, mmdetection or `pdl predict` write it: annotations "
            "with image_id, file_name and segments_info (optional 'score').",
        )
        folder_label = "PNG folder (empty: the JSON's path without .json)"
    else:
        table_text = c[0].text_input(
            "Class table (empty: the data set's train ids)",
            key=f"{prefix}_table",
            help='A JSON file {"<R value>": <category id> or null for void}.',
        )
        folder_label = "Folder of the raw PNGs (named after the images)"
    folder_text = c[1].text_input(folder_label, key=f"{prefix}_folder")
    json_text, folder_text, table_text = json_text.strip(), folder_text.strip(), table_text.strip()
    folder = folder_text or (str(Path(json_text).with_suffix("")) if json_text else "")
    default = default_name(folder, json_text or None) if folder else ""
    name = c[2].text_input("Name", key=f"{prefix}_name", placeholder=default).strip() or default
    if not (json_text or folder_text):
        return None
    return SetChoice(json_text, folder_text, fmt, table_text, name)


def open_set(choice: SetChoice, spec) -> PredictionSet:
    """The set, opened by the library (a UserError says what is wrong and how to fix it)."""
    return PredictionSet.open(
        spec,
        predictions=choice.json or None,
        folder=choice.folder or None,
        format=choice.format,
        class_table=choice.class_table or None,
        name=choice.name or None,
    )


def remember(workdir: Path, predictions: PredictionSet) -> None:
    """Add the set to the workdir's list (Evaluate, Inspect and Review offer it by name)."""
    listed = er.known_prediction_sets(workdir).get(predictions.name, {})
    if listed.get("folder") == str(predictions.folder):
        return  # already listed under this name: no write on every rerun
    table = predictions.class_table.path if predictions.class_table else None
    er.remember_prediction_set(
        workdir,
        predictions.name,
        predictions.json_path,
        predictions.folder,
        format=predictions.format,
        class_table=table,
    )


def show_error(name: str, err: Exception | str) -> None:
    """A library message, each of its lines on its own line."""
    text = "  \n".join(line.strip() for line in str(err).splitlines())
    st.error(f"**The prediction set {name} cannot be used.**\n\n{text}", icon=":material/error:")
