//! A TCP proxy in front of PostgreSQL that counts round trips.
//!
//! Latency above the database is mostly round trips, so the suite counts
//! them rather than guess: every time the client speaks after the server
//! has (or first), that is one more round trip. Pipelined messages sent in
//! one go (sqlx's Bind, Execute and Sync for a prepared statement) count
//! once; a ping, a query and a connection's start-up handshake each count
//! as what they cost on the wire. Only a short phase of the suite runs
//! through it: the proxy itself adds latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Who spoke last on a connection.
const NOBODY: u8 = 0;
const CLIENT: u8 = 1;
const SERVER: u8 = 2;

/// A running proxy.
pub struct CountingProxy {
    addr: SocketAddr,
    turns: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingProxy {
    /// Proxies a local port to the server of `database_url`.
    pub async fn start(database_url: &str) -> Result<CountingProxy> {
        let url = url::Url::parse(database_url).context("parse the database URL")?;
        let upstream = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let turns = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (t, c) = (turns.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay(client, server, t.clone()));
            }
        });
        Ok(CountingProxy {
            addr,
            turns,
            connections,
            task,
        })
    }

    /// `database_url`, pointed at the proxy.
    pub fn url(&self, database_url: &str) -> Result<String> {
        through_local_port(database_url, self.addr.port())
    }

    /// Round trips so far, on every connection.
    pub fn turns(&self) -> u64 {
        self.turns.load(Ordering::Relaxed)
    }

    /// Connections opened through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// `database_url` with its host and port replaced by a local port (a
/// proxy's).
pub(crate) fn through_local_port(database_url: &str, port: u16) -> Result<String> {
    let mut url = url::Url::parse(database_url)?;
    url.set_host(Some("127.0.0.1"))?;
    url.set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("cannot set the port"))?;
    Ok(url.to_string())
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, turns: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let last = Arc::new(AtomicU8::new(NOBODY));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, last.clone(), CLIENT, Some(turns));
    let down = pump(server_read, client_write, last, SERVER, None);
    let _ = tokio::join!(up, down);
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    last: Arc<AtomicU8>,
    me: u8,
    turns: Option<Arc<AtomicU64>>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if last.swap(me, Ordering::AcqRel) != me
            && let Some(turns) = &turns
        {
            turns.fetch_add(1, Ordering::Relaxed);
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
