//! How the rehearsal examples (`examples/vst.rs`, `examples/vst_library.rs`)
//! serve: until Ctrl-C (SIGINT), or until standard input closes unless told
//! to ignore it, saying so on standard output with the example's prefix.

use std::sync::mpsc;

use anyhow::{Context, Result};

/// Block until Ctrl-C or the end of standard input (unless `ignore_stdin`),
/// printing `{prefix}serving until ...` first; returns why it stopped.
pub fn until_stopped(ignore_stdin: bool, prefix: &str) -> Result<&'static str> {
    let (stop_tx, stop_rx) = mpsc::channel::<&'static str>();
    let on_signal = stop_tx.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send("signal");
    })
    .context("installing the Ctrl-C handler")?;
    if !ignore_stdin {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stop_tx.send("end of standard input");
        });
    }
    println!("{prefix}serving until Ctrl-C{}", if ignore_stdin { "" } else { " or end of input" });
    Ok(stop_rx.recv().unwrap_or("channel closed"))
}
