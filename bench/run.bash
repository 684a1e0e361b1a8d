#!/usr/bin/env bash
# Benchmarks of tapeop against reference tools, each pair measured in the
# same run on the same data, with a pass/fail against the goals.
#
#   bash bench/run.bash [all|archive|confirm|small|import|catalog|report|legacy|library]
#
#   archive  4 GiB target (32 x 128 MiB random) archived to an emulated tape on
#            /dev/shm with each check_in_flight (off = pass-through, keep-pace,
#            full), vs `tar -c DIR | dd bs=256k of=SINK`; MB/s, peak RSS
#   confirm  confirm of a 2 GiB tape file of large files vs md5sum of the files;
#            MB/s, peak RSS
#   small    confirm of a tape file of 100,000 x 4 KiB files vs the old tool's
#            `dd if=TAPEFILE bs=512k | tar -x --to-command=md5sum`
#   import   import of 20 targets (1,000 directories, 20,000 files) over a
#            private sshd on 127.0.0.1 vs the old tool's 4 ssh commands per directory
#   catalog  examples/bench_catalog builds a 20M-file catalogue through
#            tapeop::import::store; then status, tapes -v, where_is are timed
#            against sqlite3's `select count(*) from files`, and so is
#            `report --html DIR` (the status page), beside status
#   report   the catalog benchmark (the same catalogue, the same timings): to
#            time the status page without the others
#   library  a simulated tape library (examples/vst_library: FUSE drives whose
#            speed is held to LIB_RATE each): 8 targets of 64 MiB archived by
#            one `archive --repeat --drive A`, then (fresh cartridges) by two
#            runs at once, one per drive; aggregate MB/s of two drives vs one
#   legacy   sqlite3 builds a catalogue of the old tool's schema (version 0, no
#            tapeop tables) with 20M files; then first-contact status, tapes,
#            unassigned (must not write), the first write (the one-time upgrade),
#            and the reports again, each beside sqlite3's `select count(*) from files`
#
# Environment (all optional):
#   REPS=3                 runs of each timed command (the best is kept) in archive, confirm, small
#   BUFFER_SIZE=256M       buffer_size in tape.conf for archive (peak memory goal: this + 64 MiB)
#   FILES=20000000 TARGETS=50000 TAPES=100   size of the synthetic catalogue (catalog, legacy)
#   OLD_SMALL_FILES=5000   files the old confirm pipeline is timed on, rounded up to directories
#                          of 1,000 (its files/s gives the time for 100,000);
#                          OLD_SMALL_FILES=100000 times it on the whole tape file
#   OLD_IMPORT_TARGETS=2   targets (of 20) the old import is emulated on (extrapolated to 20)
#   LIB_RATE=100M          each simulated drive's speed in the library benchmark
#   BENCH_DIR=/dev/shm     scratch space (data, emulated tapes, catalogues); removed at the end
#   CATALOG_DIR=           where the catalogue benchmark's database goes (default: scratch space)
#
# Exit status: 0 when every goal passed, 1 when one failed (or a step broke).
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$repo/bench/sshd.bash"

which=${1:-all}
case $which in
  all | archive | confirm | small | import | catalog | report | legacy | library) ;;
  *)
    echo "usage: bash bench/run.bash [all|archive|confirm|small|import|catalog|report|legacy|library]" >&2
    exit 2
    ;;
esac

REPS=${REPS:-3}
BUFFER_SIZE=${BUFFER_SIZE:-256M}
OLD_SMALL_FILES=${OLD_SMALL_FILES:-5000}
OLD_IMPORT_TARGETS=${OLD_IMPORT_TARGETS:-2}
LIB_RATE=${LIB_RATE:-100M}
BENCH_DIR=${BENCH_DIR:-/dev/shm}
SMALL_FILES=100000

W=$(mktemp -d "$BENCH_DIR/tapeop-bench.XXXXXX")
DATA=$W/data
RESULTS=$W/results.tsv
LOG=$W/bench.log
: > "$RESULTS"

cleanup() {
  sshd_stop
  if [ -n "${KEEP_LOG:-}" ] && [ -f "$LOG" ]; then cp "$LOG" "$KEEP_LOG"; fi
  rm -rf "$W"
  if [ -n "${CATALOG_DIR:-}" ]; then rm -f "$CATALOG_DIR"/tapeop-bench-catalogue.sqlite* "$CATALOG_DIR"/tapeop-bench-legacy.sqlite*; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ----------------------------------------------------------------

say() { printf '%s\n' "$@"; }
header() { say "" "== $1 ($(date -u '+%H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg))"; }
# awk arithmetic: calc 'EXPR' [var=value ...]
calc() {
  local e=$1 kv args=()
  shift
  for kv in "$@"; do args+=(-v "$kv"); done
  awk "${args[@]}" "BEGIN { printf \"%.10g\\n\", $e }"
}
num() { awk -v x="$1" -v d="${2:-1}" 'BEGIN { printf "%.*f", d, x }'; }
best_min() { if [ -z "$1" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN { print (b < a) ? b : a }'; fi; }
best_max() { if [ -z "$1" ]; then echo "$2"; else awk -v a="$1" -v b="$2" 'BEGIN { print (b > a) ? b : a }'; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
passfail() { if "$@"; then echo PASS; else echo FAIL; fi; }
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RESULTS"; }
bytes_of() { local n=${1%[kKmMgG]} u=${1: -1}; case $u in k|K) echo $((n << 10));; m|M) echo $((n << 20));; g|G) echo $((n << 30));; *) echo "$1";; esac; }

