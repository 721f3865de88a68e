#!/usr/bin/env bash
# Install the Debian packages the identity-document tests and evaluation need:
# fonts-ocr-b (the OCR-B face generated MRZs are printed in) and tesseract-ocr with
# its English data (the OCR engine measured against the ONNX one, docs/engine.md).
# Idempotent: does nothing when both are already there.
set -euo pipefail

FONT=/usr/share/fonts/opentype/ocr-b/OCRB.otf
if [ -f "$FONT" ] && command -v tesseract >/dev/null 2>&1; then
    echo "fonts-ocr-b and tesseract-ocr already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-documents.sh: run as root (or install sudo) to apt-get install" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends fonts-ocr-b tesseract-ocr tesseract-ocr-eng
tesseract --version | head -n1
