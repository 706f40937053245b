"""What every export shares: the bundle it starts from, and writing its files so that a fault loses
nothing.

An export is written to temporaries beside its destination (``.NAME.tmp-PID``) and moved into place
only once every file of it is complete; an export already there (``--overwrite``) is moved aside
first and removed last, so it is never deleted before its replacement is whole. A full disk ends in
one ``DiskFullError`` naming the folder, the free space and the fix, with the temporaries removed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError
from .safe_files import disk_full_as_user_error, remove_quietly, temp_path


def bundle_for_export(bundle_or_path):
    """A loaded bundle in float32: exports hold float32 weights and arithmetic, and the runtime that
    loads them picks its own precision. A path loads in float32; a bundle loaded in another
    precision is loaded again from its folder."""
    from .bundle import load_bundle

    if isinstance(bundle_or_path, (str, Path)):
        return load_bundle(bundle_or_path, precision="fp32")
    bundle = bundle_or_path
    if bundle.precision is not None and bundle.precision.name != "fp32" and bundle.path:
        return load_bundle(bundle.path, precision="fp32")
    return bundle


def refuse_existing(outs: list[Path], overwrite: bool) -> None:
    """A UserError when one of ``outs`` exists and ``overwrite`` is not set (checked before any
    work, and again by ``replacing``)."""
    for out in outs:
        if Path(out).exists() and not overwrite:
            raise UserError(f"{out}: already exists. Choose another --out or pass --overwrite.")


@contextlib.contextmanager
def replacing(outs: list[Path], *, overwrite: bool, what: str) -> Iterator[list[Path]]:
    """``with replacing([path, sidecar], overwrite=..., what="the ONNX export") as tmps:`` write
    each file (or folder) of the export to its temporary in ``tmps``; when the block ends without
    an error they replace ``outs`` together (see the module docstring)."""
    outs = [Path(out) for out in outs]
    refuse_existing(outs, overwrite)
    folder = outs[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    tmps = [temp_path(out) for out in outs]
    for tmp in tmps:
        remove_quietly(tmp)
    with disk_full_as_user_error(folder, what, cleanup=tmps):
        try:
            yield tmps
            for tmp in tmps:
                if not tmp.exists():
                    raise RuntimeError(f"{tmp}: the export wrote no such file")
        except BaseException:
            for tmp in tmps:
                remove_quietly(tmp)
            raise
    olds = [out.with_name(f".{out.name}.old-{os.getpid()}") for out in outs]
    for out, old in zip(outs, olds):
        if out.exists() or out.is_symlink():
            remove_quietly(old)
            os.replace(out, old)
    for tmp, out in zip(tmps, outs):
        os.replace(tmp, out)
    for old in olds:
        remove_quietly(old)


@contextlib.contextmanager
def work_folder(out: Path) -> Iterator[Path]:
    """A scratch folder beside ``out`` (on its disk, named like a temporary so that one left by a
    killed process is removed by the next writer), removed afterwards."""
    folder = temp_path(Path(out).with_name(Path(out).name + ".work"))
    remove_quietly(folder)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        remove_quietly(folder)
