#!/usr/bin/env bash
# The GPU check (issue #13), driver for a CUDA machine. See benchmarks/README.md, "GPU check".
#
#   scripts/gpu_check.sh [gpu_check.py options]      # e.g. --duration 1 --skip bench
#
# 1. Reassembles the onnxruntime-gpu wheel from .gpu_check/wheel/*.whl.part-* (if there), checks its
#    sha256 and installs it with --no-deps into its own folder ($WORK/site), first on PYTHONPATH, so the
#    CPU `onnxruntime` of the machine cannot shadow it. Also installs .gpu_check/deps/*.whl (pytest, …)
#    into $WORK/deps when the machine lacks them.
# 2. Puts the CUDA/cuDNN libraries of the nvidia-* pip packages on LD_LIBRARY_PATH (for every child
#    process: pytest, `edgecnn bench`) and links them beside the wheel so that onnxruntime.preload_dlls()
#    finds them too (it looks in the site folder onnxruntime is installed in: nvidia/cu13/lib, nvidia/cudnn/lib).
# 3. Runs benchmarks/gpu_check.py --provider cuda; results in $OUT (else runs/gpu_check).
# Environment: PYTHON (default python3), GPU_CHECK_WORK (default /tmp/edgecnn-gpu), GPU_WHEEL_DIR,
# GPU_CHECK_DEPS. Exit: gpu_check.py's (0 all passed, 4 a check failed, 3 setup), 3 if the wheel is broken.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 3
PY="${PYTHON:-python3}"
WORK="${GPU_CHECK_WORK:-/tmp/edgecnn-gpu}"
PARTS="${GPU_WHEEL_DIR:-$ROOT/.gpu_check/wheel}"
DEPS="${GPU_CHECK_DEPS:-$ROOT/.gpu_check/deps}"
OUT_DIR="${OUT:-$ROOT/runs/gpu_check}"
mkdir -p "$WORK" "$OUT_DIR"
log() { echo "[gpu_check.sh $(date -u +%H:%M:%S)] $*"; }
t0=$(date +%s)

# -- 1. the wheel, in its own folder ------------------------------------------------------------------------
first=$(ls "$PARTS"/*.whl.part-aa 2>/dev/null | head -n 1)
if [ -n "$first" ]; then
    whl="$(basename "${first%.part-aa}")"
    log "reassembling $whl from $(ls "$PARTS/$whl".part-* | wc -l) part(s)"
    cat "$PARTS/$whl".part-* > "$WORK/$whl" || exit 3
    if [ -f "$PARTS/$whl.sha256" ]; then
        (cd "$WORK" && sha256sum -c "$PARTS/$whl.sha256") || { log "wheel sha256 mismatch"; exit 3; }
    else
        log "no $whl.sha256 beside the parts: size only, $(stat -c %s "$WORK/$whl") bytes"
    fi
    rm -rf "$WORK/site"
    "$PY" -m pip install --quiet --no-deps --no-index --target "$WORK/site" "$WORK/$whl" || { log "pip install failed"; exit 3; }
    rm -f "$WORK/$whl"
elif [ ! -d "$WORK/site/onnxruntime" ]; then
    log "no wheel parts in $PARTS and nothing installed in $WORK/site: using the machine's own onnxruntime"
fi
extra=""
if ! "$PY" -c "import pytest, matplotlib" 2>/dev/null && ls "$DEPS"/*.whl >/dev/null 2>&1; then
    log "installing $(ls "$DEPS"/*.whl | wc -l) wheel(s) from $DEPS into $WORK/deps"
    "$PY" -m pip install --quiet --no-deps --no-index --target "$WORK/deps" "$DEPS"/*.whl || exit 3
    extra=":$WORK/deps"
fi
[ -d "$WORK/site/onnxruntime" ] && site="$WORK/site:" || site=""
export PYTHONPATH="$site$ROOT$extra${PYTHONPATH:+:$PYTHONPATH}"

# -- 2. the CUDA libraries of the nvidia pip packages --------------------------------------------------------
nvidia_root=$(env -u PYTHONPATH "$PY" -c "import nvidia, os; print(os.path.realpath(list(nvidia.__path__)[0]))" 2>/dev/null)
libs=""
if [ -n "$nvidia_root" ]; then
    libs=$(ls -d "$nvidia_root"/*/lib 2>/dev/null | paste -sd: -)
    if [ -n "$site" ] && [ ! -e "$WORK/site/nvidia" ]; then ln -s "$nvidia_root" "$WORK/site/nvidia"; fi
fi
log "nvidia pip libraries: ${libs:-none found}"
export EDGECNN_NVIDIA_LIBS="$libs"
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$PY" - <<'EOF'
import io, contextlib, onnxruntime as ort
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    ort.preload_dlls()
print(f"[gpu_check.sh] onnxruntime {ort.__version__} from {ort.__file__}, device {ort.get_device()}")
print(f"[gpu_check.sh] providers available: {ort.get_available_providers()}")
print(f"[gpu_check.sh] preload_dlls(): {buf.getvalue().strip() or 'ok, nothing printed'}")
EOF
ldconfig -p 2>/dev/null | grep -E "libcudnn\.so|libcudart\.so|libcublas\.so" | sed 's/^/[gpu_check.sh] system: /' | head -n 6
log "setup took $(( $(date +%s) - t0 )) s"

# -- 3. the check -----------------------------------------------------------------------------------------------
"$PY" benchmarks/gpu_check.py --provider cuda --out "$OUT_DIR" "$@"
rc=$?
log "gpu_check.py exit $rc after $(( $(date +%s) - t0 )) s; results in $OUT_DIR"
exit $rc
