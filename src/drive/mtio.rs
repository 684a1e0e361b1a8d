//! The Linux magnetic-tape ioctl interface (`<linux/mtio.h>`), reduced to
//! what this tool uses: the `MTIOCTOP` operation call with its `struct mtop`,
//! the `MTIOCGET` status call with its `struct mtget`, the `MTIOCPOS`
//! position call, the operation codes and the generic status (`GMT_*`) bits. This is the only module of the
//! crate with `unsafe` code: each ioctl is made in exactly one place, behind a
//! safe function that borrows the file descriptor for the duration of the
//! call, so the rest of the crate handles tapes through ordinary safe Rust.
#![allow(unsafe_code)]
// The interface is declared as a whole (operation codes, status bits and
// request numbers); `st` uses only part of it.
#![allow(dead_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use libc::{c_int, c_long, c_short};

/// `struct mtop`: one tape operation and its repeat count, for `MTIOCTOP`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtOp {
    /// The operation, one of the `MT*` codes of this module.
    pub mt_op: c_short,
    /// How many times to do it (filemarks to space over or write, ...).
    pub mt_count: c_int,
}

/// `struct mtget`: the drive status returned by `MTIOCGET`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MtGet {
    /// Type of the drive (`MT_ISSCSI2` for st).
    pub mt_type: c_long,
    /// Residual count; st reports the active partition here.
    pub mt_resid: c_long,
    /// Block size in the low 24 bits, density code above them.
    pub mt_dsreg: c_long,
    /// Generic status bits (`GMT_*`).
    pub mt_gstat: c_long,
    /// Recovered-error count in the low word.
    pub mt_erreg: c_long,
    /// Current tape file number, -1 when unknown (`__kernel_daddr_t`).
    pub mt_fileno: i32,
    /// Block number inside the current file, -1 when unknown.
    pub mt_blkno: i32,
}

/// Space forward over `count` filemarks; the head ends after the last one.
pub const MTFSF: c_short = 1;
/// Space backward over `count` filemarks; the head ends before the last one.
pub const MTBSF: c_short = 2;
/// Space forward over `count` records.
pub const MTFSR: c_short = 3;
/// Space backward over `count` records.
pub const MTBSR: c_short = 4;
/// Write `count` filemarks.
pub const MTWEOF: c_short = 5;
/// Rewind to the beginning of the tape.
pub const MTREW: c_short = 6;
/// Rewind and unload (put the drive off line).
pub const MTOFFL: c_short = 7;
/// Do nothing but flush buffers; refreshes the status.
pub const MTNOP: c_short = 8;
/// Like `MTBSF`, then forward over that filemark: start of a file.
pub const MTBSFM: c_short = 10;
/// Like `MTFSF`, then back over that filemark: end of a file.
pub const MTFSFM: c_short = 11;
/// Space to the end of recorded data (st keeps the file number right).
pub const MTEOM: c_short = 12;
/// Set the block size; 0 selects variable-block mode.
pub const MTSETBLK: c_short = 20;
/// Load the tape in the drive (after `MTOFFL`).
pub const MTLOAD: c_short = 30;
/// Write `count` filemarks without flushing the drive buffer.
pub const MTWEOFI: c_short = 35;

/// `mt_type` of a generic SCSI-2 tape drive.
pub const MT_ISSCSI2: c_long = 0x72;
/// Mask of the block size inside `mt_dsreg`.
pub const MT_ST_BLKSIZE_MASK: c_long = 0x00ff_ffff;
/// Shift of the density code inside `mt_dsreg`.
pub const MT_ST_DENSITY_SHIFT: u32 = 24;

