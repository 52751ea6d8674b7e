//! A TCP proxy in front of PostgreSQL that delays each direction: the
//! database as a user on RDS sees it, a network away.
//!
//! On loopback a round trip costs 20-50 us, so the figures measured there
//! hide what every extra round trip costs across a network (0.3-1 ms in a
//! VPC). Through this proxy each chunk of bytes is forwarded a fixed delay
//! after it arrived, in each direction, so a round trip costs twice that
//! more; pipelined bytes stay pipelined (a chunk's delay starts when it
//! arrives, not when the one before it left).
//!
//! Tokio's timers tick in milliseconds, too coarse for a quarter of one,
//! so each direction of each connection is a pair of plain threads: one
//! reads and stamps, one sleeps until the stamp plus the delay and writes.
//! A thread's sleep overshoots (the kernel's timer slack, the wake-up), so
//! the proxy measures by how much when it starts and sleeps that much less;
//! the suite still measures the round trip it ends up adding.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A running proxy. It serves until the process ends (the suite is one
/// process); each connection ends with its peers.
pub struct DelayProxy {
    addr: SocketAddr,
}

impl DelayProxy {
    /// Proxies a local port to the server of `database_url`, delaying each
    /// direction by `one_way`.
    pub fn start(database_url: &str, one_way: Duration) -> Result<DelayProxy> {
        let url = url::Url::parse(database_url).context("parse the database URL")?;
        let upstream = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let one_way = one_way.saturating_sub(overshoot(one_way));
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let _ = relay(client, server, one_way);
            }
        });
        Ok(DelayProxy { addr })
    }

    /// `database_url`, pointed at the proxy.
    pub fn url(&self, database_url: &str) -> Result<String> {
        crate::wire::through_local_port(database_url, self.addr.port())
    }
}

/// The median by which a sleep of `wanted` overshoots on this machine.
fn overshoot(wanted: Duration) -> Duration {
    let mut over: Vec<Duration> = (0..25)
        .map(|_| {
            let t = Instant::now();
            thread::sleep(wanted);
            t.elapsed().saturating_sub(wanted)
        })
        .collect();
    over.sort_unstable();
    over[over.len() / 2]
}

fn relay(client: TcpStream, server: TcpStream, one_way: Duration) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    delayed(client.try_clone()?, server.try_clone()?, one_way);
    delayed(server, client, one_way);
    Ok(())
}

/// Forwards what `from` sends to `to`, each chunk `one_way` after it came.
fn delayed(mut from: TcpStream, mut to: TcpStream, one_way: Duration) {
    let (chunks, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if chunks.send((Instant::now(), buffer[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (arrived, bytes) in due {
            let at = arrived + one_way;
            let now = Instant::now();
            if at > now {
                thread::sleep(at - now);
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
