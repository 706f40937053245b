"""``pdl app``: start the Streamlit browser app (on 127.0.0.1 unless ``--host`` says otherwise).

It picks the shipped demo model (the first bundle of ``settings.shipped_models()``) unless
``--model`` names a bundle, makes a small synthetic data set under the work directory on first
launch unless ``--data`` names one, then replaces itself with ``python -m streamlit run <the
installed app>/main.py`` (headless, no telemetry). The app reads its settings from the ``PDL_APP_*``
environment variables set here.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .. import settings
from ..errors import UserError

DEMO_DATA_NAME = "synthetic-demo"
# The first-launch demo set: small enough to generate in seconds on a laptop CPU.
DEMO_DATA = dict(num_train=16, num_val=8, height=257, width=513, seed=0)

# Environment variables the app reads (see app/state.py); the Predictor reads the last two itself.
ENV_MODEL, ENV_DATA, ENV_WORKDIR = (
    settings.ENV_APP_MODEL,
    settings.ENV_APP_DATA,
    settings.ENV_APP_WORKDIR,
)
ENV_PRECISION, ENV_BACKEND = settings.ENV_PRECISION, settings.ENV_BACKEND


MALLOC_ENV = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; the Docker image "
        "uses 0.0.0.0 inside the container)",
    )
    parser.add_argument(
        "--model", type=Path, help="model bundle directory (default: the shipped demo model)"
    )
    parser.add_argument(
        "--data", type=Path, help="data set root (default: a synthetic set made on first launch)"
    )
    default_workdir = settings.workdir()
    parser.add_argument(
        "--workdir",
        type=Path,
        default=default_workdir,
        help=f"where the app keeps its demo data, results and jobs (default {default_workdir}: "
        "$PDL_WORKDIR, else the per-user cache)",
    )
    from ..precision import PRECISIONS

    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="network arithmetic for the app's predictions (default: $PDL_PRECISION, else the "
        "bundle's default, auto = bf16 where the CPU/GPU has it natively); the Inspect page "
        "shows the choice",
    )
    parser.add_argument(
        "--backend",
        choices=("tf", "onnx", "openvino"),
        default=None,
        help="engine for the network (default: $PDL_BACKEND or tf)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the streamlit command and exit"
    )


def default_model() -> Path | None:
    """The first shipped model bundle, or None when none ships."""
    bundles = settings.shipped_models()
    return bundles[0] if bundles else None


def ensure_demo_data(workdir: Path) -> Path:
    """Make the small synthetic data set under ``workdir`` once; later launches reuse it."""
    root = workdir / "data" / DEMO_DATA_NAME
    done = root / ".complete"
    if done.exists():
        return root
    from ..datasets.synthetic import make_synthetic_dataset  # only the first launch needs it

    print(f"making a small synthetic data set in {root} (first launch only)...", file=sys.stderr)
    make_synthetic_dataset(root, **DEMO_DATA)
    done.write_text("ok\n")
    return root


def streamlit_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(settings.app_entry()),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        "64",
        "--client.toolbarMode",
        "minimal",
        # Magic (st.write of bare expressions) makes Streamlit parse each page into a Python AST in
        # every new session; CPython 3.11's ast.parse is not thread-safe, so sessions opened at
        # once could die with "AST constructor recursion depth mismatch". The pages call st.*.
        "--runner.magicEnabled",
        "false",
        # Pickers the pages also set through session state pass that value as their default index
        # (app/state.py, index_in_use); Streamlit would log a warning for each such run.
        "--global.disableWidgetStateDuplicationWarning",
        "true",
    ]


def app_environment(
    model: Path | None,
    data: Path | None,
    workdir: Path,
    precision: str | None = None,
    backend: str | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {ENV_WORKDIR: str(workdir), "TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    )
    # Each session's script thread would get its own glibc malloc arena, and the freed memory of
    # many arenas is rarely given back: a long-running app then grows with every session. Two
    # arenas, large blocks mmapped (returned on free): the soak test in docs/robustness.md.
    for key, value in MALLOC_ENV.items():
        env.setdefault(key, value)
    for key, value in ((ENV_PRECISION, precision), (ENV_BACKEND, backend)):
        if value is not None:
            env[key] = value
    for key, value in ((ENV_MODEL, model), (ENV_DATA, data)):
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: give a TCP port between 1 and 65535 (default 8501)")
    model = args.model
    if model is not None:
        if not model.exists():
            raise UserError(
                f"--model {model}: no such model bundle. Give the directory written by `pdl train`."
            )
        model = model.resolve()
    else:
        model = default_model()
        if model is None:
            print(
                "note: no demo model is installed with the package; the app opens without a model "
                "(train one with `pdl train`, then pass --model BUNDLE)",
                file=sys.stderr,
            )
    workdir = args.workdir.expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.data is not None:
        if not args.data.is_dir():
            raise UserError(
                f"--data {args.data}: no such data set directory. Give a data set root "
                "(see `pdl check-dataset`), or leave --data out for the synthetic demo set."
            )
        data = args.data.resolve()
    elif args.dry_run:
        data = None
    else:
        data = ensure_demo_data(workdir)
    command = streamlit_command(args.port, args.host)
    env = app_environment(model, data, workdir, args.precision, args.backend)
    if args.dry_run:
        print(" ".join(command))
        for key in (ENV_MODEL, ENV_DATA, ENV_WORKDIR):
            print(f"{key}={env.get(key, '')}")
        for key, value in ((ENV_PRECISION, args.precision), (ENV_BACKEND, args.backend)):
            if value is not None:
                print(f"{key}={value}")
        return 0
    print(f"starting the app on http://{args.host}:{args.port}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(
        sys.executable, command, env
    )  # replaces this process; Ctrl-C stops streamlit directly
    return 0  # not reached
