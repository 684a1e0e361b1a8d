#!/usr/bin/env bash
# tape_batch.bash archive|confirm [--html DIR] [--drive NAME] [tapeop options...]
#
# Loops `tapeop archive` or `tapeop confirm next` until tapeop exits non-zero
# (40: nothing left, 41: stop requested, 42: archive failed, 43: tape full,
# 1: a confirm failed), printing the date each round and appending everything
# to backup.log in the current directory (backup.NAME.log with --drive NAME,
# so that one batch per drive of a tape library keeps its own log). Exits
# with tapeop's last code.
# With --html DIR, `tapeop report --html DIR` refreshes the status page after
# each job (with the same -c/--config-file); a page that cannot be written
# is one line in the log, never the end of the batch.
# Ctrl-C reaches tapeop (which finishes the job in hand, records it and exits
# 41) but not tee (-i): the log keeps everything up to the end.
set -u

usage() { echo "usage: $0 archive|confirm [--html DIR] [tapeop options...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
mode=$1; shift
case "$mode" in
  archive) args=(archive) ;;
  confirm) args=(confirm next) ;;
  *) usage ;;
esac

# --html DIR is ours; every other option goes to tapeop.
html=
rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --html) [ $# -ge 2 ] || usage; html=$2; shift 2 ;;
    --html=*) html=${1#--html=}; shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
set -- ${rest[@]+"${rest[@]}"}

log=backup.log
prev=
config=()
for arg in "$@"; do
  case "$arg" in
    --drive=*) log="backup.${arg#--drive=}.log" ;;
    --config-file=*) config=("$arg") ;;
    *)
      [ "$prev" = --drive ] && log="backup.$arg.log"
      case "$prev" in -c | --config-file) config=(-c "$arg") ;; esac
      ;;
  esac
  prev=$arg
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "${TAPEOP:-}" ]; then
  tapeop=$TAPEOP
elif command -v tapeop >/dev/null 2>&1; then
  tapeop=$(command -v tapeop)
elif [ -x "$here/target/release/tapeop" ]; then
  tapeop=$here/target/release/tapeop
else
  echo "$0: tapeop not found on PATH or in $here/target/release (cargo build --release)" >&2
  exit 1
fi

# The status page after a job: its failure is logged, never fatal.
refresh_page() {
  [ -n "$html" ] || return 0
  local out
  if ! out=$("$tapeop" ${config[@]+"${config[@]}"} report --html "$html" 2>&1); then
    echo "tape_batch: the status page in $html was not refreshed: $out" | tee -i -a "$log"
  fi
}

while true; do
  date | tee -i -a "$log"
  "$tapeop" "${args[@]}" "$@" 2>&1 | tee -i -a "$log"
  rc=${PIPESTATUS[0]}
  refresh_page
  if [ "$rc" -ne 0 ]; then
    echo "tapeop ${args[*]} exited with code $rc; stopping." | tee -i -a "$log"
    exit "$rc"
  fi
done