# Run a command with its output to the log; print the seconds it took.
run_timed() {
  local t0=$EPOCHREALTIME
  if ! "$@" >>"$LOG" 2>&1; then
    echo "bench: failed: $*" >&2
    tail -n 20 "$LOG" >&2
    return 1
  fi
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'
}

# Quiet setup steps: output to the log, fail loudly.
quiet() {
  if ! "$@" >>"$LOG" 2>&1; then
    echo "bench: failed: $*" >&2
    tail -n 20 "$LOG" >&2
    return 1
  fi
}

TAPEOP=$repo/target/release/tapeop
tp() { "$TAPEOP" -c "$CONF" "$@"; }

# A fresh tapeop workspace: tape.conf, catalogue and emulated tape dir.
new_workspace() {
  WS=$W/$1
  rm -rf "$WS"
  mkdir -p "$WS/emu"
  CONF=$WS/tape.conf
  cat > "$CONF" <<CONF
[default]
database_file = ${2:-$WS/catalogue.sqlite}
ssh_command = ${3:-}
emulator_dir = $WS/emu
buffer_size = $BUFFER_SIZE
CONF
}

# import LIST, open_tape, assign (none of it timed).
prepare_tape() {
  quiet tp -y import "$1"
  quiet tp open_tape T1 --serial S1 --online -y
  quiet tp -y assign
}

archive_all() {
  local rc=0
  tp archive --repeat >>"$LOG" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 40 ]; then
    echo "bench: tapeop archive --repeat failed ($rc)" >&2
    tail -n 20 "$LOG" >&2
    return 1
  fi
}

# N files of 128 MiB of random data in $DATA/big (made once per run).
make_big() {
  mkdir -p "$DATA/big"
  local i f
  for i in $(seq -f '%02g' 1 "$1"); do
    f=$DATA/big/f$i.bin
    [ -s "$f" ] || head -c 128M /dev/urandom > "$f"
  done
}

# ---- 1. archive ---------------------------------------------------------------

