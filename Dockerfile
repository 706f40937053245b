# GPU-capable image for the app and training jobs.
# TensorFlow's `and-cuda` extra brings the CUDA and cuDNN libraries as wheels, so any host with an
# NVIDIA driver and the NVIDIA container toolkit can run it with `--gpus all`; without a GPU it
# runs on the CPU. Models, data sets and job workdirs are mounted, not baked in.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PDL_WORKDIR=/workdir

WORKDIR /opt/panoptic-deeplab
COPY requirements.txt ./
RUN pip install -r requirements.txt "tensorflow[and-cuda]==2.21.0"

COPY pyproject.toml setup.py README.md ./
COPY core ./core
COPY app ./app
COPY assets ./assets
# A regular install: the app and the demo model go inside the package, as in the wheel.
RUN pip install --no-deps . && rm -rf build

RUN useradd --create-home --uid 1000 pdl && mkdir -p /workdir /data && chown pdl /workdir /data
USER 1000
VOLUME ["/workdir", "/data"]
EXPOSE 8501

# The app binds to all interfaces inside the container only; publish it with -p 127.0.0.1:8501:8501.
ENTRYPOINT ["pdl"]
CMD ["app", "--host", "0.0.0.0", "--port", "8501"]
