#!/usr/bin/env bash
# Install ranksearch from this offline bundle. Needs no network: pip runs with
# --no-index and sees only ./wheelhouse.
#
#   ./install.sh [--prefix DIR] [--python PYTHON] [--data-dir DIR] [--no-self-check]
#
#   --prefix DIR      where to install (default /opt/ranksearch): DIR/venv is the
#                     virtualenv, DIR/models/default the default encoder,
#                     DIR/etc the example configs and deploy files
#   --python PYTHON   interpreter for the virtualenv (default python3.11); it must
#                     match the bundle's Python version (see MANIFEST.json)
#   --data-dir DIR    the server's data dir: seeded with the default model (if it
#                     has none) and checked by the self-check (default: the
#                     self-check uses a temporary folder, removed afterwards)
#   --no-self-check   skip `ranksearch version` / `ranksearch doctor`
#
# Re-running it upgrades in place: the virtualenv is rebuilt from the bundle's
# wheels; the data dir is never touched.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX=/opt/ranksearch
PYTHON=python3.11
DATA_DIR=""
SELF_CHECK=1

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --no-self-check) SELF_CHECK=0; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || fail "interpreter '$PYTHON' not found (pass --python)"
want="$(sed -n 's/.*"python_version": "\([0-9.]*\)".*/\1/p' "$HERE/MANIFEST.json")"
have="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$want" = "$have" ] || fail "bundle is for Python $want but '$PYTHON' is $have (pass --python, or build a bundle with --python-version $have)"
[ "$(uname -m)" = "x86_64" ] || fail "bundle is for x86_64, this machine is $(uname -m)"

# pip must see the bundle's wheels and nothing else: no config files, no index.
unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_CONSTRAINT PIP_REQUIREMENT
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

version="$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$HERE/MANIFEST.json")"
echo "installing ranksearch $version into $PREFIX"
mkdir -p "$PREFIX"
# Keep the previous virtualenv for a rollback (RUNBOOK.md, "Upgrade"); put it back
# if this install fails half-way.
if [ -d "$PREFIX/venv" ]; then rm -rf "$PREFIX/venv.previous"; mv "$PREFIX/venv" "$PREFIX/venv.previous"; fi
restore_previous() {
  rm -rf "$PREFIX/venv"
  if [ -d "$PREFIX/venv.previous" ]; then mv "$PREFIX/venv.previous" "$PREFIX/venv"; fi
  fail "installation failed; the previous installation (if any) was put back"
}
"$PYTHON" -m venv "$PREFIX/venv" || restore_previous
"$PREFIX/venv/bin/python" -m pip install --quiet --no-index \
  --find-links "$HERE/wheelhouse" "ranksearch==$version" || restore_previous

if [ -d "$HERE/model/default" ]; then
  mkdir -p "$PREFIX/models"
  rm -rf "$PREFIX/models/default"
  cp -r "$HERE/model/default" "$PREFIX/models/default"
fi
# Seed the data dir with the default model, so the first start need not convert it.
if [ -n "$DATA_DIR" ] && [ -d "$PREFIX/models/default" ] && [ ! -e "$DATA_DIR/models/default" ]; then
  mkdir -p "$DATA_DIR/models"
  cp -r "$PREFIX/models/default" "$DATA_DIR/models/default"
  echo "seeded $DATA_DIR/models/default"
fi
mkdir -p "$PREFIX/etc"
mkdir -p "$PREFIX/etc/examples"
cp -r "$HERE/configs/." "$PREFIX/etc/examples/"
cp -r "$HERE/deploy/." "$PREFIX/etc/"
cp "$HERE/MANIFEST.json" "$PREFIX/etc/MANIFEST.json"

if [ "$SELF_CHECK" = 1 ]; then
  echo "self-check:"
  "$PREFIX/venv/bin/ranksearch" version
  tmp=""
  if [ -z "$DATA_DIR" ]; then tmp="$(mktemp -d)"; DATA_DIR="$tmp"; fi
  model_args=()
  if [ -d "$PREFIX/models/default" ]; then model_args=(--model "$PREFIX/models/default"); fi
  status=0
  "$PREFIX/venv/bin/ranksearch" doctor --data-dir "$DATA_DIR" "${model_args[@]}" || status=$?
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  [ "$status" = 0 ] || fail "self-check failed (see the doctor output above)"
fi
echo "installed: $PREFIX/venv/bin/ranksearch (next: RUNBOOK.md, 'First start')"
