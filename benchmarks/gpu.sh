#!/usr/bin/env bash
# The GPU benchmark of issue 13, for a machine with one CUDA GPU and its own torch (no package registry needed):
#   git clone ... && cd eoe_nb && bash benchmarks/gpu.sh            # full size, < 8 minutes on one H100-class GPU
#   bash benchmarks/gpu.sh --tiny --device cpu                        # the same script at a tiny size on a CPU
# eoe_nb is used from this checkout (PYTHONPATH; or `pip install --no-deps -e .` beforehand); it needs torch, numpy and
# pillow only for this script (open_clip optional: the CLIP part is skipped without it). Writes gpu_bench.json (--out).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
$PY -c "import torch, numpy; print('torch', torch.__version__, '| CUDA available:', torch.cuda.is_available())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
exec $PY benchmarks/gpu_bench.py "$@"
