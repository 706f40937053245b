"""The gate of `pdl train` / `pdl evaluate` remembers a pass: an unchanged data set is not decoded
again; any changed file, a failed check, PDL_RECHECK_DATASET or a new CHECK_VERSION: all checked."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from panoptic_deeplab.datasets import check_cache, checks
from panoptic_deeplab.datasets.checks import files_checked, require_valid_dataset
from panoptic_deeplab.errors import DatasetError


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Records go to a temp folder, never to the real home."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(check_cache.RECHECK_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def root(synthetic_root, tmp_path):
    return shutil.copytree(synthetic_root, tmp_path / "data")


@pytest.fixture
def decoded(monkeypatch):
    """The label PNGs the check decodes, in order."""
    paths = []
    real = checks.read_segment_ids

    def spy(path):
        paths.append(path)
        return real(path)

    monkeypatch.setattr(checks, "read_segment_ids", spy)
    return paths


def png(root, k=0):
    return root / "annotations" / "panoptic_val" / f"val_{k:06d}.png"


def json_file(root):
    return root / "annotations" / "panoptic_val.json"


def touch(path):
    """A new mtime (1 s later), same contents and size."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_second_check_of_an_unchanged_set_decodes_nothing(
    root, decoded, cache_home, monkeypatch, capsys
):
    require_valid_dataset(root, "val")
    assert len(decoded) == 3
    records = list((cache_home / "panoptic_deeplab" / "dataset-checks").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["split"] == "val"

    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(checks, "read_segment_ids", refuse)
    monkeypatch.setattr(checks, "header_size", refuse)
    capsys.readouterr()
    require_valid_dataset(root, "val")
    out = capsys.readouterr().out
    assert "unchanged since it passed the data set check" in out and "PDL_RECHECK_DATASET=1" in out
    require_valid_dataset(
        root, "val", allow_image_problems=True
    )  # a strict pass serves pdl evaluate too


@pytest.mark.parametrize("changed", ["label png", "annotation json", "image"])
def test_a_touched_file_means_a_full_check(root, decoded, changed):
    require_valid_dataset(root, "val")
    touch(
        {
            "label png": png(root, 1),
            "annotation json": json_file(root),
            "image": root / "val" / "val_000002.jpg",
        }[changed]
    )
    decoded.clear()
    require_valid_dataset(root, "val")
    assert len(decoded) == 3


def test_an_edited_png_is_found_after_a_pass(root):
    require_valid_dataset(root, "val")
    ids = checks.read_segment_ids(png(root))
    ids[0:2, 0:2] = 777
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)
    cv2.imwrite(str(png(root)), rgb[..., ::-1])
    with pytest.raises(DatasetError, match="PNG id 777"):
        require_valid_dataset(root, "val")


def test_a_broken_set_is_never_remembered(root, cache_home):
    png(root, 2).unlink()
    for _ in range(2):
        with pytest.raises(DatasetError, match="panoptic PNG missing"):
            require_valid_dataset(root, "val")
    assert not (cache_home / "panoptic_deeplab").exists()


def test_a_pass_with_image_problems_only_serves_callers_that_allow_them(root, decoded):
    (root / "val" / "val_000001.jpg").unlink()
    require_valid_dataset(root, "val", allow_image_problems=True)  # pdl evaluate skips that image
    decoded.clear()
    require_valid_dataset(root, "val", allow_image_problems=True)
    assert decoded == []
    with pytest.raises(DatasetError, match="image file missing"):  # pdl train does not
        require_valid_dataset(root, "val")


def test_env_var_or_new_check_version_forces_a_full_check(root, decoded, monkeypatch):
    require_valid_dataset(root, "val")
    monkeypatch.setenv(check_cache.RECHECK_ENV, "1")
    decoded.clear()
    require_valid_dataset(root, "val")
    assert len(decoded) == 3
    monkeypatch.delenv(check_cache.RECHECK_ENV)
    monkeypatch.setattr(checks, "CHECK_VERSION", checks.CHECK_VERSION + 1)
    decoded.clear()
    require_valid_dataset(root, "val")
    assert len(decoded) == 3


