#!/usr/bin/env bash
# Runs the README's test command (bash scripts/test.sh), or with --demo the demo (bash scripts/demo.sh),
# in a fresh Debian minbase root, as a new user would on a fresh machine: the root is made with
# debootstrap (plus git, nothing else) and the project's own scripts/setup.sh sets it up inside.
#   --release 13 (default): Debian 13 (trixie), QGIS 3.44 from trixie-backports (3.40 from trixie with
#                 --qgis 3.40, or where the archive serves no 3.44), Python 3.13, numpy 2, Debian's torch.
#   --release 12: Debian 12 (bookworm), QGIS 3.22, Python 3.11, numpy 1.24. Debian 12 has no python3-torch
#                 and PyPI serves only the CUDA build, so setup.sh takes torch from a local wheel folder:
#                 the host's $TREESEG_WHEELS (default /opt/wheels), when it has one, is bind-mounted
#                 read-only at /opt/wheels in the root (inside the private namespace only).
#   sudo bash scripts/debian_root.sh [--release 12|13] [--qgis 3.44|3.40] [--fresh] [--demo] [pytest arguments...]
# Each root is kept in $TREESEG_ROOT_CACHE (default /var/cache/treeseg), one folder per release, so a
# second run starts in seconds; --fresh builds it again from nothing. The job runs in its own mount and
# PID namespaces: the /proc, /dev, /tmp and wheel folder it mounts into the root exist only there and go
# with its last process.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

fresh=0
demo=0
release=13
qgis=3.44
while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --demo) demo=1; shift ;;
    --release) release=$2; shift 2 ;;
    --qgis) qgis=$2; shift 2 ;;
    *) break ;;
  esac
done
case "$release" in
  13) suite=trixie ;;
  12) suite=bookworm; qgis=3.22 ;;  # bookworm's own QGIS; --qgis does not apply
  *) echo "--release: 12 or 13" >&2; exit 2 ;;
esac
case "$qgis" in 3.44 | 3.40 | 3.22) ;; *) echo "--qgis: 3.44 or 3.40" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=TREESEG_ROOT_CACHE,TREESEG_TORCH,TREESEG_WHEELS bash "$0" "$@"
fi

cache=${TREESEG_ROOT_CACHE:-/var/cache/treeseg}
if [ "$release" = 13 ]; then root=$cache/debian-13-qgis$qgis; else root=$cache/debian-12; fi
wheels=${TREESEG_WHEELS:-/opt/wheels}
[ -d "$wheels" ] || wheels=""
# One run per root at a time: a root holds one working copy (work/treeseg), which a second run would replace
# under the first. A second run waits here for the first to end (the lock goes with its process).
mkdir -p "$cache"
exec 9>"$root.lock"
if ! flock -n 9; then
  echo "Another debian_root.sh run is using $root: waiting for it to end"
  flock 9
