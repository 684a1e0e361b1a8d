#!/usr/bin/env bash
# The whole tapeop workflow in one go, with no tape drive and no ssh: builds
# tapeop, makes a scratch directory with sample data and an emulated tape,
# then imports, opens a tape, assigns, archives, confirms and shows status;
# last, a third night arrives and waits, and the status page is written.
# Usage: bash demo/run.bash [SCRATCH_DIR]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cargo build --release --quiet --manifest-path "$repo/Cargo.toml"
tapeop=$repo/target/release/tapeop
scratch=${1:-$(mktemp -d /tmp/tapeop-demo.XXXXXX)}
mkdir -p "$scratch" && cd "$scratch"
rm -rf data emu status demo.sqlite* backup.log && mkdir -p data emu/DEMO-T1 status

# Sample data: two nights of observations, one calibration tree nested inside.
for night in night1 night2 night3; do
  mkdir -p "data/$night/raw" "data/$night/cal"
  for i in $(seq 1 20); do head -c $((i * 7919)) /dev/urandom > "data/$night/raw/frame_$i.fits"; done
  echo "flat field" > "data/$night/cal/flat with spaces.txt"
  ln -sf raw/frame_1.fits "data/$night/latest"
done
printf '%s\n' "$PWD/data/night1" "$PWD/data/night2" "$PWD/data/night2/cal" > targets.txt
cat > tape.conf <<CONF
[default]
database_file = demo.sqlite
tape_device = /dev/nst0
ssh_command =
emulator_dir = emu/DEMO-T1
CONF

run() { echo; echo "\$ tapeop $*"; "$tapeop" "$@"; }
run -y import targets.txt
run open_tape DEMO-T1 --serial DEMO-SN-1 --online --capacity 8M -y
run -y assign
run archive --repeat || [ $? -eq 40 ]
run confirm next --repeat || [ $? -eq 40 ]
run status
run tape_detail
# A third night arrives: imported, it waits for a tape (check says so).
echo "$PWD/data/night3" > night3.txt
run -y import night3.txt
run check || [ $? -eq 1 ]
run report --html status
echo; echo "Status page: $scratch/status/index.html (and report.json)"
echo; echo "Demo directory: $scratch (tape files in emu/DEMO-T1, catalogue demo.sqlite)"
