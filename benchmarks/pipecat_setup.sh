#!/usr/bin/env bash
# Creates benchmarks/.venv-pipecat: the separate venv that benchmarks/pipecat_turn_overhead.py
# runs in (pipecat is not a voxgate dependency and must not share voxgate's .venv).
#
#   bash benchmarks/pipecat_setup.sh
#   benchmarks/.venv-pipecat/bin/python benchmarks/pipecat_turn_overhead.py --turns 40 --json out.json
#
# Pinned: pipecat-ai[websocket]==1.14.0 (the `websocket` extra brings fastapi; `websockets` is a core
# dependency) plus uvicorn==0.55.0 to serve the FastAPI app. Pipecat's `runner` extra would also
# bring uvicorn, but with pipecat-ai-prebuilt and more, so uvicorn is pinned on its own. No extra
# that pulls torch is used (no silero/local-smart-turn/whisper); the Twilio serializer needs no
# extra. Every transitive version is pinned below, as resolved from PyPI for CPython 3.11.
#
# Env: PYTHON (interpreter, default python3.11), PIPECAT_VENV (default benchmarks/.venv-pipecat).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
VENV="${PIPECAT_VENV:-$HERE/.venv-pipecat}"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if command -v python3.11 >/dev/null 2>&1; then
    PYTHON=python3.11
  elif [ -x "$ROOT/.venv/bin/python" ]; then
    # The interpreter voxgate's own venv was made from.
    PYTHON="$("$ROOT/.venv/bin/python" -c 'import sys; print(sys.base_prefix)')/bin/python3"
  else
    PYTHON=python3
  fi
fi
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 10) else "pipecat 1.14 needs Python >= 3.10")'

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
cat >"$CONSTRAINTS" <<'EOF'
pipecat-ai==1.14.0
uvicorn==0.55.0
aiofiles==25.1.0
aiohappyeyeballs==2.7.1
aiohttp==3.14.5
aiosignal==1.4.0
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
cffi==2.1.1
click==8.5.1
docopt==0.6.2
docstring_parser==0.18.0
fastapi==0.165.0
flatbuffers==25.12.19
frozenlist==1.8.0
h11==0.16.0
httpcore2==2.16.2
httpx2==2.16.2
idna==3.20
jiter==0.19.0
llvmlite==0.50.0
loguru==0.7.3
loudness==0.2.0
Markdown==3.11.3
multidict==7.2.1
num2words==0.5.14
numba==0.68.1
numpy==2.4.6
onnxruntime==1.32.0
openai==3.60.0
opentelemetry-api==1.45.2
packaging==26.4
pillow==13.0.0
propcache==0.5.4
protobuf==6.33.6
pycparser==3.12
pydantic==2.14.4
pydantic_core==2.50.5
python-dotenv==1.2.4
PyYAML==6.0.4
resampy==0.4.3
sentencex==1.0.32
sniffio==1.3.1
soundfile==0.13.1
soxr==1.0.0
starlette==1.10.0
truststore==0.10.5
typing-inspection==0.4.5
typing_extensions==4.16.0
wait_for2==0.4.1
websockets==17.4
yarl==1.25.1
EOF

"$VENV/bin/python" -m pip install -q -c "$CONSTRAINTS" "pipecat-ai[websocket]==1.14.0" "uvicorn==0.55.0"
"$VENV/bin/python" -c 'import pipecat, fastapi, uvicorn, websockets; print("pipecat", pipecat.__version__, "| fastapi", fastapi.__version__, "| uvicorn", uvicorn.__version__, "| websockets", websockets.__version__)'
echo "ready: $VENV/bin/python $HERE/pipecat_turn_overhead.py --turns 40"
