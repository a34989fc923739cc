#!/bin/sh
# Container entrypoint: run the agent as PUID:PGID, chosen at run time (as linuxserver.io images do).
#
#   PUID, PGID   numeric user and group the agent runs as (default 1000:1000): match the owner of
#                your media, so the NFOs and artwork it writes belong to your Radarr/Sonarr user
#   UMASK        optional, e.g. 002 for group-writable files
#   METARR_DATA  the data folder handed to PUID:PGID at start (default /data)
#
# Started as root (the default), it gives METARR_DATA to PUID:PGID and drops to them with setpriv
# (util-linux). Started with `--user`, it runs the command as that user unchanged.
# A first argument that is a metarr-agent command (serve, check-config, ...) runs metarr-agent.
set -eu

case "${1:-}" in
  serve|check-config|migrate|scan|jobs|cache|-*) set -- metarr-agent "$@" ;;
  "") set -- metarr-agent serve --config /config/agent.yaml ;;
esac

if [ -n "${UMASK:-}" ]; then
  umask "$UMASK"
fi

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi

PUID=${PUID:-1000}
PGID=${PGID:-1000}
for pair in "PUID=$PUID" "PGID=$PGID"; do
  case "${pair#*=}" in
    ''|*[!0-9]*) echo "metarr-agent: error: ${pair%%=*} must be a number, got '${pair#*=}'" >&2; exit 1 ;;
  esac
done

data=${METARR_DATA:-/data}
mkdir -p "$data"
if [ "$(stat -c %u:%g "$data")" != "$PUID:$PGID" ]; then
  chown -R "$PUID:$PGID" "$data"   # a changed PUID/PGID takes the existing database and cache along
fi
export HOME="$data"

exec setpriv --reuid="$PUID" --regid="$PGID" --clear-groups -- "$@"
