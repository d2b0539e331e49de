//! TCP relays from a scenario's network namespace to the host's loopback.
//!
//! A pod run by the harness sees only its namespace's loopback, where its Services' names resolve
//! to 127.0.0.1. To let it reach a server that runs on the host (the tests' PostgreSQL), a relay
//! listens on 127.0.0.1:`port` inside the namespace and copies each connection, both ways, to a
//! loopback address of the host. Only loopback targets are accepted.
//!
//! Plain threads, no async runtime: a relay keeps working while a test blocks its runtime (on a
//! `psql` run, say), and stopping it never needs a runtime that may already be gone.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::CloneFlags;

use super::{Error, NetNs};

/// How long a relayed connection waits for its target to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the idle listener looks for new connections and for the stop signal.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// A running relay from 127.0.0.1:`port` in a network namespace to `target` on the host.
/// Dropping it closes the listener, cuts the relayed connections and waits for its threads.
#[derive(Debug)]
pub struct PortForward {
    port: u16,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stopping: AtomicBool,
    accepted: AtomicUsize,
    /// Both ends of every open relayed connection, to cut them on stop.
    open: Mutex<HashMap<usize, [TcpStream; 2]>>,
}

impl PortForward {
    /// Listens on 127.0.0.1:`port` inside `netns` and relays every connection to `target`.
    pub fn start(netns: &NetNs, port: u16, target: SocketAddr) -> Result<Self, Error> {
        if !target.ip().is_loopback() {
            return Err(Error::Spec(format!(
                "relay target {target} is not a loopback address"
            )));
        }
        let listener = listen_in(netns.path(), port).map_err(|source| Error::Io {
            what: format!("listen on 127.0.0.1:{port} in netns {}", netns.name()),
            source,
        })?;
        let shared = Arc::new(Shared::default());
        // Spawned from the caller's thread, so it (and the threads it starts) live in the host's
        // namespace and dial `target` there; the listening socket stays in `netns`.
        let acceptor = std::thread::Builder::new()
            .name(format!("relay-{port}"))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(&listener, &shared, target)
            })
            .map_err(|source| Error::Io {
                what: format!("start the relay thread for port {port}"),
                source,
            })?;
        Ok(Self {
            port,
            target,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The port the relay listens on inside the namespace.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// How many connections the relay has accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A non-blocking listening socket on 127.0.0.1:`port` in the namespace at `ns_path`.
fn listen_in(ns_path: &Path, port: u16) -> io::Result<TcpListener> {
    let ns = File::open(ns_path)?;
    // As in netns::connect_in: a fresh thread enters the namespace only to make the socket, which
    // stays bound to that namespace; the thread ends right after.
    let listener = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET)?;
                TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            })
            .join()
            .expect("netns listen thread panicked")
    })?;
    // Polled, so the acceptor notices a stop without anything having to wake a blocked accept().
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, target: SocketAddr) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping.load(Ordering::SeqCst) {
        connections.retain(|c| !c.is_finished());
        let client = match listener.accept() {
            Ok((client, _)) => client,
            // Nothing to accept yet, a connection reset before it was accepted, or descriptors
            // exhausted for a moment: look again shortly.
            Err(_) => {
                std::thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        // The accepted socket is relayed with blocking reads and writes.
        if client.set_nonblocking(false).is_err() {
            continue;
        }
        let id = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name(format!("relay-conn-{id}"))
            .spawn({
                let shared = Arc::clone(shared);
                move || relay_connection(id, client, target, &shared)
            });
        if let Ok(handle) = spawned {
            connections.push(handle);
        }
    }
    for stream in shared.open.lock().expect("relay lock").values().flatten() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Copies `client` to a new connection to `target` and back until both directions end. A
/// target that refuses closes the client's connection, as the server itself would.
fn relay_connection(id: usize, client: TcpStream, target: SocketAddr, shared: &Shared) {
    let Ok(server) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return;
    };
    let (Ok(client_w), Ok(server_w)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (Ok(client_c), Ok(server_c)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    // Small request/response messages (the PostgreSQL protocol): no Nagle delay.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    {
        let mut open = shared.open.lock().expect("relay lock");
        // Registered after the stop was signalled, it would never be cut: cut it now.
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        open.insert(id, [client_c, server_c]);
    }
    std::thread::scope(|scope| {
        scope.spawn(|| pump(client, server_w));
        pump(server, client_w);
    });
    shared.open.lock().expect("relay lock").remove(&id);
}

/// Copies `from` to `to` until `from` ends, then half-closes `to` so its peer sees the end too.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    // The reading side is done: unblock a peer still writing into it.
    let _ = from.shutdown(Shutdown::Read);
}
