//! tapeop: archives a data host's directories onto LTO tape, one tar per tape
//! file, and proves file by file that the tape holds what the disk held.
//! The library holds every module (so benchmarks and tests can drive the
//! catalogue and the data path directly); `main.rs` is the thin binary.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// First, so that its never-panicking print macros shadow std's in every
// module below (see `out`).
#[macro_use]
pub mod out;

pub mod buffer;
pub mod catalog;
pub mod catalogue_file;
pub mod changer;
pub mod cli;
pub mod commands;
pub mod config;
pub mod drive;
pub mod exit_codes;
pub mod fault;
pub mod label;
pub mod library;
pub mod lock;
pub mod manifest;
pub mod prompt;
pub mod remote;
pub mod stop;
pub mod tape_error;
pub mod tape_file;
pub mod target_path;
pub mod tarstream;
pub mod verify_stream;
