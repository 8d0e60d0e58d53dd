#!/usr/bin/env bash
# stop-seaweedfs.sh DATA_DIR [--purge] — stop only the `weed server` PID recorded by start-seaweedfs.sh.
# weed often does not exit on SIGTERM within seconds, so SIGKILL follows after 10 s.
set -uo pipefail
DIR="${1:?usage: $0 DATA_DIR [--purge]}"
pf="$DIR/weed.pid"
[ -f "$pf" ] || { echo "[seaweedfs-stop] no pid file" >&2; exit 0; }
pid="$(cat "$pf")"
if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$(cd "$DIR" && pwd)/data"; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; echo "[seaweedfs-stop] SIGKILL pid $pid" >&2; fi
  for _ in $(seq 1 25); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  echo "[seaweedfs-stop] stopped pid $pid" >&2
else
  echo "[seaweedfs-stop] pid $pid not running (or not this weed); nothing killed" >&2
fi
rm -f "$pf"
[ "${2:-}" = "--purge" ] && rm -rf "$DIR"
exit 0