bench_archive() {
  header "archive: 4 GiB (32 x 128 MiB) local target -> emulated tape on $BENCH_DIR"
  make_big 32
  new_workspace archive
  echo "$DATA/big" > "$WS/list"
  prepare_tape "$WS/list"
  local buffer_bytes limit_kb best_r='' rss_max=0 rep s bytes rate rss mode flag checked
  local -A best=()
  buffer_bytes=$(bytes_of "$BUFFER_SIZE")
  limit_kb=$(((buffer_bytes + (64 << 20)) >> 10))
  # Warm-up, untimed: on a VM the first touch of fresh memory (the 4 GiB
  # sink on tmpfs) is several times slower than later runs, for both sides.
  quiet bash -c "cd / && tar -c -f - '${DATA#/}/big' | dd bs=256k of='$WS/sink' status=none"
  rm -f "$WS/sink"
  quiet "$TAPEOP" -c "$CONF" archive --check-in-flight off --no-db-update
  for rep in $(seq 1 "$REPS"); do
    rm -f "$WS/emu/file00001.tar"
    s=$(run_timed bash -c "cd / && tar -c -f - '${DATA#/}/big' | dd bs=256k of='$WS/sink' status=none")
    bytes=$(stat -c %s "$WS/sink")
    rm -f "$WS/sink"
    rate=$(calc 'b / 1e6 / s' b="$bytes" s="$s")
    best_r=$(best_max "$best_r" "$rate")
    say "  run $rep  tar|dd:                                $bytes bytes in $(num "$s" 2) s = $(num "$rate" 0) MB/s"
    for mode in off keep-pace full; do
      rm -f "$WS/emu/file00001.tar"
      flag=--no-db-update
      [ "$rep" -eq "$REPS" ] && [ "$mode" = full ] && flag=
      s=$(run_timed /usr/bin/time -f %M -o "$WS/rss" "$TAPEOP" -c "$CONF" archive --check-in-flight "$mode" $flag)
      bytes=$(stat -c %s "$WS/emu/file00001.tar")
      rss=$(tail -n 1 "$WS/rss")
      [ "$rss" -gt "$rss_max" ] && rss_max=$rss
      rate=$(calc 'b / 1e6 / s' b="$bytes" s="$s")
      best[$mode]=$(best_max "${best[$mode]:-}" "$rate")
      checked=$(grep -o 'checked in flight (check_in_flight = keep-pace): .*' "$LOG" | tail -n 1 | sed 's/.*: //' || true)
      [ "$mode" = keep-pace ] || checked=
      say "  run $rep  tapeop archive --check-in-flight $(printf '%-9s' "$mode") ${flag:-(recorded)}: $(num "$s" 2) s = $(num "$rate" 0) MB/s, peak RSS $((rss >> 10)) MiB${checked:+; $checked}"
    done
  done
  local r_off r_keep r_full
  r_off=$(calc 't / r' t="${best[off]}" r="$best_r")
  r_keep=$(calc 't / r' t="${best[keep-pace]}" r="$best_r")
  r_full=$(calc 't / r' t="${best[full]}" r="$best_r")
  say "  best: tar|dd $(num "$best_r" 0) MB/s; tapeop off $(num "${best[off]}" 0) ($(num "$r_off" 2)), keep-pace $(num "${best[keep-pace]}" 0) ($(num "$r_keep" 2)), full md5 $(num "${best[full]}" 0) MB/s ($(num "$r_full" 2))"
  say "  peak RSS $((rss_max >> 10)) MiB (max over runs and modes); buffer_size = $BUFFER_SIZE, limit buffer_size + 64 MiB = $((limit_kb >> 10)) MiB"
  row "archive 4 GiB pass-through, check_in_flight = off (MB/s)" "$(num "${best[off]}" 0)" "$(num "$best_r" 0) (tar -c \| dd)" "$(num "$r_off" 2)" "ratio >= 0.9 and >= 800 MB/s" \
    "$(passfail eval "ge $r_off 0.9 && ge ${best[off]} 800")"
  row "archive 4 GiB, keep-pace: md5 what the cores allow (MB/s)" "$(num "${best[keep-pace]}" 0)" "$(num "$best_r" 0) (tar -c \| dd)" "$(num "$r_keep" 2)" "ratio >= 0.9 (share md5-ed: see log)" \
    "$(passfail ge "$r_keep" 0.9)"
  row "archive 4 GiB, full: every byte md5-ed in flight (MB/s)" "$(num "${best[full]}" 0)" "$(num "$best_r" 0) (tar -c \| dd)" "$(num "$r_full" 2)" ">= 400 MB/s (LTO-9 native)" \
    "$(passfail ge "${best[full]}" 400)"
  row "archive peak RSS (MiB)" "$((rss_max >> 10))" "buffer_size $BUFFER_SIZE" "-" "< buffer_size + 64 MiB = $((limit_kb >> 10))" \
    "$(passfail lt "$rss_max" "$limit_kb")"
  rm -rf "$WS"
}

# ---- 2. confirm (large files) ---------------------------------------------------

