#!/usr/bin/env bash
# garage-stop.sh DIR [--node I] [--purge]: stops the Garage nodes garage-start.sh started in DIR
# (only node I with --node, leaving its data for garage-start.sh DIR --node I). Only the PIDs
# recorded in DIR/node*/garage.pid are signalled, and only while each still runs garage with that
# directory's configuration: SIGTERM, then SIGKILL after 10 s. --purge then removes DIR.
set -uo pipefail
DIR=""
NODE=""
PURGE=false
while [ $# -gt 0 ]; do
  case "$1" in
    --node) NODE="$2"; shift 2 ;;
    --purge) PURGE=true; shift ;;
    *) DIR="$1"; shift ;;
  esac
done
[ -n "$DIR" ] || { echo "usage: $0 DIR [--node I] [--purge]" >&2; exit 2; }
log() { echo "[garage-stop] $*" >&2; }
[ -d "$DIR" ] || { log "no directory $DIR"; exit 0; }
DIR="$(cd "$DIR" && pwd)"
running() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
if [ -n "$NODE" ]; then pidfiles=("$DIR/node$NODE/garage.pid"); else pidfiles=("$DIR"/node*/garage.pid); fi
rc=0
for pf in "${pidfiles[@]}"; do
  [ -f "$pf" ] || continue
  pid="$(cat "$pf")"
  cfg="$(dirname "$pf")/garage.toml"
  if ! running "$pid"; then rm -f "$pf"; continue; fi
  if ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$cfg"; then
    log "pid $pid is not the garage of $cfg; left alone"; rm -f "$pf"; continue
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 50); do running "$pid" || break; sleep 0.2; done
  if running "$pid"; then
    log "pid $pid still running 10 s after SIGTERM; SIGKILL"
    kill -KILL "$pid"
    for _ in $(seq 1 50); do running "$pid" || break; sleep 0.1; done
  fi
  if running "$pid"; then log "pid $pid is still running"; rc=1; else log "stopped $(basename "$(dirname "$pf")") (pid $pid)"; rm -f "$pf"; fi
done
if $PURGE && [ -z "$NODE" ] && [ $rc -eq 0 ]; then rm -rf "$DIR"; fi
exit $rc
