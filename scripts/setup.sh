#!/usr/bin/env bash
# One-time, idempotent set-up on Debian 12 or 13 (or Ubuntu 24.04 and later): QGIS, GDAL and Python's
# venv from Debian, then .venv with the pinned packages. Needs root or sudo; a second run takes seconds.
#
# torch comes from the first of these that applies (scripts/torch_choice.py decides; the choice, its reason
# and the download size are printed before anything is fetched):
#   TREESEG_TORCH=auto (default)  a local wheel folder (TREESEG_WHEELS, default /opt/wheels) holding a
#                                 torch wheel for this Python; else Debian's python3-torch when apt offers
#                                 one new enough (Debian 13); else the CUDA build when `nvidia-smi -L` lists
#                                 an NVIDIA GPU; else the CPU build
#   TREESEG_TORCH=wheels|debian   force one of those two
#   TREESEG_TORCH=cpu             PyPI for the rest, PyTorch's CPU index for torch (about 200 MiB)
#   TREESEG_TORCH=cuda            PyPI's default Linux build of torch: CUDA, about 2.6 GiB of downloads
set -euo pipefail
cd "$(dirname "$0")/.."

torch_route=${TREESEG_TORCH:-auto}
wheels=${TREESEG_WHEELS:-/opt/wheels}
torch_minimum=2.1  # the oldest torch the engine supports (treeseg_plugin/installer.py says the same)
case "$torch_route" in
  auto | wheels | debian | cpu | cuda) ;;
  *) echo "TREESEG_TORCH=$torch_route: use auto, wheels, debian, cpu or cuda" >&2; exit 2 ;;
esac

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh installs Debian packages: run it as root or install sudo" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
apt_updated=0
apt_update() {
  if [ "$apt_updated" -eq 0 ]; then
    "${sudo_cmd[@]}" apt-get update -qq
    apt_updated=1
  fi
}
apt_install() {  # installs those of the given packages that are not installed yet
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing Debian packages: ${missing[*]}"
  apt_update
  local log
  log=$(mktemp)
  if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" > "$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "apt-get install ${missing[*]} failed" >&2
    return 1
  fi
  rm -f "$log"
}
version_at_least() {  # version_at_least HAVE WANT: HAVE >= WANT, numerically by dotted parts
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# QGIS runs Debian's /usr/bin/python3; the venv sees its packages (PyQGIS, GDAL, numpy).
# ca-certificates: pip's HTTPS (a minbase system has none); python3-venv: ensurepip for the venv;
# qttools5-dev-tools: lrelease, which compiles the translations (scripts/translations.py compile, their test);
# qgis-server: qgis_mapserver, the WMS server on 127.0.0.1 of tests/test_web_layers.py.
apt_install qgis python3-qgis gdal-bin python3-gdal python3-venv python3-pip ca-certificates xvfb qttools5-dev-tools \
  qgis-server

python_version=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
python_tag=cp${python_version/./}
stamp=.venv/.treeseg-setup
wanted=$( { cat requirements/*.txt scripts/setup.sh; echo "$python_version $torch_route"; } | sha256sum | cut -d' ' -f1)

# A venv is reused only if it is whole (pip imports), made by this Python and sees the system packages;
# anything else (half-made by a failed run, another Python, copied from elsewhere) is made again.
venv_ok() {
  [ -x .venv/bin/python ] && grep -qx 'include-system-site-packages = true' .venv/pyvenv.cfg 2>/dev/null &&
    [ "$(.venv/bin/python -c 'import sys, pip; print("%d.%d" % sys.version_info[:2], sys.base_prefix)' 2>/dev/null)" = "$python_version /usr" ]
}
if [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && venv_ok &&
    summary=$(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)' 2>/dev/null); then
  echo "Set-up complete (already done): $summary"
  exit 0
fi
if ! venv_ok; then
  if [ -e .venv ]; then
    echo "Making .venv again: the one here is incomplete or was made by another Python"
    rm -rf .venv
  fi
  if ! /usr/bin/python3 -m venv --system-site-packages .venv; then
    rm -rf .venv  # never leave a half-made venv behind
    echo "Could not make .venv with /usr/bin/python3 -m venv" >&2
    exit 1
  fi
fi
rm -f "$stamp"

# Choose torch's source before any large download.
wheel=""
if [ -d "$wheels" ]; then
  wheel=$(find "$wheels" -maxdepth 1 -name "torch-*-$python_tag-$python_tag-*linux*_$(uname -m).whl" | sort -V | tail -n1)
fi
debian_torch=""
debian_torch_candidate() {
  apt_update
  apt-cache policy python3-torch 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9.]*\).*/\1/p'
}
if [ "$torch_route" = auto ] && [ -z "$wheel" ]; then
  debian_torch=$(debian_torch_candidate)
fi
choice=$(/usr/bin/python3 scripts/torch_choice.py "$torch_route" "$wheel" "$debian_torch" "$torch_minimum")
torch_route=${choice%%$'\t'*}
echo "torch choice: ${choice#*$'\t'}"
pip_args=(--quiet --disable-pip-version-check --only-binary=:all:)
case "$torch_route" in
  wheels)
    [ -n "$wheel" ] || { echo "TREESEG_TORCH=wheels: no torch wheel for $python_tag in $wheels" >&2; exit 1; }
    echo "torch: the local wheel $wheel (other packages from PyPI)"
    torch_pip=("$wheel") ;;
  debian)
    [ -n "$debian_torch" ] || debian_torch=$(debian_torch_candidate)
    if [ -z "$debian_torch" ] || ! version_at_least "$debian_torch" "$torch_minimum"; then
      echo "TREESEG_TORCH=debian: apt offers python3-torch '${debian_torch:-none}', TreeSeg needs $torch_minimum or newer" >&2
      exit 1
    fi
    echo "torch: Debian's python3-torch $debian_torch (CPU build, from apt)"
    apt_install python3-torch
    torch_pip=() ;;
  cpu)
    echo "torch: the CPU build from https://download.pytorch.org/whl/cpu (about 200 MiB)"
    torch_pip=(--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
      -r requirements/torch.txt) ;;
  cuda)
    echo "torch: PyPI's CUDA build, about 2.6 GiB of downloads"
    torch_pip=(-r requirements/torch.txt) ;;
esac

# Never replace what QGIS's Python already has: numpy (GDAL and QGIS were built against it) and a
# Debian torch are pinned at their installed versions, and nothing is ever built from source.
constraints=.venv/treeseg-constraints.txt
pinned=numpy
[ "$torch_route" = debian ] && pinned="numpy torch"
/usr/bin/python3 - $pinned > "$constraints" <<'EOF'
import importlib.metadata
import sys
for name in sys.argv[1:]:
    try:
        print(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
        pass
EOF
echo "Keeping the system's $(tr '\n' ' ' < "$constraints")"
if [ ${#torch_pip[@]} -gt 0 ]; then
  PIP_CONSTRAINT="$PWD/$constraints" .venv/bin/python -m pip install "${pip_args[@]}" "${torch_pip[@]}"
fi
PIP_CONSTRAINT="$PWD/$constraints" .venv/bin/python -m pip install "${pip_args[@]}" -r requirements/dev.txt

torch_version=$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])')
if ! version_at_least "$torch_version" "$torch_minimum"; then
  echo "torch $torch_version is too old: TreeSeg needs $torch_minimum or newer" >&2
  exit 1
fi
echo "$wanted" > "$stamp"
echo "Set-up complete: $(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