fi
# The Debian mirror the host's apt already uses (deb822 "URIs:" or one-line "deb" entries).
mirror=$( { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } |
  sed -n -e 's/^URIs: *\([^ ]*\/debian\)\/\?$/\1/p' -e 's/^deb \(\[[^]]*\] \)\?\([^ ]*\/debian\)\/\? .*/\2/p' | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

target=$root
in_root() {  # in_root COMMAND...: runs COMMAND in $target, in a private mount and PID namespace
  unshare --mount --propagation private --pid --fork --kill-child bash -euo pipefail -c '
    root=$1 wheels=$2; shift 2
    mount -t proc proc "$root/proc"
    mount -t sysfs -o ro sysfs "$root/sys"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    mount -t tmpfs -o mode=755 tmpfs "$root/dev"  # a minimal /dev of its own, never the host'"'"'s
    for node in null zero full random urandom tty; do
      touch "$root/dev/$node"
      mount --bind "/dev/$node" "$root/dev/$node"
    done
    mkdir "$root/dev/pts" "$root/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
    ln -s pts/ptmx "$root/dev/ptmx"
    mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
    ln -s /proc/self/fd "$root/dev/fd"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    if [ -n "$wheels" ]; then  # the host wheel folder, read-only, where setup.sh looks by default
      mkdir -p "$root/opt/wheels"
      mount --bind "$wheels" "$root/opt/wheels"
      mount -o remount,bind,ro "$root/opt/wheels"
    fi
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb TREESEG_TORCH="${TREESEG_TORCH:-auto}" \
      TREESEG_PIP_CERT="${TREESEG_PIP_CERT:-}" \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' bash "$target" "$wheels" "$@"
}

if [ "$fresh" -eq 1 ] || [ ! -e "$root/.treeseg-root" ]; then
  start=$SECONDS
  if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
  fi
  rm -rf "$root" "$root.partial"
  mkdir -p "$cache"
  echo "Building a Debian $release ($suite) minbase root in $root from $mirror"
  debootstrap --variant=minbase --include=git "$suite" "$root.partial" "$mirror" > "$root.debootstrap.log" ||
    { tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
  target=$root.partial
  if [ "$release" = 13 ] && [ "$qgis" = 3.44 ]; then
    echo "deb $mirror trixie-backports main" > "$root.partial/etc/apt/sources.list.d/trixie-backports.list"
    cat > "$root.partial/etc/apt/preferences.d/treeseg-qgis" <<'EOF'
# QGIS from trixie-backports (3.44); everything else from trixie.
Package: qgis qgis-* libqgis* python3-qgis python3-qgis-common
Pin: release n=trixie-backports
Pin-Priority: 500
EOF
    in_root apt-get update -qq
    candidate=$(in_root apt-cache policy qgis | sed -n 's/^ *Candidate: *//p')
    if [[ "$candidate" != 3.44* ]]; then
      echo "trixie-backports serves no QGIS 3.44 from $mirror (candidate: ${candidate:-none}): using Debian 13's QGIS"
      rm "$root.partial/etc/apt/preferences.d/treeseg-qgis"
    fi
  fi
  mkdir -p "$root.partial/work"
  touch "$root.partial/.treeseg-root"
  mv "$root.partial" "$root"
  target=$root
  echo "Root built in $((SECONDS - start)) s"
fi

# The working tree as CI's clone has it (tracked and new files, nothing ignored); the root's .venv stays.
dest=$root/work/treeseg
mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
git -C "$repo" ls-files -z --cached --others --exclude-standard |
  (cd "$repo" && while IFS= read -r -d '' path; do [ -e "$path" ] && printf '%s\0' "$path"; done) |
  tar -C "$repo" --null -T - -cf - | tar -C "$dest" -xf -

# The host's local certificate authorities (a TLS-inspecting proxy's, say) are trusted in the root too;
# pip is told to use the system's bundle, which ca-certificates (installed by setup.sh) builds from them.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  export TREESEG_PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi

if [ -n "$wheels" ]; then
  echo "The host's wheel folder $wheels is mounted read-only at /opt/wheels in the root ($(ls "$wheels" | tr '\n' ' '))"
fi
if [ "$demo" -eq 1 ]; then command=(bash scripts/demo.sh "$@"); else command=(bash scripts/test.sh "$@"); fi
echo "Running ${command[*]} in $root"
in_root bash -c 'cd /work/treeseg
  if [ -n "${TREESEG_PIP_CERT:-}" ]; then
    export PIP_CERT=$TREESEG_PIP_CERT
    if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; fi
  fi
  start=$SECONDS
  bash scripts/setup.sh
  echo "setup.sh took $((SECONDS - start)) s; QGIS $(dpkg-query -W -f="\${Version}" qgis), $(python3 --version)"
  start=$SECONDS
  status=0
  "$@" || status=$?
  echo "$* took $((SECONDS - start)) s (exit status $status)"
  exit "$status"' bash "${command[@]}"
if [ "$demo" -eq 1 ]; then
  ls -l "$dest/build/demo/OSBS_029_labels.tif"  # the labels the demo wrote, seen from the host
fi