/// `mt_gstat`: just after a filemark.
pub const GMT_EOF: c_long = 0x8000_0000;
/// `mt_gstat`: at the beginning of the tape.
pub const GMT_BOT: c_long = 0x4000_0000;
/// `mt_gstat`: at (or past the early warning of) the end of the tape.
pub const GMT_EOT: c_long = 0x2000_0000;
/// `mt_gstat`: at a setmark (DDS).
pub const GMT_SM: c_long = 0x1000_0000;
/// `mt_gstat`: at the end of recorded data.
pub const GMT_EOD: c_long = 0x0800_0000;
/// `mt_gstat`: the cartridge is write-protected.
pub const GMT_WR_PROT: c_long = 0x0400_0000;
/// `mt_gstat`: the drive is on line (a tape is loaded and ready).
pub const GMT_ONLINE: c_long = 0x0100_0000;
/// `mt_gstat`: the door is open (no tape).
pub const GMT_DR_OPEN: c_long = 0x0004_0000;
/// `mt_gstat`: immediate report mode.
pub const GMT_IM_REP_EN: c_long = 0x0001_0000;

/// The raw ioctl declarations, kept private: only the safe wrappers below
/// call them.
mod sys {
    use super::{MtGet, MtOp};

    // #define MTIOCTOP _IOW('m', 1, struct mtop)
    nix::ioctl_write_ptr!(mtioctop, b'm', 1, MtOp);
    // #define MTIOCGET _IOR('m', 2, struct mtget)
    nix::ioctl_read!(mtiocget, b'm', 2, MtGet);
    // #define MTIOCPOS _IOR('m', 3, struct mtpos)
    nix::ioctl_read!(mtiocpos, b'm', 3, libc::c_long);
}

/// The request number of `MTIOCTOP` (`_IOW('m', 1, struct mtop)`).
pub const MTIOCTOP: u64 = nix::request_code_write!(b'm', 1, std::mem::size_of::<MtOp>()) as u64;
/// The request number of `MTIOCGET` (`_IOR('m', 2, struct mtget)`).
pub const MTIOCGET: u64 = nix::request_code_read!(b'm', 2, std::mem::size_of::<MtGet>()) as u64;

/// Run one tape operation (`MTIOCTOP`): `op` (an `MT*` code) `count` times.
pub fn mt_op(fd: BorrowedFd<'_>, op: c_short, count: c_int) -> nix::Result<()> {
    let arg = MtOp { mt_op: op, mt_count: count };
    // SAFETY: `fd` is a descriptor borrowed for this call, and `arg` is a
    // live, properly laid out `struct mtop` that the kernel only reads
    // (`_IOW` of exactly its size) during the call.
    unsafe { sys::mtioctop(fd.as_raw_fd(), &arg) }.map(|_| ())
}

/// Read the drive status (`MTIOCGET`).
pub fn mt_get(fd: BorrowedFd<'_>) -> nix::Result<MtGet> {
    let mut status = MtGet::default();
    // SAFETY: `fd` is a descriptor borrowed for this call, and `status` is
    // a live, exclusively borrowed `struct mtget` that the kernel fills
    // (`_IOR` of exactly its size) during the call.
    unsafe { sys::mtiocget(fd.as_raw_fd(), &mut status) }?;
    Ok(status)
}

/// Read the drive's absolute logical position (`MTIOCPOS`, `struct mtpos`):
/// the number of blocks and filemarks before the head, counted from the
/// beginning of the tape by the drive itself (SCSI READ POSITION).
pub fn mt_pos(fd: BorrowedFd<'_>) -> nix::Result<c_long> {
    let mut pos: c_long = 0;
    // SAFETY: `fd` is a descriptor borrowed for this call, and `pos` is a
    // live, exclusively borrowed `struct mtpos` (one `long`) that the kernel
    // fills (`_IOR` of exactly its size) during the call.
    unsafe { sys::mtiocpos(fd.as_raw_fd(), &mut pos) }?;
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_request_numbers_match_linux_mtio_h() {
        assert_eq!(std::mem::size_of::<MtOp>(), 8);
        if cfg!(target_pointer_width = "64") {
            assert_eq!(std::mem::size_of::<MtGet>(), 48);
            assert_eq!(MTIOCGET, 0x8030_6d02);
        }
        assert_eq!(MTIOCTOP, 0x4008_6d01);
    }
}
