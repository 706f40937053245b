"""A full disk during ``pdl predict --save-raw`` and ``pdl export``: one clear message (folder, free
space, fix), nothing half-written, the earlier output intact; ``export --overwrite`` replaces an
export only once the new one is complete."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from panoptic_deeplab.cli import main
from panoptic_deeplab.export_files import replacing
from tests.core.inference.inference_fakes import random_image


def _hashes(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _temporaries(folder) -> list[str]:
    return [p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]


def _says_disk_full(err: str, folder) -> None:
    assert "Traceback" not in err
    assert f"{folder}" in err and "no space left" in err and "free)" in err
    assert "Free some space" in err


def test_replacing_keeps_the_old_files_until_the_new_ones_are_complete(tmp_path):
    out, sidecar = tmp_path / "model.onnx", tmp_path / "model.onnx.json"
    out.write_text("old")
    sidecar.write_text("old meta")
    with pytest.raises(RuntimeError, match="converter broke"):
        with replacing([out, sidecar], overwrite=True, what="the export") as tmps:
            tmps[0].write_text("new, half")
            raise RuntimeError("converter broke")
    assert (out.read_text(), sidecar.read_text()) == ("old", "old meta")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]

    with pytest.raises(RuntimeError, match="wrote no such file"):  # one file missing: no swap
        with replacing([out, sidecar], overwrite=True, what="the export") as tmps:
            tmps[0].write_text("new")
    assert out.read_text() == "old"

    with replacing([out, sidecar], overwrite=True, what="the export") as tmps:
        tmps[0].write_text("new")
        tmps[1].write_text("new meta")
        assert out.read_text() == "old"  # still the old one while the new one is written
    assert (out.read_text(), sidecar.read_text()) == ("new", "new meta")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.json"]


def test_predict_save_raw_on_a_full_disk(tiny_bundle_dir, tmp_path, small_disk, fill_disk, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):
        Image.fromarray(random_image(129, 257, seed=k)).save(images / f"img{k}.png")
    out = small_disk("4m") / "pred"
    args = ["predict", "--model", str(tiny_bundle_dir), "--images", str(images), "--out", str(out)]
    assert main(args) == 0
    earlier = _hashes(out)
    capsys.readouterr()

    fill_disk(out.parent, leave_bytes=40_000)  # room for a PNG or two, not for a raw .npz
    assert main([*args, "--save-raw"]) == 2
    _says_disk_full(capsys.readouterr().err, out)
    assert _temporaries(out) == []
    now = _hashes(out)
    # The earlier predictions are intact (the same model rewrites the same bytes) ...
    assert {k: now[k] for k in earlier if k != "panoptic.json"} == {
        k: v for k, v in earlier.items() if k != "panoptic.json"
    }
    # ... and whatever this run left is whole: a listing that parses and raw files that load.
    listed = json.loads((out / "panoptic.json").read_text())["annotations"]
    assert all((out / "panoptic" / a["file_name"]).is_file() for a in listed)
    for raw in (out / "raw").glob("*.npz"):
        assert np.load(raw)["panoptic"].shape == (129, 257)


@pytest.mark.slow
def test_export_on_a_full_disk_keeps_the_old_export(tiny_bundle_dir, small_disk, fill_disk, capsys):
    out = small_disk("24m") / "export"
    args = ["export", "--model", str(tiny_bundle_dir), "--out", str(out)]
    assert main(args) == 0
    earlier = _hashes(out)
    capsys.readouterr()

    filler = fill_disk(out.parent, leave_bytes=200_000)
    assert main([*args, "--overwrite"]) == 2
    _says_disk_full(capsys.readouterr().err, out.parent)
    assert _hashes(out) == earlier
    assert sorted(p.name for p in out.parent.iterdir()) == ["export", "filler"]

    os.remove(filler)
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["export"]
    assert (out / "saved_model.pb").is_file() and (out / "pdl_export.json").is_file()
