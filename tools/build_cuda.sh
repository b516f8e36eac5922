#!/usr/bin/env bash
# Builds `trainer` with `--features nccl` (CUDA, and NCCL for multi-GPU training) on a Debian 12 machine without a GPU, for a machine
# with one: CUDA 13 driver and PyTorch's CUDA 13 wheels, but no Rust toolchain (this
# project's device machine). The result is target/cuda/trainer; tools/cuda_check.sh runs it.
#
# - candle-kernels compiles its kernels to PTX with nvcc. Debian's only nvcc is CUDA 11.8
#   (non-free), which knows no `compute_90a`, so the kernels are built for compute 8.0; the
#   driver compiles that PTX for the GPU it finds (Hopper included) when the program starts.
# - cudarc (candle's CUDA bindings) links libcublas, libcublasLt, libnvrtc and libcurand by
#   soname. To find CUDA 13's sonames at run time it is built for the CUDA 13.0 API
#   (CUDARC_CUDA_VERSION) and linked against the CUDA 13 libraries of NVIDIA's PyPI wheels;
#   libcuda comes from the driver, linked here against the toolkit's stub. NCCL (libnccl.so.2)
#   comes from the same place: NVIDIA's `nvidia-nccl-cu13` wheel, which PyTorch's CUDA 13
#   wheels install too. cudarc binds NCCL's 2.30 API; the soname is stable across 2.x.
#   FEATURES=cuda builds without NCCL.
#
#   bash tools/build_cuda.sh      # about 15 minutes on 2 cores, after the downloads
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${CUDA_BUILD_DIR:-$PWD/target/cuda-build}
mkdir -p "$WORK" target/cuda

if ! command -v nvcc >/dev/null; then
  if ! apt-cache policy nvidia-cuda-toolkit | grep -q "Candidate: [0-9]"; then
    cat > /etc/apt/sources.list.d/ruac-non-free.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    apt-get update
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nvidia-cuda-toolkit
fi
stub=$(find /usr/lib/x86_64-linux-gnu/stubs /usr/local/cuda/lib64/stubs -name libcuda.so 2>/dev/null | head -1 || true)
[ -n "$stub" ] || { echo "no libcuda.so stub found (it comes with nvidia-cuda-toolkit)"; exit 1; }

lib=$WORK/wheels/nvidia/cu13/lib
nccl=$WORK/wheels/nvidia/nccl/lib
if [ ! -e "$lib/libcublas.so.13" ] || [ ! -e "$lib/libcudart.so.13" ] || [ ! -e "$nccl/libnccl.so.2" ]; then
  python3 -m pip download --no-deps -d "$WORK/dl" \
    "nvidia-cublas>=13,<14" "nvidia-cuda-nvrtc>=13,<14" "nvidia-curand>=10.4,<11" \
    "nvidia-cuda-runtime>=13,<14" "nvidia-nccl-cu13>=2.30,<3"
  for w in "$WORK"/dl/*.whl; do python3 -m zipfile -e "$w" "$WORK/wheels"; done
fi
mkdir -p "$WORK/home/lib"
for so in libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13 libcurand.so.10; do
  ln -sf "$lib/$so" "$WORK/home/lib/${so%%.so*}.so"
done
ln -sf "$nccl/libnccl.so.2" "$WORK/home/lib/libnccl.so"
ln -sf "$stub" "$WORK/home/lib/libcuda.so"
# cudarc searches only $CUDA_HOME once it is set; the kernels' headers are the toolkit's.
inc=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")/include
[ -e "$inc/cuda.h" ] || inc=/usr/include
ln -sfn "$inc" "$WORK/home/include"

CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80} CUDARC_CUDA_VERSION=13000 CUDA_HOME="$WORK/home" \
  cargo build --release -p trainer --features "${FEATURES:-nccl}" --target-dir "$WORK/target"
cp "$WORK/target/release/trainer" target/cuda/trainer
echo "built target/cuda/trainer (--features ${FEATURES:-nccl}): $(du -h target/cuda/trainer | cut -f1)"
