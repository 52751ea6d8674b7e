//! Catching Ctrl-C (SIGINT) and SIGTERM, so that a command is not killed
//! before it has stopped the processes and the database it started.

use std::sync::mpsc::{Receiver, channel};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// From now on SIGINT and SIGTERM no longer end the process; each one arrives
/// on the returned channel instead.
pub fn listen() -> Result<Receiver<i32>> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("Failed to install the signal handlers")?;
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(signal).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}
