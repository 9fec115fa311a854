#!/usr/bin/env bash
# Create .venv in the repo root, install petmatch with everything the tests, training and the
# ONNX export need, migrate the embedded SQLite database and export the ONNX models.
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch 2.13.0 (CPU) is only needed to export ONNX models and to train; the bot runs on ONNX Runtime.
.venv/bin/python -m pip install --quiet -e ".[dev,train]"
.venv/bin/petmatch db upgrade
.venv/bin/petmatch models prepare
