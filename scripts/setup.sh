#!/usr/bin/env bash
# One-time, idempotent set-up on Debian 12: QGIS + GDAL from Debian, then .venv with the pinned packages.
# A second run checks and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(qgis python3-qgis gdal-bin python3-gdal)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# QGIS runs Debian's /usr/bin/python3; the venv sees its packages (PyQGIS, GDAL, numpy 1.24).
stamp=.venv/.treeseg-requirements
wanted=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  # PIP_CONSTRAINT keeps Debian's numpy. Where a local wheel folder exists (/opt/wheels on our build
  # machines), torch==2.13.0 comes from there as the CPU build instead of PyPI's multi-GB CUDA build.
  find_links=()
  [ -d /opt/wheels ] && find_links=(--find-links /opt/wheels)
  PIP_CONSTRAINT="$PWD/requirements/constraints.txt" .venv/bin/python -m pip install --quiet \
    --disable-pip-version-check "${find_links[@]}" -r requirements/dev.txt
  echo "$wanted" > "$stamp"
fi
echo "Set-up complete: $(.venv/bin/python -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)')"
