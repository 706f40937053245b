"""Bad input through the product's own surfaces: `pdl predict`, the Predictor, the app's upload,
`pdl check-dataset`, `pdl train`, `pdl evaluate`, `pdl pq`, the app's Review and Train pages.

Every case must end in a message that names the file (or key) and the fix, with no traceback, and
must leave no file lost, overwritten, or written outside the folder it belongs in. The cases and
what the user sees are listed in docs/robustness.md.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zlib
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.cli import main
from panoptic_deeplab.datasets.checks import check_dataset
from panoptic_deeplab.datasets.coco_panoptic import id_to_rgb, rgb_to_id
from panoptic_deeplab.errors import DatasetError, ImageError

CROP = H, W = (65, 97)  # the bundle's crop (conftest.py) and the size of the test images


# ---------------------------------------------------------------------------------------------
# Helpers


def pdl(capsys, *argv) -> SimpleNamespace:
    """Run `pdl ARGV` in this process; its exit code, stdout and stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return SimpleNamespace(code=code, out=out, err=err)


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes; the work directory's lock file (empty,
    the holder is the open file) is no data and left out."""
    from panoptic_deeplab.safe_files import LOCK_NAME

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOCK_NAME
    }


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None, **save_kwargs) -> bytes:
    image = Image.fromarray(array)
    buf = io.BytesIO()
    (image.convert(mode) if mode else image).save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def bomb_png(side: int = 20000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: ~50 kB on disk, 400 megapixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    pixels = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )


def street(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def exif_rotated_jpeg() -> bytes:
    """A 65x97 JPEG whose EXIF orientation (6) makes viewers show it 97 high and 65 wide."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(street(), "JPEG", exif=exif.tobytes())


