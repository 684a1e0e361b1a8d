//! The helpers of the integration tests, in one place. Every test file
//! includes them with `mod support;` and picks what it needs, e.g.
//! `use support::{vst, world};`:
//! - `fixture`: a writable copy of the old tool's public legacy fixture,
//!   running the real binary there, md5s, snapshots of the legacy tables;
//! - `world`: a fresh tapeop world in a temp dir (config, emulator, catalogue);
//! - `vst`: the virtual st drive over FUSE; `vst_rig`: a world with one;
//! - `library`: a simulated tape library (mtx-sim and virtual drives);
//! - `sshd`: a private OpenSSH server; `datatree`: an awkward source tree.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

pub mod datatree;
pub mod fixture;
pub mod library;
pub mod library_rig;
pub mod sshd;
pub mod vst;
pub mod vst_rig;
pub mod world;
