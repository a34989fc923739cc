#!/bin/sh
# Install Metarr Agent from this source tree into PREFIX (default /opt/metarr-agent) with a venv of its own.
#
#   sudo deploy/install.sh [PREFIX]
#
# PREFIX/.venv is made afresh (python3 -m venv --clear) and the agent is installed into it from a
# clean copy of the tree, not in editable mode: nothing in PREFIX points back at this clone, and the
# clone's own .venv, data/, media/, config/agent.yaml and .git are never copied. PREFIX also gets
# nfo_templates/, config/agent.example.yaml and deploy/ (the systemd unit, these guides).
# Run it again to upgrade (stop the service first). PYTHON picks the interpreter (default python3);
# pip's own variables (PIP_INDEX_URL, PIP_FIND_LINKS, ...) pass through.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-/opt/metarr-agent}
python=${PYTHON:-python3}
case "$prefix" in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac

if [ ! -f "$src/pyproject.toml" ] || [ ! -d "$src/agent" ]; then
  echo "install.sh: $src is not a Metarr Agent source tree" >&2
  exit 1
fi

# A clean copy to build from: the tree minus everything personal or generated.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
(cd "$src" && tar -cf - --exclude=./.venv --exclude=./.git --exclude=./data --exclude=./media \
    --exclude=./artifacts --exclude=./config/agent.yaml --exclude='*.egg-info' --exclude=./build \
    --exclude='__pycache__' --exclude='.env' --exclude=./.pytest_cache --exclude=./.ruff_cache .) \
  | (cd "$stage" && tar -xf -)

mkdir -p "$prefix"
"$python" -m venv --clear "$prefix/.venv"
"$prefix/.venv/bin/python" -m pip install --quiet "$stage"

for part in nfo_templates deploy; do
  rm -rf "${prefix:?}/$part"
  cp -R "$stage/$part" "$prefix/$part"
done
mkdir -p "$prefix/config"
cp "$stage/config/agent.example.yaml" "$prefix/config/agent.example.yaml"
cp "$stage/README.md" "$prefix/README.md"

version=$("$prefix/.venv/bin/metarr-agent" --version)
echo "installed $version in $prefix (run it as $prefix/.venv/bin/metarr-agent)"