bench_confirm() {
  header "confirm: 2 GiB tape file of 16 x 128 MiB vs md5sum of the same files ($BENCH_DIR, page cache warm)"
  make_big 16
  mkdir -p "$DATA/conf"
  local i
  for i in $(seq -f '%02g' 1 16); do ln -f "$DATA/big/f$i.bin" "$DATA/conf/f$i.bin"; done
  new_workspace confirm
  echo "$DATA/conf" > "$WS/list"
  prepare_tape "$WS/list"
  archive_all
  local files_bytes tape_bytes best_t='' best_r='' rep s rate rss
  files_bytes=$(cat "$DATA"/conf/*.bin | wc -c)
  tape_bytes=$(stat -c %s "$WS/emu/file00001.tar")
  for rep in $(seq 1 "$REPS"); do
    s=$(run_timed md5sum "$DATA"/conf/*.bin)
    rate=$(calc 'b / 1e6 / s' b="$files_bytes" s="$s")
    best_r=$(best_max "$best_r" "$rate")
    say "  run $rep  md5sum FILES:                 $files_bytes bytes in $(num "$s" 2) s = $(num "$rate" 0) MB/s"
    s=$(run_timed /usr/bin/time -f %M -o "$WS/rss" "$TAPEOP" -c "$CONF" confirm 1 --retry --no-db-update)
    rate=$(calc 'b / 1e6 / s' b="$tape_bytes" s="$s")
    best_t=$(best_max "$best_t" "$rate")
    rss=$(tail -n 1 "$WS/rss")
    say "  run $rep  tapeop confirm 1 --no-db-update: $tape_bytes bytes in $(num "$s" 2) s = $(num "$rate" 0) MB/s, peak RSS $((rss >> 10)) MiB"
  done
  local ratio
  ratio=$(calc 't / r' t="$best_t" r="$best_r")
  say "  best: tapeop $(num "$best_t" 0) MB/s, md5sum $(num "$best_r" 0) MB/s, ratio $(num "$ratio" 2)"
  row "confirm 2 GiB large files (MB/s)" "$(num "$best_t" 0)" "$(num "$best_r" 0) (md5sum)" "$(num "$ratio" 2)" "ratio >= 0.95" \
    "$(passfail ge "$ratio" 0.95)"
  rm -rf "$WS" "$DATA/conf" "$DATA/big"
}

# ---- 3. confirm (small files) ---------------------------------------------------

bench_small() {
  header "small: confirm of 100,000 x 4 KiB files vs dd | tar -x --to-command=md5sum"
  local d dirs_old
  mkdir -p "$DATA/small" "$DATA/small_old"
  for d in $(seq -f 'd%03g' 0 $((SMALL_FILES / 1000 - 1))); do
    mkdir -p "$DATA/small/$d"
    head -c 4096000 /dev/urandom | split -b 4096 -a 3 -d - "$DATA/small/$d/f"
  done
  # The old pipeline's tape file: the first OLD_SMALL_FILES of the same files (hard links).
  dirs_old=$(( (OLD_SMALL_FILES + 999) / 1000 ))
  for d in $(seq -f 'd%03g' 0 $((dirs_old - 1))); do
    cp -al "$DATA/small/$d" "$DATA/small_old/$d"
  done
  new_workspace small
  printf '%s\n' "$DATA/small" "$DATA/small_old" > "$WS/list"
  prepare_tape "$WS/list"
  archive_all
  # file 1 is the 100,000-file target, file 2 the old pipeline's (targets go in name order)
  local big_fn=1 old_fn=2 best_t='' rep s rate
  local old_members
  old_members=$(tar -tf "$WS/emu/file0000$old_fn.tar" | grep -vc '/$' || true)
  if [ "$old_members" -ne $((dirs_old * 1000)) ]; then
    echo "bench: tape file $old_fn holds $old_members files, expected $((dirs_old * 1000))" >&2
    return 1
  fi
  for rep in $(seq 1 "$REPS"); do
    s=$(run_timed tp confirm "$big_fn" --retry --no-db-update)
    rate=$(calc 'n / s' n="$SMALL_FILES" s="$s")
    best_t=$(best_max "$best_t" "$rate")
    say "  run $rep  tapeop confirm $big_fn --no-db-update: $SMALL_FILES files in $(num "$s" 2) s = $(num "$rate" 0) files/s"
  done
  mkdir -p "$WS/old_x"
  s=$(run_timed bash -c "cd '$WS/old_x' && dd if='$WS/emu/file0000$old_fn.tar' bs=512k status=none | tar -x --to-command='md5sum' > '$WS/old.md5'")
  local old_n old_rate extrap
  old_n=$(wc -l < "$WS/old.md5")
  if [ "$old_n" -ne "$old_members" ]; then
    echo "bench: the old pipeline printed $old_n md5 lines for $old_members files" >&2
    return 1
  fi
  old_rate=$(calc 'n / s' n="$old_n" s="$s")
  extrap=$(calc 'n / r' n="$SMALL_FILES" r="$old_rate")
  local note=""
  [ "$old_n" -lt "$SMALL_FILES" ] && note=", extrapolated from $old_n"
  say "  old pipeline dd | tar -x --to-command=md5sum: $old_n files in $(num "$s" 1) s = $(num "$old_rate" 0) files/s"
  [ -n "$note" ] && say "    (timed on a tape file of the first $old_n of the same files; for $SMALL_FILES files that rate takes about $(num "$extrap" 0) s)"
  local ratio
  ratio=$(calc 't / r' t="$best_t" r="$old_rate")
  say "  best: tapeop $(num "$best_t" 0) files/s, old pipeline $(num "$old_rate" 0) files/s, ratio $(num "$ratio" 1)"
  row "confirm 100k x 4 KiB (files/s)" "$(num "$best_t" 0)" "$(num "$old_rate" 0) (dd \| tar --to-command=md5sum$note)" "$(num "$ratio" 1)" "ratio >= 50" \
    "$(passfail ge "$ratio" 50)"
  rm -rf "$WS" "$DATA/small" "$DATA/small_old"
}

# ---- 4. import over ssh ---------------------------------------------------------

# The old tool's scan of one directory: 4 ssh commands, then each subdirectory.
# (The old tool also inserted each file's row into sqlite as it went; that is
# not emulated, which only flatters the reference.)
old_scan_dir() {
  local q sub
  q=$(printf %q "$1")
  $SSH_CMD "find $q -maxdepth 1 -mindepth 1 -type f -print0 | xargs -0r du -k" </dev/null >>"$OLD_OUT"
  $SSH_CMD "find $q -maxdepth 1 -mindepth 1 -type f -print0 | xargs -0r md5sum" </dev/null >>"$OLD_OUT"
  $SSH_CMD "find $q -maxdepth 1 -mindepth 1 -type l" </dev/null >>"$OLD_OUT"
  while IFS= read -r sub; do
    [ -n "$sub" ] && old_scan_dir "$sub"
  done < <($SSH_CMD "find $q -maxdepth 1 -mindepth 1 -type d" </dev/null)
}

old_import() {
  local t
  for t in "$@"; do old_scan_dir "$t"; done
}

bench_import() {
  header "import: 20 targets, 1,000 directories, 20,000 files of 1 KiB over ssh to 127.0.0.1"
  local t s
  for t in $(seq -f 't%02g' 1 20); do
    for s in $(seq -f 's%02g' 1 50); do
      mkdir -p "$DATA/tree/$t/$s"
      head -c 20480 /dev/urandom | split -b 1024 -a 2 -d - "$DATA/tree/$t/$s/f"
    done
  done
  sshd_start "$W/sshd"
  say "  private sshd on 127.0.0.1:$SSHD_PORT (pid $SSHD_PID)"
  new_workspace import "" "$SSH_CMD"
  printf '%s\n' "$DATA"/tree/t* > "$WS/list"
  local c0 c1 secs conns rows
  c0=$(sshd_logins)
  secs=$(run_timed tp -y import "$WS/list")
  c1=$(sshd_logins)
  conns=$((c1 - c0))
  rows=$(sqlite3 "$WS/catalogue.sqlite" 'select count(*) from files')
  say "  tapeop import: 20 targets, $rows file rows in $(num "$secs" 2) s over $conns ssh connections"
  if [ "$rows" -ne 20000 ]; then echo "bench: expected 20000 file rows, got $rows" >&2; return 1; fi
  local n=$OLD_IMPORT_TARGETS old_secs old_conns full_secs full_conns
  OLD_OUT=$WS/old_scan.txt
  : > "$OLD_OUT"
  c0=$(sshd_logins)
  old_secs=$(run_timed old_import $(head -n "$n" "$WS/list"))
  c1=$(sshd_logins)
  old_conns=$((c1 - c0))
  full_secs=$(calc 's * 20 / n' s="$old_secs" n="$n")
  full_conns=$(calc 'int(c * 20 / n + 0.5)' c="$old_conns" n="$n")
  say "  old tool's per-directory commands: $n targets in $(num "$old_secs" 1) s over $old_conns ssh connections ($(grep -c '^[0-9a-f]\{32\} ' "$OLD_OUT") md5 lines)"
  local note=""
  if [ "$n" -lt 20 ]; then
    note=", extrapolated from $n of 20 targets"
    say "    (emulated on $n of the 20 identical targets; for 20: about $(num "$full_secs" 0) s and $full_conns connections)"
  fi
  local ratio
  ratio=$(calc 'o / t' o="$full_secs" t="$secs")
  say "  tapeop is $(num "$ratio" 1)x faster"
  row "import 20 targets / 20,000 files over ssh (s)" "$(num "$secs" 2) s, $conns ssh" "$(num "$full_secs" 0) s, $full_conns ssh (old per-dir cmds$note)" \
    "$(num "$ratio" 0)" "ratio >= 20" "$(passfail ge "$ratio" 20)"
  sshd_stop
  rm -rf "$WS" "$DATA/tree"
}

# ---- 5. catalogue at scale ------------------------------------------------------

# Best of 3 (after one warm-up run) of a command, in milliseconds.
best_ms() {
  local best='' s
  quiet "$@"
  for _ in 1 2 3; do
    s=$(run_timed "$@")
    best=$(best_min "$best" "$s")
  done
  calc 'b * 1000' b="$best"
}

bench_catalog() {
  header "catalog: ${FILES:-20000000} files in ${TARGETS:-50000} targets on ${TAPES:-100} tapes"
  local dir=${CATALOG_DIR:-$W} db
  db=$dir/tapeop-bench-catalogue.sqlite
  mkdir -p "$dir"
  new_workspace catalog "$db"
  "$repo/target/release/examples/bench_catalog" "$db" 2>&1 >/dev/null | tee "$WS/bench_catalog.txt" | sed 's/^/  /'
  local result files rate per name
  result=$(grep '^RESULT ' "$WS/bench_catalog.txt")
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<< "$result"; }
  files=$(field files); rate=$(field files_per_s); per=$(field bytes_per_file); name=$(field where_is)
  cat "$db" > /dev/null  # warm page cache
  local st tv wi ref hits rp
  hits=$(tp where_is "$name" | grep -c "$name" || true)
  st=$(best_ms tp status)
  tv=$(best_ms tp tapes -v)
  wi=$(best_ms tp where_is "$name")
  mkdir -p "$WS/site"
  rp=$(best_ms tp report --html "$WS/site")
  ref=$(best_ms sqlite3 "$db" 'select count(*) from files')
  say "  (best of 3, page cache warm)  status $(num "$st") ms, report --html $(num "$rp") ms, tapes -v $(num "$tv") ms, where_is $(num "$wi") ms ($hits hit), sqlite3 count(*) $(num "$ref") ms"
  say "  status page: $(wc -c < "$WS/site/index.html") bytes of HTML, $(wc -c < "$WS/site/report.json") bytes of JSON"
  row "catalog: insert $files files via import::store (files/s)" "$(num "$rate" 0)" "-" "-" ">= 500,000 files/s" "$(passfail ge "$rate" 500000)"
  row "catalog: size (bytes per file row)" "$(num "$per" 0)" "-" "-" "(reported)" "-"
  row "catalog: tapeop status (ms)" "$(num "$st")" "$(num "$ref") (count(*) files)" "$(num "$(calc 'r / t' r="$ref" t="$st")" 0)" "< 200 ms" "$(passfail lt "$st" 200)"
  row "catalog: tapeop tapes -v (ms)" "$(num "$tv")" "$(num "$ref") (count(*) files)" "$(num "$(calc 'r / t' r="$ref" t="$tv")" 0)" "< 500 ms" "$(passfail lt "$tv" 500)"
  row "catalog: tapeop report --html DIR (ms)" "$(num "$rp")" "$(num "$st") (status)" "$(num "$(calc 'r / t' r="$st" t="$rp")" 2)" "< 1000 ms" "$(passfail lt "$rp" 1000)"
  row "catalog: tapeop where_is NAME (ms)" "$(num "$wi")" "$(num "$ref") (count(*) files)" "$(num "$(calc 'r / t' r="$ref" t="$wi")" 0)" "< 50 ms" "$(passfail lt "$wi" 50)"
  rm -f "$db" "$db"-wal "$db"-shm "$db".lock
  rm -rf "$WS"
}

# ---- 6. first contact with a legacy catalogue ----------------------------------

# make_legacy_catalogue DB FILES TARGETS TAPES: the old tool's four tables,
# exactly as it created them (no user_version, no index beyond the unique
# constraints), filled by recursive CTEs: TARGETS scanned targets of
# FILES/TARGETS files each (names in directories of 100, md5, du size); 99 %
# of the targets on TAPES tapes (closed and confirmed, but the last used
# tape: open and online, half confirmed, a quarter recorded, a quarter
# assigned); the last 1 % unassigned.
make_legacy_catalogue() {
  local db=$1 files=$2 targets=$3 tapes=$4 per_target assigned per_tape last
  per_target=$(((files + targets - 1) / targets))
  assigned=$((targets * 99 / 100))
  per_tape=$(((assigned + tapes - 1) / tapes))
  last=$(((assigned - 1) / per_tape + 1))
  rm -f "$db"
  sqlite3 "$db" > /dev/null <<SQL
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
CREATE TABLE \`files\` (\`id\` integer primary key autoincrement,\`target_id\` integer,\`name\` varchar(512),\`md5sum\` varchar(32),\`size_kb\` integer,constraint file_on_target UNIQUE (target_id, name));
CREATE TABLE \`backups\` (\`id\` integer primary key autoincrement,\`target_id\` integer,\`tape_id\` integer,\`file_number\` integer,\`status\` varchar(16));
CREATE TABLE \`targets\` (\`id\` integer primary key autoincrement,\`name\` varchar(2048) unique,\`scanned\` integer default 0,\`parent_id\` integer default null);
CREATE TABLE \`tapes\` (\`id\` integer primary key autoincrement,\`name\` varchar(256) unique,\`serial\` varchar(256) unique,\`status\` varchar(16),\`online\` integer not null default 0);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $tapes)
INSERT INTO tapes (name, serial, status, online)
  SELECT printf('T%04d', i), printf('SN-%04d', i), CASE WHEN i = $last THEN 'open' ELSE 'closed' END, i = $last FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $targets)
INSERT INTO targets (name, scanned, parent_id) SELECT printf('/data/season/t%06d', i), 1, NULL FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $files - 1)
INSERT INTO files (target_id, name, md5sum, size_kb)
  SELECT i / $per_target + 1, printf('d%02d/f%06d.dat', (i % $per_target) / 100, i % $per_target),
         printf('%016x%016x', i * 2654435761, i), (i * 7919) % 4093 + 1 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $assigned - 1)
INSERT INTO backups (target_id, tape_id, file_number, status)
  SELECT i + 1, i / $per_tape + 1,
         CASE WHEN i / $per_tape + 1 = $last AND i % $per_tape >= $per_tape * 3 / 4 THEN -1 ELSE i % $per_tape END,
         CASE WHEN i / $per_tape + 1 < $last OR i % $per_tape < $per_tape / 2 THEN 'confirmed'
              WHEN i % $per_tape < $per_tape * 3 / 4 THEN 'recorded' ELSE 'assigned' END
  FROM n;
COMMIT;
SQL
}

# One timed run of a command, in milliseconds.
once_ms() {
  local s
  s=$(run_timed "$@")
  calc 's * 1000' s="$s"
}

bench_legacy() {
  local files=${FILES:-20000000} targets=${TARGETS:-50000} tapes=${TAPES:-100}
  header "legacy: first contact with an old-tool catalogue of $files files in $targets targets on $tapes tapes"
  local dir=${CATALOG_DIR:-$W} db build
  db=$dir/tapeop-bench-legacy.sqlite
  mkdir -p "$dir"
  build=$(run_timed make_legacy_catalogue "$db" "$files" "$targets" "$tapes")
  new_workspace legacy "$db"
  cat "$db" > /dev/null  # warm page cache
  say "  built with sqlite3 in $(num "$build") s: $(($(stat -c %s "$db") >> 20)) MiB, user_version $(sqlite3 "$db" 'pragma user_version')"
  local stamp ref0 st0 ta0 un0 up cpu ref1 st1 ta1 un1 online
  stamp=$(stat -c '%s %Y' "$db"; md5sum < <(sqlite3 "$db" .schema))
  # First contact: each report once, as an operator would run it.
  st0=$(once_ms tp status)
  ta0=$(once_ms tp tapes)
  un0=$(once_ms tp unassigned)
  ref0=$(once_ms sqlite3 "$db" 'select count(*) from files')
  if [ "$stamp" != "$(stat -c '%s %Y' "$db"; md5sum < <(sqlite3 "$db" .schema))" ]; then
    echo "bench: a first-contact report changed the legacy catalogue" >&2
    return 1
  fi
  tp unassigned | sed 's/^/  /' | head -n 1
  # The first write: making the online tape online again upgrades the schema.
  online=$(sqlite3 "$db" 'select name from tapes where online = 1')
  up=$(once_ms /usr/bin/time -f 'upgrade cpu %U %S' -o "$WS/upgrade.time" "$TAPEOP" -c "$CONF" activate_tape "$online")
  cpu=$(awk '{ print $3 + $4 }' "$WS/upgrade.time")
  grep 'upgrading catalogue' "$LOG" | tail -n 1 | sed 's/^/  /'
  st1=$(once_ms tp status)
  ta1=$(once_ms tp tapes)
  un1=$(once_ms tp unassigned)
  ref1=$(once_ms sqlite3 "$db" 'select count(*) from files')
  say "  first contact: status $(num "$st0") ms, tapes $(num "$ta0") ms, unassigned $(num "$un0") ms, count(*) $(num "$ref0") ms" \
    "  upgrade (activate_tape $online): $(num "$(calc 'u / 1000' u="$up")") s ($(num "$cpu") s CPU), user_version $(sqlite3 "$db" 'pragma user_version')" \
    "  after: status $(num "$st1") ms, tapes $(num "$ta1") ms, unassigned $(num "$un1") ms, count(*) $(num "$ref1") ms"
  legacy_row() {
    row "legacy $files: $1 (ms)" "$(num "$2")" "$(num "$3") (count(*) files)" "$(num "$(calc 'r / t' r="$3" t="$2")" 1)" \
      "< 1000 ms" "$(passfail lt "$2" 1000)"
  }
  legacy_row "first-contact status" "$st0" "$ref0"
  legacy_row "first-contact tapes" "$ta0" "$ref0"
  legacy_row "first-contact unassigned" "$un0" "$ref0"
  row "legacy $files: first write = one-time upgrade (s)" "$(num "$(calc 'u / 1000' u="$up")" 1) ($(num "$cpu") CPU)" \
    "$(num "$(calc 'r / 1000' r="$ref0")" 2) (count(*) files)" "$(num "$(calc 'r / u' r="$ref0" u="$up")" 3)" \
    "< 60 s" "$(passfail lt "$up" 60000)"
  legacy_row "status after upgrade" "$st1" "$ref1"
  legacy_row "tapes after upgrade" "$ta1" "$ref1"
  legacy_row "unassigned after upgrade" "$un1" "$ref1"
  rm -f "$db" "$db"-wal "$db"-shm "$db"-journal "$db".lock
  rm -rf "$WS"
}

# ---- 7. library ---------------------------------------------------------------

# 8 targets of one 64 MiB random file each, archived on a simulated library
# by one drive and then by two at once; the drives' speed is LIB_RATE, so
# the ratio shows whether the two runs overlap (2.0 at best).
bench_library() {
  header "library: two drives at once vs one (simulated drives, $LIB_RATE/s each)"
  local i
  mkdir -p "$DATA/lib"
  for i in 1 2 3 4 5 6 7 8; do
    mkdir -p "$DATA/lib/t$i"
    [ -s "$DATA/lib/t$i/f.bin" ] || head -c 64M /dev/urandom > "$DATA/lib/t$i/f.bin"
  done
  ls -d "$DATA"/lib/t* > "$W/lib.list"
  local one two copies bytes=$((8 * 64 << 20))
  one=$(library_run 1)
  two=$(library_run 2)
  copies=$(library_run copies)
  local r1 r2 rc
  r1=$(calc 'b / t / 1e6' b="$bytes" t="$one")
  r2=$(calc 'b / t / 1e6' b="$bytes" t="$two")
  rc=$(calc 'b / t / 1e6' b="$bytes" t="$copies")
  say "one drive: $(num "$one" 2) s ($(num "$r1" 1) MB/s); two drives: $(num "$two" 2) s ($(num "$r2" 1) MB/s aggregate)"
  say "two copies from one read (--drive A --drive B): $(num "$copies" 2) s ($(num "$rc" 1) MB/s of targets)"
  row "library: 8 x 64 MiB, two drives at once (MB/s)" "$(num "$r2" 1)" "$(num "$r1" 1) (one drive)" \
    "$(num "$(calc 'a / b' a="$r2" b="$r1")" 2)" ">= 1.6" "$(passfail ge "$(calc 'a / b' a="$r2" b="$r1")" 1.6)"
  row "library: 8 x 64 MiB, two copies from one read (MB/s)" "$(num "$rc" 1)" "$(num "$r1" 1) (one copy)" \
    "$(num "$(calc 'a / b' a="$rc" b="$r1")" 2)" ">= 0.9" "$(passfail ge "$(calc 'a / b' a="$rc" b="$r1")" 0.9)"
}

# Serve a fresh simulated library, archive the list with DRIVES drives at
# once (`copies`: one run on both drives, copy_pools = primary offsite, one
# copy on each), print the seconds the archive runs took, and unmount.
library_run() {
  local drives=$1 dir=$W/library$1
  rm -rf "$dir"
  mkdir -p "$dir"
  "$repo/target/release/examples/vst_library" "$dir/lib" --drives 2 --slots 3 --rate "$LIB_RATE" --ignore-stdin \
    > "$dir/served.txt" 2>&1 &
  local served=$!
  until grep -q '^# serving' "$dir/served.txt"; do
    kill -0 "$served" 2>/dev/null || { cat "$dir/served.txt" >&2; return 1; }
    sleep 0.1
  done
  new_workspace "library$1-ws"
  local pools='' p1='' p2=''
  if [ "$drives" = copies ]; then
    pools='copy_pools = primary offsite' p1='--pool primary' p2='--pool offsite'
  fi
  { printf '[default]\ndatabase_file = %s\nssh_command =\nbuffer_size = %s\n%s\n\n' "$WS/catalogue.sqlite" \
      "$BUFFER_SIZE" "$pools"
    sed -n '/^\[changer\]/,/^changer_index = 1/p' "$dir/served.txt"; } > "$CONF"
  quiet tp -y import "$W/lib.list"
  # shellcheck disable=SC2086 # $p1 and $p2 are two words or none
  quiet tp -y open_tape T1 --serial A00001L9 --offline $p1
  # shellcheck disable=SC2086
  quiet tp -y open_tape T2 --serial A00002L9 --offline $p2
  local t0=$EPOCHREALTIME rc=0
  if [ "$drives" = copies ]; then
    tp --drive A --drive B archive --repeat >>"$LOG" 2>&1 || rc=$?
  elif [ "$drives" = 1 ]; then
    tp --drive A archive --repeat >>"$LOG" 2>&1 || rc=$?
  else
    tp --drive A archive --repeat >>"$LOG" 2>&1 &
    local a=$!
    tp --drive B archive --repeat >>"$LOG" 2>&1 || rc=$?
    wait "$a" || rc=$((rc == 40 ? $? : rc))
  fi
  local took
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }')
  kill -INT "$served"
  wait "$served" || true
  if [ "$rc" -ne 40 ]; then
    echo "bench: library archive with $drives drive(s) ended with $rc (not 40: nothing left)" >&2
    tail -n 20 "$LOG" >&2
    return 1
  fi
  echo "$took"
}

# ---- main ---------------------------------------------------------------------

say "tapeop benchmarks: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
say "scratch: $W; log: $LOG (set KEEP_LOG=PATH to keep it)"
say "building: cargo build --release"
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
if [ "$which" = all ] || [ "$which" = catalog ] || [ "$which" = report ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --example bench_catalog
fi
if [ "$which" = all ] || [ "$which" = library ]; then
  cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --example vst_library
fi

started=$EPOCHREALTIME
for b in archive confirm small import catalog legacy library; do
  if [ "$which" = all ] || [ "$which" = "$b" ] || { [ "$which" = report ] && [ "$b" = catalog ]; }; then
    "bench_$b"
  fi
done

say "" "Results (ratio > 1 means tapeop is better: speed / reference speed, or reference time / tapeop time):" ""
{
  printf '| benchmark | tapeop | reference | ratio | goal | pass |\n'
  printf '|---|---|---|---|---|---|\n'
  while IFS=$'\t' read -r a b c d e f; do
    printf '| %s | %s | %s | %s | %s | %s |\n' "$a" "$b" "$c" "$d" "$e" "$f"
  done < "$RESULTS"
}
say "" "total $(num "$(calc 'b - a' a="$started" b="$EPOCHREALTIME")" 0) s; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -q $'\tFAIL$' "$RESULTS"; then
  exit 1
fi
