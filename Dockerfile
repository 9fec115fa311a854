# petmatch bot: CPU-only stack. Inference runs on ONNX Runtime; torch (CPU wheel) is installed
# only to export the ONNX models once at build time, then removed to keep the image small.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PETMATCH_HOME=/data

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY reid ./reid
COPY segmentation ./segmentation
COPY index ./index
COPY text ./text
COPY configs ./configs

RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install -e ".[train]" \
    && PETMATCH_HOME=/app/var petmatch models prepare \
    && pip uninstall -y torch

VOLUME ["/data"]
# Models exported at build time live in the image; photos, index and the lock live in /data.
ENV PETMATCH_MODELS_DIR=/app/var/models
CMD ["sh", "-c", "petmatch db upgrade && petmatch run"]