def test_an_unwritable_cache_dir_only_means_no_record(root, decoded, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # mkdir under a file fails, for root too
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    for _ in range(2):
        decoded.clear()
        require_valid_dataset(root, "val")
        assert len(decoded) == 3


def test_a_garbled_record_means_a_full_check(root, decoded):
    require_valid_dataset(root, "val")
    check_cache.record_path(root, "val").write_text("{half")
    decoded.clear()
    require_valid_dataset(root, "val")
    assert len(decoded) == 3


def test_labels_the_readers_cannot_read_fail_the_check(root):
    """The check decodes with the readers' read_segment_ids: a 16-bit PNG (which a plain
    cv2.imread would have passed as 8-bit) is a problem, not a crash and not a pass."""
    cv2.imwrite(str(png(root)), np.zeros((97, 161, 3), np.uint16))
    with pytest.raises(DatasetError, match=r"val_000000.png: image id 0: .*8-bit RGB"):
        require_valid_dataset(root, "val")


def _files_read(root, split, monkeypatch):
    """Every file check_dataset opens (labels and images), with the annotation JSON(s) it names."""
    read = set()

    def spying(fn):
        def spy(path, *args):
            read.add(str(path))
            return fn(path, *args)

        return spy

    monkeypatch.setattr(checks, "read_segment_ids", spying(checks.read_segment_ids))
    monkeypatch.setattr(checks, "header_size", spying(checks.header_size))
    monkeypatch.setattr(cv2, "imread", spying(cv2.imread))
    assert checks.check_dataset(root, split) == []
    return read


def test_the_fingerprint_covers_exactly_the_files_the_check_reads(root, monkeypatch):
    files = {str(p) for p in files_checked(root, "val")}
    assert files == _files_read(root, "val", monkeypatch) | {str(json_file(root))}


def test_cityscapes_fingerprints_cover_the_files_read(cityscapes_root, monkeypatch):
    files = {str(p) for p in files_checked(cityscapes_root, "val")}
    assert files == _files_read(cityscapes_root, "val", monkeypatch) and len(files) == 2

    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    gt = cityscapes_root / "gtFine"
    convert2panoptic(str(gt), str(gt), False, ["val"])
    next((gt / "val").glob("*/*_instanceIds.png")).unlink()  # now read through the panoptic JSON
    files = {str(p) for p in files_checked(cityscapes_root, "val")}
    assert files == _files_read(cityscapes_root, "val", monkeypatch) | {
        str(gt / "cityscapes_panoptic_val.json")
    }


def test_malformed_annotations_give_no_fingerprint(root):
    json_file(root).write_text(
        '{"images": [], "annotations": [{"file_name": "../x.png", "image_id": 1}]}'
    )
    assert files_checked(root, "val") is None
    json_file(root).write_text("{not json")
    assert files_checked(root, "val") is None


def test_a_first_check_parses_the_annotation_json_once(root, cache_home, monkeypatch):
    """Listing the files to fingerprint and checking them share one parse (COCO's JSON: seconds)."""
    parsed = []
    real = checks.json.load

    def spy(f, *args, **kwargs):
        parsed.append(getattr(f, "name", f))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(checks.json, "load", spy)
    require_valid_dataset(root, "val")
    assert [p for p in parsed if str(p).endswith("panoptic_val.json")] == [str(json_file(root))]
    broken = json.loads(json_file(root).read_text())
    broken["annotations"][0]["segments_info"][0]["category_id"] = 999
    json_file(root).write_text(json.dumps(broken))
    with pytest.raises(DatasetError, match="999"):  # the shared parse still finds what is wrong
        require_valid_dataset(root, "val")
