# tape.conf: tapeop reads this file from the current directory (or -c PATH).
# Every key lives under [default]. The first four are the old tool's keys and
# mean exactly what they meant there; the rest are tapeop's, all optional.

[default]

# The sqlite catalogue of tapes, targets, files and md5 sums. Relative paths
# are relative to the current directory. `import` or `open_tape` creates it.
database_file = run1.sqlite

# The NON-rewinding tape device (/dev/nstN). tapeop refuses /dev/stN: a
# rewind on every close would make every later position wrong.
tape_device = /dev/nst0

# A command prefix that runs a shell command on the data host without a
# password; the remote command is appended as one argument. Any local command
# prefix works too (e.g. `sh -c`), and an empty value means the data is local.
ssh_command = ssh user@my-data-host -i /home/user/.ssh/unlocked_key

# Rehearsals without a drive: tape file N is DIR/fileNNNNN.tar. When set, it
# overrides tape_device. Use one directory per emulated tape.
# emulator_dir = emu/T1

# Capacity of the emulated tape (bytes, or with K/M/G/T suffix, powers of
# 1024): writes past it fail like a drive at early warning (tape full).
# emulator_capacity = 2G

# Bytes per tape record when writing (multiple of 512, at most 16776704,
# the largest that fits one SCSI record, so not 16M; default
# 256K). Reading accepts any block size, including the old tool's tapes.
# block_size = 256K

# Memory buffer between the data host and the drive (default 256M): it keeps
# the drive streaming through the source's stalls.
# buffer_size = 256M

# How archive checks the stream against the catalogue while it writes:
#   full       md5 every file as it passes (default); a file that changed since
#              import fails the archive at once. If md5 is slower than the
#              drive on this host, the drive waits for it.
#   keep-pace  md5 as much as the cores manage without ever slowing the
#              drive; the summary says how much was left unchecked for confirm
#              (names, missing and unexpected files are still all checked).
#   off        pure pass-through; confirm is the only check.
# archive --check-in-flight MODE overrides this for one run.
# check_in_flight = full

# md5 jobs on the data host during import (default: all its cores).
# scan_jobs = 8

# Default capacity of a new tape, used by `assign` to assign only what fits
# (default: unlimited). LTO-9 holds 18T native.
# tape_capacity = 18T
