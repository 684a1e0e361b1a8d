# tape.conf: tapeop reads this file from the current directory (or -c PATH).
# The keys live under [default]. The first four are the old tool's keys and
# mean exactly what they meant there; the rest are tapeop's, all optional.
# A tape library adds [changer] and [drive.NAME] sections (at the end).

[default]

# The sqlite catalogue of tapes, targets, files and md5 sums. Relative paths
# are relative to the current directory. `import` or `open_tape` creates it.
database_file = run1.sqlite

# The NON-rewinding tape device (/dev/nstN). tapeop refuses /dev/stN: a
# rewind on every close would make every later position wrong. It is the
# drive named `default`. With [drive.NAME] sections it may be left out.
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

# Two (or more) copies of every target: the pools of which each target needs
# a copy. A tape joins a pool when it is opened (open_tape NAME --pool POOL;
# without --pool it is in pool `default`). With this key, assign and archive
# give a target one copy on a tape of each listed pool, and check reports a
# target short of a confirmed copy in any of them. Without it: one copy on
# any tape, as the old tool. Pool names use A-Z a-z 0-9 . _ -.
# copy_pools = primary offsite

# How long opening the drive waits for a cartridge that is still loading (a
# new LTO-9 cartridge's first load can take two hours): 3h, 90m, 45s.
# Default 3h. An empty drive is never waited for.
# load_timeout = 3h

# Verification on a schedule (see README, "Keeping tapes healthy"):
# confirm --sample reads a tape's label, first and last tape files and
# sample_files others at random; check reports a tape whose last
# verification (a sample or a confirm) is more than verify_days old.
# sample_files = 3
# verify_days = 365

# ---------------------------------------------------------------------------
# A tape library: a changer (robot and slots) driven with mtx, and one
# [drive.NAME] section per drive. Drive names use only A-Z a-z 0-9 _ -.
# The global option --drive NAME picks the drive a command uses (archive,
# confirm, restore, scan_tape, drive, load, unload); with one drive
# configured it is that one, with several a command that uses a drive
# refuses to guess. Reports (tapes, status, inventory, ...) need no --drive.
# If tape_device is also set under [default], it is one more drive, named
# `default` (not in the changer). Two drives never share a device or a
# changer_index.
#
# [changer]
# # The changer's SCSI generic device (lsscsi -g lists it as "mediumx"),
# # handed to `mtx -f`.
# device = /dev/sg5
# # The mtx program: a path, or a name looked up on PATH (default: mtx).
# command = mtx
#
# [drive.A]
# # The drive's non-rewinding st device.
# device = /dev/nst0
# # This drive's "Data Transfer Element" number in `mtx status` (from 0).
# # Check it: load a cartridge with `mtx -f /dev/sg5 load 1 0`, then
# # `mt -f /dev/nst0 status` must say the drive is online.
# changer_index = 0
#
# [drive.B]
# device = /dev/nst1
# changer_index = 1
#
# Worked example: a library with two drives and a mail slot. `mtx status`
# says
#     Storage Changer /dev/sg5:2 Drives, 6 Slots ( 1 Import/Export )
#   Data Transfer Element 0:Empty
#   Data Transfer Element 1:Empty
#         Storage Element 1:Full :VolumeTag=A00001L9
#         ...
#         Storage Element 6 IMPORT/EXPORT:Empty
# and lsscsi shows the drives as /dev/st0 and /dev/st1 in that order; with
# the sections above, `tapeop inventory` lists every drive and slot with its
# barcode and catalogue tape, `tapeop open_tape T1 --serial A00001L9`
# registers the cartridge by its barcode (a CLN... cleaning cartridge is
# refused), and `tapeop --drive B drive` reports drive B (/dev/nst1).