# file name -> (bytes, words of the problem, words of the fix)
BAD_IMAGES = {
    "empty.png": (lambda: b"", "the file is empty (0 bytes)", "Re-export"),
    "truncated_jpeg.jpg": (
        lambda: (lambda d: d[: len(d) // 2])(encode(street(), "JPEG")),
        "truncated or corrupt",
        "Re-export or re-download",
    ),
    "truncated_png.png": (
        lambda: (lambda d: d[: len(d) // 2])(encode(street())),
        "truncated or corrupt",
        "Re-export or re-download",
    ),
    "text.png": (
        lambda: b"these are notes, not pixels\n",
        "not an image",
        "Convert it to PNG or JPEG",
    ),
    "bomb.png": (bomb_png, "decompression bomb", "Downscale the image"),
}
# file name -> (bytes, (height, width) the prediction must have)
UNUSUAL_IMAGES = {
    "plain.png": (lambda: encode(street()), (H, W)),
    "gray16.png": (lambda: encode(street()[..., 0].astype(np.uint16) * 257), (H, W)),
    "rgba.png": (lambda: encode(np.dstack([street(), np.full((H, W), 128, np.uint8)])), (H, W)),
    "gray.png": (lambda: encode(street()[..., 0]), (H, W)),
    "cmyk.jpg": (lambda: encode(street(), "JPEG", mode="CMYK"), (H, W)),
    "exif_rotated.jpg": (exif_rotated_jpeg, (W, H)),
    "one_pixel.png": (lambda: encode(street(1, 1)), (1, 1)),
}


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for name, (make, *_) in {**BAD_IMAGES, **UNUSUAL_IMAGES}.items():
        (folder / name).write_bytes(make())
    return folder


# ---------------------------------------------------------------------------------------------
# Images through `pdl predict` (one run over a folder holding every case)


@pytest.fixture(scope="module")
def predicted(bundle_dir, image_folder, tmp_path_factory) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("predicted") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(
            [
                "predict",
                "--model",
                str(bundle_dir),
                "--images",
                str(image_folder),
                "--out",
                str(out),
            ]
        )
    skipped = json.loads((out / "skipped.json").read_text())
    return SimpleNamespace(
        code=code,
        out=out,
        stdout=stdout.getvalue(),
        stderr=stderr.getvalue(),
        skipped={Path(s["path"]).name: s["reason"] for s in skipped},
        images={
            i["file_name"]: i for i in json.loads((out / "panoptic.json").read_text())["images"]
        },
    )


def test_predict_finishes_the_folder_and_sums_up(predicted):
    """A folder with bad files: every good image is predicted, exit 0, one summary line."""
    assert predicted.code == 0
    assert "Traceback" not in predicted.stderr
    assert set(predicted.skipped) == set(BAD_IMAGES)
    assert set(predicted.images) == set(UNUSUAL_IMAGES)
    assert (
        f"wrote {len(UNUSUAL_IMAGES)} predictions to {predicted.out / 'panoptic.json'}; skipped "
        f"{len(BAD_IMAGES)} unreadable image(s), see {predicted.out / 'skipped.json'}"
    ) in predicted.stdout


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_predict_reports_a_bad_image_and_skips_it(predicted, image_folder, name):
    _, problem, fix = BAD_IMAGES[name]
    reason = predicted.skipped[name]
    assert reason.startswith(f"{image_folder / name}: ") and problem in reason and fix in reason
    assert f"skipped: {reason}" in predicted.stderr  # said on the terminal as it happens, too
    assert not list((predicted.out / "panoptic").glob(f"{Path(name).stem}*"))


@pytest.mark.parametrize("name", sorted(UNUSUAL_IMAGES))
def test_predict_reads_unusual_images(predicted, name):
    """16-bit, RGBA, grayscale, CMYK, EXIF-rotated and 1x1 images are predicted at display size."""
    height, width = UNUSUAL_IMAGES[name][1]
    entry = predicted.images[name]
    assert (entry["height"], entry["width"]) == (height, width)
    png = cv2.imread(str(predicted.out / "panoptic" / f"{Path(name).stem}.png"))
    assert png.shape[:2] == (height, width)


# ---------------------------------------------------------------------------------------------
# Images through the Predictor (the library's entry point)


@pytest.fixture(scope="module")
def predictor(bundle_dir):
    from panoptic_deeplab.inference import Predictor

    return Predictor(bundle_dir)


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_predictor_raises_an_image_error_naming_the_file(predictor, image_folder, name):
    _, problem, fix = BAD_IMAGES[name]
    with pytest.raises(ImageError) as err:
        predictor(image_folder / name)
    assert (
        str(image_folder / name) in str(err.value)
        and problem in str(err.value)
        and fix in str(err.value)
    )


def test_a_decompression_bomb_is_refused_from_its_header(predictor, image_folder, monkeypatch):
    """The 20000x20000 PNG is refused without decoding a pixel (Pillow's decoder is not entered)."""
    from PIL import ImageFile

    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self)
    )
    with pytest.raises(ImageError, match="decompression bomb"):
        predictor(image_folder / "bomb.png")
    assert decoded == []
    predictor(image_folder / "plain.png")  # the spy does see a normal decode
    assert decoded and set(decoded) == {(W, H)}


# ---------------------------------------------------------------------------------------------
# Images through the app's upload (Inspect page, hand-made stand-in model; tests/app/fakes.py)


@pytest.fixture
def inspect_page(monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from panoptic_deeplab.app.components import model_io
    from tests.app import apptest_utils as u
    from tests.app.fakes import FakePredictor

    model_dir = tmp_path / "fake-model"
    model_dir.mkdir()
    u.set_app_env(monkeypatch, tmp_path, model=model_dir)
    monkeypatch.setattr(model_io, "load_predictor", lambda path: FakePredictor())
    st.cache_data.clear()
    at = AppTest.from_file(u.ENTRY, default_timeout=u.TIMEOUT).run()
    assert not at.exception
    return at


def upload(at, name: str, data: bytes):
    at.file_uploader[0].set_value((name, data, "image/png")).run()
    assert not at.exception, at.exception
    return at


# Cases the Inspect page suite (tests/app/test_inspect_page.py) does not already cover: it has the
# empty file, a .txt file, a truncated PNG, RGBA, grayscale, 16-bit, EXIF and a large image.
@pytest.mark.parametrize("name", ["truncated_jpeg.jpg", "text.png", "bomb.png"])
def test_app_upload_of_a_bad_file_says_why_and_the_app_goes_on(inspect_page, name):
    make, problem, fix = BAD_IMAGES[name]
    at = upload(inspect_page, name, make())
    (error,) = at.error
    assert (
        "cannot be used" in error.value
        and name in error.value
        and problem in error.value
        and fix in error.value
    )
    at = upload(at, "plain.png", encode(street()))
    assert not at.error and {m.label: m.value for m in at.metric}["Image"] == f"{W}×{H}"


@pytest.mark.parametrize("name", ["cmyk.jpg", "one_pixel.png"])
def test_app_upload_of_an_unusual_image_is_shown(inspect_page, name):
    make, (height, width) = UNUSUAL_IMAGES[name]
    at = upload(inspect_page, name, make())
    assert not at.error
    assert {m.label: m.value for m in at.metric}["Image"] == f"{width}×{height}"


def test_app_upload_named_with_dot_dot_offers_plain_download_names(
    inspect_page, monkeypatch, tmp_path
):
    from streamlit.delta_generator import DeltaGenerator

    offered = []
    real = DeltaGenerator.download_button

    def spy(self, label, data, file_name=None, *args, **kwargs):
        offered.append(file_name)
        return real(self, label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", spy)
    before = digest(tmp_path.parent)
    at = upload(inspect_page, "../../escape.png", encode(street()))
    assert not at.error
    assert offered == ["escape_panoptic.png", "escape_panoptic.json", "escape_input_overlay.png"]
    written = set(digest(tmp_path.parent)) - set(before)
    assert not [p for p in written if "escape" in p]  # nothing named after the upload lands on disk


# ---------------------------------------------------------------------------------------------
# Broken data sets: `pdl check-dataset` lists the problem; `pdl train` and `pdl evaluate` stop
# before any work with the same message (exit 2), writing nothing.


def _json_edit(fn):
    def mutate(root: Path, split: str) -> None:
        path = root / "annotations" / f"panoptic_{split}.json"
        data = json.loads(path.read_text())
        fn(data)
        path.write_text(json.dumps(data))

    return mutate


def _missing_png(root: Path, split: str) -> None:
    (root / "annotations" / f"panoptic_{split}" / f"{split}_000001.png").unlink()


def _invalid_json(root: Path, split: str) -> None:
    path = root / "annotations" / f"panoptic_{split}.json"
    path.write_text(path.read_text()[:-40])


def _png_id_not_in_segments_info(root: Path, split: str) -> None:
    path = root / "annotations" / f"panoptic_{split}" / f"{split}_000000.png"
    ids = rgb_to_id(cv2.imread(str(path))[..., ::-1])
    ids[0:2, 0:2] = 777
    cv2.imwrite(str(path), id_to_rgb(ids)[..., ::-1])


def _duplicate_image_id(data: dict) -> None:
    data["images"].append(dict(data["images"][0]))
    data["annotations"].append(json.loads(json.dumps(data["annotations"][0])))


def _dot_dot_names(data: dict) -> None:
    data["images"][0]["file_name"] = "../../escape.jpg"
    data["annotations"][0]["file_name"] = "../../../escape.png"


def _cityscapes(root: Path, label: np.ndarray | None) -> None:
    """A one-image-per-split Cityscapes layout (4x6); with ``label`` None, no instanceIds PNG."""
    for split in ("train", "val"):
        images = root / "leftImg8bit" / split / "aachen"
        labels = root / "gtFine" / split / "aachen"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        cv2.imwrite(
            str(images / "aachen_000000_000019_leftImg8bit.png"), np.zeros((4, 6, 3), np.uint8)
        )
        if label is not None:
            cv2.imwrite(str(labels / "aachen_000000_000019_gtFine_instanceIds.png"), label)


COCO_CASES = {  # case -> (how to break each split, words of the message)
    "missing PNG": (_missing_png, "panoptic PNG missing"),
    "invalid JSON": (_invalid_json, "invalid JSON"),
    "PNG id not in segments_info": (
        _png_id_not_in_segments_info,
        "PNG id 777 (4 px) is not in segments_info",
    ),
    "unknown category id": (
        _json_edit(lambda d: d["annotations"][0]["segments_info"][0].update(category_id=57)),
        "has unknown category_id 57",
    ),
    "duplicate segment id": (
        _json_edit(
            lambda d: d["annotations"][0]["segments_info"].append(
                dict(d["annotations"][0]["segments_info"][1])
            )
        ),
        "appears 2 times in segments_info",
    ),
    "duplicate image id": (_json_edit(_duplicate_image_id), "duplicate image id 0 in 'images'"),
    "file_name with ../": (_json_edit(_dot_dot_names), "points outside the data set folder"),
}
CITYSCAPES_CASES = {
    "cityscapes missing instanceIds PNG": (None, "instanceIds PNG missing"),
    "cityscapes unknown label id": (
        np.full((4, 6), 250, np.uint16),
        "unknown Cityscapes label ids [250]",
    ),
}


def broken_data_set(case: str, clean_root: Path, tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "data"
    if case in COCO_CASES:
        shutil.copytree(clean_root, root)
        mutate, words = COCO_CASES[case]
        for split in ("train", "val"):
            mutate(root, split)
    else:
        label, words = CITYSCAPES_CASES[case]
        _cityscapes(root, label)
    return root, words


@pytest.mark.parametrize("command", ["check-dataset", "train", "evaluate"])
@pytest.mark.parametrize("case", [*COCO_CASES, *CITYSCAPES_CASES])
def test_a_broken_data_set_is_refused_before_any_work(
    case, command, clean_root, bundle_dir, tmp_path, capsys
):
    root, words = broken_data_set(case, clean_root, tmp_path)
    split = "train" if command == "train" else "val"
    problems = check_dataset(root, split)
    assert any(words in str(p) for p in problems)
    if command == "check-dataset":
        run = pdl(capsys, "check-dataset", root, "--split", split)
        assert run.code == 1
        said = run.out
    elif command == "train":
        workdir = tmp_path / "run"
        run = pdl(
            capsys,
            "train",
            "--config",
            "synthetic/tiny",
            "--dataset",
            root,
            "--workdir",
            workdir,
            "--steps",
            1,
        )
        assert run.code == 2 and not workdir.exists()
        said = run.err
    else:
        report, saved = tmp_path / "report.json", tmp_path / "predictions"
        run = pdl(
            capsys,
            "evaluate",
            "--model",
            bundle_dir,
            "--dataset",
            root,
            "--out",
            report,
            "--save-predictions",
            saved,
        )
        assert run.code == 2 and not report.exists() and not saved.exists()
        said = run.err
    assert all(str(p) in said for p in problems)  # each problem with its file and its "fix:" line
    if command != "check-dataset":
        assert "nothing was done" in said and f"pdl check-dataset {root} --split {split}" in said


def test_predict_on_a_data_set_with_dot_dot_names_writes_nothing_outside(
    clean_root, bundle_dir, tmp_path, capsys
):
    root, _ = broken_data_set("file_name with ../", clean_root, tmp_path)
    # the files those names point at exist, so only the name check stands in the way
    cv2.imwrite(str(tmp_path / "escape.jpg"), street())
    shutil.copy(root / "annotations" / "panoptic_val" / "val_000000.png", tmp_path / "escape.png")
    before = digest(tmp_path)
    run = pdl(
        capsys, "predict", "--model", bundle_dir, "--dataset", root, "--out", tmp_path / "out"
    )
    assert run.code == 2
    assert (
        f"{root / 'annotations' / 'panoptic_val.json'}: image id 0: file_name "
        "'../../../escape.png' points outside the data set folder" in run.err
    )
    assert digest(tmp_path) == before


def test_the_review_store_refuses_dot_dot_names_before_its_export(clean_root, tmp_path):
    from panoptic_deeplab.review import ReviewStore

    root, _ = broken_data_set("file_name with ../", clean_root, tmp_path)
    shutil.copy(root / "annotations" / "panoptic_val" / "val_000000.png", tmp_path / "escape.png")
    before = digest(tmp_path)
    with pytest.raises(
        DatasetError,
        match=r"panoptic_val\.json: image id 0: file_name '\.\./\.\./\.\./escape\.png' "
        r"points outside the data set folder",
    ):
        ReviewStore(root, "val", tmp_path / "review").export(tmp_path / "exports" / "corrected")
    assert digest(tmp_path) == before


def test_the_review_page_shows_the_dot_dot_error(clean_root, monkeypatch, tmp_path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.app import apptest_utils as u

    root, _ = broken_data_set("file_name with ../", clean_root, tmp_path)
    u.set_app_env(monkeypatch, tmp_path, data=root)
    st.cache_data.clear()
    at = AppTest.from_file(str(u.APP_DIR / "pages" / "review.py"), default_timeout=u.TIMEOUT).run()
    assert not at.exception
    assert any("points outside the data set folder" in e.value for e in at.error)


# ---------------------------------------------------------------------------------------------
# `pdl pq` on bad prediction / GT files (the GT set used as its own prediction, then broken)


def _pred_files(clean_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    pred_json, pred_dir = tmp_path / "pred.json", tmp_path / "pred"
    shutil.copy(clean_root / "annotations" / "panoptic_val.json", pred_json)
    shutil.copytree(clean_root / "annotations" / "panoptic_val", pred_dir)
    return pred_json, pred_dir


PQ_CASES = {  # case -> words of the message
    "prediction JSON invalid": "not valid JSON",
    "prediction PNG missing": "PNG not found",
    "annotation without segments_info": "needs 'image_id', 'file_name' and a 'segments_info'",
    "GT unknown category id": "category_id 57 is not in its 'categories'",
    "duplicate segment id": "appear more than once in segments_info",
    "duplicate image id": "image_id 0 has more than one annotation",
}


def _edit(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("case", list(PQ_CASES))
def test_pq_names_the_bad_file(case, clean_root, tmp_path, capsys):
    gt_json = tmp_path / "gt.json"
    shutil.copy(clean_root / "annotations" / "panoptic_val.json", gt_json)
    pred_json, pred_dir = _pred_files(clean_root, tmp_path)
    argv = [
        "pq",
        "--gt-json",
        gt_json,
        "--gt-folder",
        clean_root / "annotations" / "panoptic_val",
        "--pred-json",
        pred_json,
        "--pred-folder",
        pred_dir,
        "--out",
        tmp_path / "pq.json",
    ]
    assert pdl(capsys, *argv).code == 0  # the files as they are: fine
    (tmp_path / "pq.json").unlink()
    named = pred_json
    if case == "prediction JSON invalid":
        pred_json.write_text("{oops")
    elif case == "prediction PNG missing":
        (pred_dir / "val_000001.png").unlink()
        named = pred_dir / "val_000001.png"
    elif case == "annotation without segments_info":
        _edit(pred_json, lambda d: d["annotations"][0].pop("segments_info"))
    elif case == "GT unknown category id":
        _edit(gt_json, lambda d: d["annotations"][0]["segments_info"][0].update(category_id=57))
        named = gt_json
    elif case == "duplicate segment id":
        _edit(
            pred_json,
            lambda d: d["annotations"][0]["segments_info"].append(
                d["annotations"][0]["segments_info"][0]
            ),
        )
    else:
        _edit(pred_json, lambda d: d["annotations"].append(d["annotations"][0]))
    run = pdl(capsys, *argv)
    assert run.code == 2 and not (tmp_path / "pq.json").exists()
    assert run.err.startswith(f"error: {named}: ") and PQ_CASES[case] in run.err


# ---------------------------------------------------------------------------------------------
# Config typos: exit 2 naming the key (and the closest valid one), before anything is written


CONFIG_CASES = {  # case -> (YAML file text or None for the preset, --set items, words)
    "unknown key in a YAML file": (
        "train:\n  stepz: 3\n",
        [],
        ["unknown key 'train.stepz'", "Did you mean 'steps'?"],
    ),
    "--set with a misspelt key": (
        None,
        ["train.stpes=3"],
        ["override: unknown key 'train.stpes'", "Did you mean 'steps'?"],
    ),
    "--set with a misspelt section": (
        None,
        ["trian.steps=3"],
        ["unknown section 'trian'", "Did you mean 'train'?"],
    ),
    "--set with a wrong value type": (
        None,
        ["train.steps=abc"],
        ["'train.steps' must be int, got 'abc'"],
    ),
    "wrong value type in a YAML file": (
        "dataset:\n  crop_size: 65\n",
        [],
        ["'dataset.crop_size' must be a list, got 65"],
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_a_config_typo_stops_pdl_train_with_the_key(case, clean_root, tmp_path, capsys):
    text, overrides, words = CONFIG_CASES[case]
    config = "synthetic/tiny"
    if text is not None:
        config = tmp_path / "my.yaml"
        config.write_text(text)
    workdir = tmp_path / "run"
    run = pdl(
        capsys,
        "train",
        "--config",
        config,
        "--dataset",
        clean_root,
        "--workdir",
        workdir,
        *[a for item in overrides for a in ("--set", item)],
    )
    assert run.code == 2 and not workdir.exists()
    assert run.err.startswith(f"error: {config if text is not None else 'override'}: ")
    assert all(w in run.err for w in words)


def test_a_config_typo_stops_model_summary(capsys):
    run = pdl(
        capsys, "model-summary", "--config", "synthetic/tiny", "--set", "model.outptu_stride=8"
    )
    assert (
        run.code == 2
        and "unknown key 'model.outptu_stride'. Did you mean 'output_stride'?" in run.err
    )


# ---------------------------------------------------------------------------------------------
# Weights that do not fit the config: a bundle with foreign weights, --init-from, resume


@pytest.fixture(scope="module")
def other_bundles(tmp_path_factory) -> SimpleNamespace:
    """Bundles of the same config for 19 classes (Cityscapes), and of a wider backbone (0.75)."""
    from panoptic_deeplab.bundle import save_bundle
    from panoptic_deeplab.config import load_config
    from panoptic_deeplab.datasets.specs import get_dataset_spec
    from panoptic_deeplab.model.builder import build_model

    root = tmp_path_factory.mktemp("other_bundles")
    config = load_config("synthetic/tiny", {"dataset.crop_size": list(CROP)})
    cityscapes = get_dataset_spec("cityscapes")
    wide = config.replace({"model.backbone_width": 0.75})
    synthetic = get_dataset_spec("synthetic")
    return SimpleNamespace(
        classes=save_bundle(
            root / "classes19",
            build_model(config, num_classes=cityscapes.num_classes),
            config,
            cityscapes,
        ),
        wide=save_bundle(
            root / "wide", build_model(wide, num_classes=synthetic.num_classes), wide, synthetic
        ),
    )


@pytest.mark.parametrize(
    "other, words",
    [
        pytest.param(
            "classes",
            "1 layer(s) differ, e.g. semantic_head_output/kernel is (1, 1, 32, 8) in the model but "
            "(1, 1, 32, 19) in the file; only the class count differs",
            id="19_classes",
        ),
        pytest.param(
            "wide",
            "layer(s) differ, e.g. conv/kernel is (3, 3, 3, 8) in the model but (3, 3, 3, 16) in "
            "the file",
            id="wider_backbone",
            marks=pytest.mark.slow,
        ),  # the --init-from test below also covers this message
    ],
)
def test_predict_refuses_a_bundle_whose_weights_belong_to_another_config(
    other, words, bundle_dir, other_bundles, tmp_path, capsys
):
    bundle = Path(shutil.copytree(bundle_dir, tmp_path / "bundle"))
    shutil.copy(getattr(other_bundles, other) / "model.weights.h5", bundle / "model.weights.h5")
    before = digest(bundle)
    run = pdl(capsys, "predict", "--model", bundle, "--images", tmp_path, "--out", tmp_path / "out")
    assert run.code == 2 and not (tmp_path / "out").exists() and digest(bundle) == before
    assert run.err.startswith(
        f"error: {bundle / 'model.weights.h5'}: weights do not match the model ("
    )
    assert (
        words in run.err
        and "Fix: the bundle's config.yaml does not describe these weights" in run.err
    )
    assert len(run.err.splitlines()) == 1  # no pages of Keras warnings


TRAIN = ["--config", "synthetic/tiny", "--set", f"dataset.crop_size=[{H},{W}]", "--batch-size", 2]


def test_init_from_a_bundle_of_another_width_is_refused(
    clean_root, other_bundles, tmp_path, capsys
):
    workdir = tmp_path / "run"
    run = pdl(
        capsys,
        "train",
        *TRAIN,
        "--dataset",
        clean_root,
        "--workdir",
        workdir,
        "--steps",
        1,
        "--init-from",
        other_bundles.wide,
    )
    assert run.code == 2
    assert (
        f"error: {other_bundles.wide / 'model.weights.h5'}: weights do not match the model ("
        in run.err
    )
    assert "conv/kernel is (3, 3, 3, 8) in the model but (3, 3, 3, 16) in the file" in run.err
    assert "Fix: give weights of the same backbone and decoder widths as this config" in run.err
    assert digest(workdir) == {}  # no config.yaml, status.json or metrics.csv claiming a run


@pytest.mark.slow
def test_init_from_a_bundle_of_another_class_count_fine_tunes(
    clean_root, other_bundles, tmp_path, capsys
):
    """Fine-tuning to another class table is allowed: all but the class layer load, with a note."""
    workdir = tmp_path / "run"
    run = pdl(
        capsys,
        "train",
        *TRAIN,
        "--dataset",
        clean_root,
        "--workdir",
        workdir,
        "--steps",
        0,
        "--init-from",
        other_bundles.classes,
    )
    assert (
        run.code == 0
        and f"initialised from {other_bundles.classes / 'model.weights.h5'}" in run.out
    )
    assert "trained for another number of classes" in run.err and "warning" not in run.err.lower()
    assert (workdir / "model" / "bundle.json").is_file()


@pytest.fixture(scope="module")
def foreign_workdir(tmp_path_factory) -> Path:
    """A workdir whose config.yaml is synthetic/tiny (train.steps 7) but whose checkpoint holds a
    19-class network: as if someone trained Cityscapes classes into it, or copied files around."""
    import keras

    from panoptic_deeplab.config import load_config, save_config
    from panoptic_deeplab.model.builder import build_model
    from panoptic_deeplab.training.checkpoints import CheckpointStore
    from panoptic_deeplab.training.schedule import schedule_from_config

    workdir = tmp_path_factory.mktemp("foreign") / "run"
    workdir.mkdir()
    config = load_config("synthetic/tiny", {"dataset.crop_size": list(CROP), "train.steps": 7})
    network = build_model(config, num_classes=19)
    optimizer = keras.optimizers.Adam(
        schedule_from_config(config.train)
    )  # the trainer's, for one replica
    optimizer.build(network.trainable_variables)
    CheckpointStore(workdir / "checkpoints", network, optimizer).save(5)
    save_config(config, workdir / "config.yaml")
    (workdir / "metrics.csv").write_text("step,loss\n5,1.5\n")
    (workdir / "status.json").write_text(json.dumps({"state": "stopped", "step": 5}))
    return workdir


def test_resume_with_another_model_config_is_refused(foreign_workdir, clean_root, tmp_path, capsys):
    workdir = Path(shutil.copytree(foreign_workdir, tmp_path / "run"))
    before = digest(workdir)
    run = pdl(
        capsys,
        "train",
        *TRAIN,
        "--set",
        "model.backbone_width=0.75",
        "--dataset",
        clean_root,
        "--workdir",
        workdir,
        "--steps",
        6,
    )
    assert run.code == 2 and digest(workdir) == before
    assert (
        f"error: {workdir / 'config.yaml'}: this workdir holds checkpoints of a different model "
        "config (model.backbone_width: 0.5 in the workdir, 0.75 now). Use a new --workdir"
        in run.err
    )


def test_resume_from_a_checkpoint_of_another_class_count_is_refused(
    foreign_workdir, clean_root, tmp_path, capsys
):
    workdir = Path(shutil.copytree(foreign_workdir, tmp_path / "run"))
    before = digest(workdir)
    run = pdl(capsys, "train", *TRAIN, "--dataset", clean_root, "--workdir", workdir, "--steps", 6)
    assert run.code == 2
    assert (
        digest(workdir) == before
    )  # config.yaml (train.steps 7), metrics, status: all as they were
    assert f"error: none of the checkpoints in {workdir / 'checkpoints'} can be restored" in run.err
    assert (
        "semantic_head_output" in run.err
        and "the checkpoint was trained on another class table" in run.err
    )
    assert "Train into a new --workdir" in run.err
    assert len(run.err.splitlines()) <= 4  # the error alone, not TensorFlow's per-variable warnings


def test_init_from_a_checkpoint_of_another_class_count_is_refused(
    foreign_workdir, clean_root, tmp_path, capsys
):
    workdir = tmp_path / "run"
    run = pdl(
        capsys,
        "train",
        *TRAIN,
        "--dataset",
        clean_root,
        "--workdir",
        workdir,
        "--steps",
        1,
        "--init-from",
        foreign_workdir,
    )
    assert run.code == 2 and digest(workdir) == {}
    assert (
        f"error: {foreign_workdir / 'checkpoints' / 'ckpt-5'}: does not match the model of this "
        "config" in run.err
    )
    assert "another class table" in run.err and len(run.err.splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Names with ../ in the app's Train form and in job records


def test_a_job_name_with_dot_dot_stays_a_label(clean_root, monkeypatch, tmp_path):
    """The Train form turns the job name into a run folder under WORKDIR/runs, never above it."""
    from streamlit.testing.v1 import AppTest

    from panoptic_deeplab import jobs
    from tests.app import apptest_utils as u

    monkeypatch.setattr(
        jobs.JobStore, "_start", lambda self, job: job
    )  # record the job, start no process
    u.set_app_env(monkeypatch, tmp_path, data=clean_root)
    at = AppTest.from_file(str(u.APP_DIR / "pages" / "train.py"), default_timeout=u.TIMEOUT).run()
    at.selectbox(key="base_model").set_value("none: train from scratch")
    at.selectbox(key="config").set_value("synthetic/tiny")
    at.text_input(key="job_name").set_value("../../escape")
    next(b for b in at.button if b.label == "Start fine-tune").click()
    at.run()
    if any(b.key == "start_anyway" for b in at.button):  # the tiny set is warned about first
        at.button(key="start_anyway").click()
        at.run()
    assert not at.exception and not at.error
    (job,) = jobs.JobStore(tmp_path / "work").list()
    assert job.name == "escape"
    assert Path(job.workdir).parent == (tmp_path / "work" / "runs").resolve()
    assert Path(job.workdir).name.startswith("escape-")


def test_pdl_jobs_submit_with_a_dot_dot_name(clean_root, monkeypatch, tmp_path, capsys):
    """`pdl jobs --name ../../x`: the name is only a label; the job's folder is ROOT/jobs/<id>."""
    from panoptic_deeplab import jobs

    monkeypatch.setattr(jobs.JobStore, "_start", lambda self, job: job)
    root = tmp_path / "jobs-root"
    run = pdl(
        capsys,
        "jobs",
        "--root",
        root,
        "--name",
        "../../escape",
        "submit",
        "check-dataset",
        clean_root,
    )
    assert run.code == 0
    (job,) = jobs.JobStore(root).list()
    assert (
        job.name == "../../escape" and Path(job.workdir) == (root / "jobs" / str(job.id)).resolve()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["jobs-root"]
