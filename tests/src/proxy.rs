//! A TCP proxy between the functions and PostgreSQL, for network faults.
//!
//! Everything a serverless network does to a database connection can be
//! played with it, on loopback only:
//!
//! - [`Proxy::blackhole`]: the path silently drops packets. Nothing is
//!   closed: bytes written into a connection are accepted (by the kernel's
//!   buffers) and never delivered, answers never come, and new connections
//!   are accepted but hear nothing. [`Proxy::restore`] delivers what was
//!   held back, as TCP's retransmissions would once the path is back.
//! - [`Proxy::blackhole_existing`]: only the connections open now go
//!   silent, for good, while new ones work: a NAT that dropped its old
//!   mappings, the half-open connections a thawed Lambda environment
//!   wakes up with. [`Proxy::cut_all`] finally resets them.
//! - [`Proxy::refuse`] and [`Proxy::listen`]: the port refuses
//!   connections (a database that is down), then accepts them again.
//! - [`Proxy::round_trips`]: how many times clients waited for the server
//!   ([`crate::wire`]), to hold the functions to their round trips.
//! - [`Proxy::retarget`]: the server moved (a restarted private server
//!   listens on a new port); clients keep the proxy's address, as they keep
//!   a database's DNS name.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::wire::ClientMessages;

/// What a proxied connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Bytes pass both ways.
    Running,
    /// Bytes are held back (unread), nothing is closed.
    Silent,
    /// The connection is closed, both sides.
    Cut,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    /// The flow new connections start with.
    default_flow: Mutex<Flow>,
    /// Every connection's control, while it lives.
    connections: Mutex<Vec<watch::Sender<Flow>>>,
    /// Connections silenced for good by [`Proxy::blackhole_existing`], kept
    /// open (and so half-open to both ends) until cut.
    orphans: Mutex<Vec<watch::Sender<Flow>>>,
    accepted: AtomicUsize,
    /// Round trips clients have made through the proxy.
    round_trips: AtomicUsize,
}

/// A running proxy on `127.0.0.1` (see the module docs).
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Proxy {
    /// A proxy on a free local port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            default_flow: Mutex::new(Flow::Running),
            connections: Mutex::new(Vec::new()),
            orphans: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            round_trips: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy {
            addr,
            shared,
            listener: Mutex::new(Some(task)),
        }
    }

    /// The proxy's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Round trips clients have made so far, on every connection: the
    /// times they sent a statement or a ping and waited for the answer.
    pub fn round_trips(&self) -> usize {
        self.shared.round_trips.load(Ordering::SeqCst)
    }

    /// Connections open now (in any state).
    pub fn open(&self) -> usize {
        let mut connections = lock(&self.shared.connections);
        connections.retain(|c| !c.is_closed());
        connections.len()
    }

    /// Points new connections at `upstream`.
    pub fn retarget(&self, upstream: SocketAddr) {
        *lock(&self.shared.upstream) = upstream;
    }

    /// Every connection, open and new, goes silent.
    pub fn blackhole(&self) {
        *lock(&self.shared.default_flow) = Flow::Silent;
        self.set_all(Flow::Silent);
    }

    /// Silent connections deliver what they held back and flow again; new
    /// connections flow.
    pub fn restore(&self) {
        *lock(&self.shared.default_flow) = Flow::Running;
        self.set_all(Flow::Running);
    }

    /// The connections open now go silent for good; new ones flow.
    pub fn blackhole_existing(&self) {
        let mut connections = lock(&self.shared.connections);
        connections.retain(|c| !c.is_closed());
        for control in connections.drain(..) {
            control.send_replace(Flow::Silent);
            // Kept alive (unreachable for `restore`) until `cut_all`.
            lock(&self.shared.orphans).push(control);
        }
    }

    /// Closes every connection, including those silenced for good.
    pub fn cut_all(&self) {
        self.set_all(Flow::Cut);
        for control in lock(&self.shared.orphans).drain(..) {
            control.send_replace(Flow::Cut);
        }
    }

    /// Stops accepting: new connections are refused. Open ones are kept.
    pub fn refuse(&self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
    }

    /// Accepts connections again on the same port (after [`Proxy::refuse`]).
    pub async fn listen(&self) {
        if lock(&self.listener).is_some() {
            return;
        }
        // The port was ours a moment ago; rebinding can race its release.
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(error) => panic!("could not listen on {} again: {error}", self.addr),
            }
        };
        *lock(&self.listener) = Some(tokio::spawn(accept_loop(listener, self.shared.clone())));
    }

    fn set_all(&self, flow: Flow) {
        let mut connections = lock(&self.shared.connections);
        connections.retain(|c| !c.is_closed());
        for control in connections.iter() {
            control.send_replace(flow);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.refuse();
        self.cut_all();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((client, _)) = listener.accept().await {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let (control, flow) = watch::channel(*lock(&shared.default_flow));
        lock(&shared.connections).push(control);
        let upstream = *lock(&shared.upstream);
        tokio::spawn(relay(client, upstream, flow, shared.clone()));
    }
}

/// Waits until `flow` is running (true) or cut (false).
async fn until_running(flow: &mut watch::Receiver<Flow>) -> bool {
    loop {
        match *flow.borrow_and_update() {
            Flow::Running => return true,
            Flow::Cut => return false,
            Flow::Silent => {}
        }
        if flow.changed().await.is_err() {
            return false;
        }
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut flow: watch::Receiver<Flow>,
    shared: Arc<Shared>,
) {
    // A silent path delivers nothing, not even the connection to the server.
    if !until_running(&mut flow).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        // The server is down: the client hears the connection end.
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, flow.clone(), Some(shared));
    let down = pump(server_read, client_write, flow, None);
    // Whichever side ends, the other is dropped with it: both close.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flow: watch::Receiver<Flow>,
    // Set on the client's side: its messages are counted.
    counted: Option<Arc<Shared>>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    let mut messages = ClientMessages::default();
    loop {
        if !until_running(&mut flow).await {
            return;
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if let Some(shared) = &counted {
                        let ended = messages.feed(&buffer[..n]);
                        shared.round_trips.fetch_add(ended, Ordering::SeqCst);
                    }
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
            changed = flow.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
