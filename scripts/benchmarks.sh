#!/usr/bin/env bash
# Reproduces every CPU figure of docs/benchmarks.md in one go: about 40 minutes on 2 cores (quiet).
# Run it on an otherwise idle machine; each script's report goes to build/benchmarks/<name>.md.
#   bash scripts/benchmarks.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v xvfb-run >/dev/null; then  # the QGIS desktop run of bench_qgis.py
  $( [ "$(id -u)" -eq 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends xvfb xauth
fi
out=${1:-build/benchmarks}
mkdir -p "$out"

run() {
    local name=$1
    shift
    echo "== $name: $*"
    .venv/bin/python "$@" | tee "$out/$name.md"
}

run backbone scripts/bench_backbone.py --threads 2 1 --rounds 9               # targets 1 and 2
run backbone-profile scripts/bench_backbone.py --threads 1 --precision bf16 --rounds 3 --profile --no-reference
run attention scripts/bench_attention.py --rounds 11                            # issue 28: attention kernels
run pipeline-1-thread scripts/bench_pipeline.py --threads 1 --repeats 5 --rounds 5   # target 3
run pipeline-2-threads scripts/bench_pipeline.py --threads 2 --repeats 3
run memory scripts/bench_memory.py --sizes 2048 8192 20000 --mosaic --precision bf16 --threads 2  # target 4
run clustering scripts/bench_clustering.py                                    # target 5
run qgis scripts/bench_qgis.py --desktop                                      # target 7: inside QGIS
run batch scripts/bench_batch.py --rasters 6 --size 1024                      # many rasters: local and Dask
run classify scripts/bench_classify.py                                         # issue 27: the fit vs Segment Trees
run fixed-cost scripts/bench_fixed_cost.py --repeats 5 $(command -v strace >/dev/null && echo --trace 3)  # issue 28
run hectares scripts/bench_hectares.py --side 800                             # issue 25: working resolution
echo "Reports in $out; target 6 (GPU) is scripts/gpu_check.py, on a GPU machine."
