//! The public listener: accepts connections and serves them with hyper,
//! bounding what one client can hold (SPEC §5):
//!
//! - a request header must arrive within `server.header_timeout` (hyper's
//!   own header-read timer; it also runs while an HTTP/1.1 connection waits
//!   for its next request, so such a connection closes after the shorter of
//!   the header and idle timeouts);
//! - a connection with no request in flight for `server.idle_timeout` is
//!   shut down gracefully (HTTP/1.1 and HTTP/2 alike);
//! - open connections are capped overall and per client address; a
//!   connection over a cap gets a one-line 503 and is closed at once, so it
//!   never holds a file descriptor.
//!
//! Body timeouts and the 413 for an oversized `Content-Length` are request
//! matters and live in the HTTP layer (`http::limits`).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::http::canonical;
use crate::meter;

/// File descriptors kept back from the connection cap for the store, the
/// database, SMS vendors and the process itself.
const RESERVED_FDS: usize = 64;
/// The overall cap when the open-file limit allows more.
const MAX_AUTO_CONNECTIONS: usize = 10_000;

/// How connections are bounded; see the module docs.
#[derive(Debug, Clone)]
pub struct ConnectionRules {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// Peers that carry many clients (trusted proxies): no per-address cap.
    pub exempt: Arc<Vec<IpNet>>,
}

impl ConnectionRules {
    pub fn from_config(c: &ServerConfig) -> Self {
        let max_connections = match c.max_connections {
            0 => auto_max_connections(open_file_limit()),
            n => n,
        };
        let max_per_ip = match c.max_connections_per_ip {
            0 => (max_connections / 4).clamp(8, 256),
            n => n,
        };
        Self {
            header_timeout: c.header_timeout.0,
            idle_timeout: c.idle_timeout.0,
            max_connections,
            max_per_ip,
            exempt: Arc::new(c.trusted_proxies.0.clone()),
        }
    }
}

/// The open-file limit leaves room for this many client connections.
fn auto_max_connections(nofile: Option<usize>) -> usize {
    nofile
        .map_or(1_024, |n| n.saturating_sub(RESERVED_FDS))
        .clamp(16, MAX_AUTO_CONNECTIONS)
}

/// The soft open-file limit, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// Counts open connections, overall and per address.
struct Gate {
    total: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    rules: ConnectionRules,
}

/// One admitted connection; dropping it frees its places.
struct Admission {
    _total: OwnedSemaphorePermit,
    ip: Option<IpAddr>,
    gate: Arc<Gate>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut map = self.gate.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

impl Gate {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, &'static str> {
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| "total")?;
        let ip = canonical(ip);
        let trusted = self.rules.exempt.iter().any(|n| n.contains(&ip));
        // One IPv6 subscriber usually holds a whole /64: count it as one.
        let ip = match ip {
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
            v4 => v4,
        };
        if trusted {
            return Ok(Admission {
                _total: total,
                ip: None,
                gate: self.clone(),
            });
        }
        let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= self.rules.max_per_ip {
            return Err("per_ip");
        }
        *n += 1;
        Ok(Admission {
            _total: total,
            ip: Some(ip),
            gate: self.clone(),
        })
    }
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
}

/// One request in flight; dropping it (the request finished, or was
/// abandoned, as when an HTTP/2 client resets its stream) ends it.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
            let due = since + idle;
            if Instant::now() >= due && self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::sleep_until(due.max(Instant::now() + Duration::from_millis(100))).await;
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then stops
/// accepting, lets in-flight requests finish for at most `grace`, and
/// returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    rules: ConnectionRules,
    stop: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) {
    let max = rules.max_connections;
    tracing::info!(
        max_connections = max,
        max_connections_per_ip = rules.max_per_ip,
        header_timeout_ms = rules.header_timeout.as_millis() as u64,
        idle_timeout_ms = rules.idle_timeout.as_millis() as u64,
        "connection limits"
    );
    let gate = Arc::new(Gate {
        total: Arc::new(Semaphore::new(max)),
        per_ip: Mutex::new(HashMap::new()),
        rules,
    });
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection that died
                    // before it was accepted: wait a moment instead of
                    // spinning on the same error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match gate.admit(peer.ip()) {
            Ok(admission) => {
                meter::connection_opened();
                let conn = serve_connection(
                    stream,
                    peer,
                    router.clone(),
                    gate.rules.clone(),
                    shutdown_rx.clone(),
                );
                tokio::spawn(async move {
                    conn.await;
                    drop(admission);
                });
            }
            Err(cap) => refuse(stream, cap),
        }
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    // Every connection holds one place of the total: all places back means
    // all connections are done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(grace, gate.total.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "requests still in flight after the shutdown grace time; exiting"
        );
    }
}

/// A connection over a cap: a short 503 if the socket takes it now, then
/// closed.
fn refuse(stream: TcpStream, cap: &'static str) {
    meter::connection_refused(cap);
    tracing::debug!(cap, "connection refused: over the cap");
    let _ = stream.try_write(
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 20\r\nconnection: close\r\n\r\ntoo many connections",
    );
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    rules: ConnectionRules,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        idle_since: Mutex::new(Instant::now()),
    });
    let tracked = activity.clone();
    let svc = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        let in_flight = tracked.begin();
        async move {
            let resp = router.oneshot(req).await;
            drop(in_flight);
            resp
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(rules.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let conn =
        builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    let mut closing = false;
    let idle = activity.idle_for(rules.idle_timeout);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut idle, if !closing => {
                closing = true;
                meter::connection_idle_closed();
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_cap_leaves_room_below_the_open_file_limit() {
        assert_eq!(auto_max_connections(Some(256)), 192);
        assert_eq!(auto_max_connections(Some(1_048_576)), MAX_AUTO_CONNECTIONS);
        assert_eq!(auto_max_connections(Some(40)), 16);
        assert_eq!(auto_max_connections(None), 1_024);
    }

    #[test]
    fn the_open_file_limit_is_read() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }

    #[test]
    fn a_per_address_cap_frees_its_place_on_drop() {
        let rules = ConnectionRules {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: 8,
            max_per_ip: 2,
            exempt: Arc::new(vec!["10.0.0.0/8".parse().expect("cidr")]),
        };
        let gate = Arc::new(Gate {
            total: Arc::new(Semaphore::new(8)),
            per_ip: Mutex::new(HashMap::new()),
            rules,
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let first = gate.admit(a).expect("first");
        let _second = gate.admit(a).expect("second");
        assert_eq!(gate.admit(a).err(), Some("per_ip"));
        // Another address is not affected, nor is a trusted proxy.
        let _other = gate.admit("192.0.2.2".parse().expect("ip")).expect("other");
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let _p: Vec<_> = (0..5).map(|_| gate.admit(proxy).expect("proxy")).collect();
        // Eight open: the total is reached.
        assert_eq!(
            gate.admit("192.0.2.9".parse().expect("ip")).err(),
            Some("total")
        );
        drop(first);
        let _again = gate.admit(a).expect("a place came back");
        // IPv6 addresses of one /64 share one count.
        let six = Arc::new(Gate {
            total: Arc::new(Semaphore::new(8)),
            per_ip: Mutex::new(HashMap::new()),
            rules: gate.rules.clone(),
        });
        let _v1 = six
            .admit("2001:db8:1:2::1".parse().expect("ip"))
            .expect("first");
        let _v2 = six
            .admit("2001:db8:1:2::ffff".parse().expect("ip"))
            .expect("second");
        assert_eq!(
            six.admit("2001:db8:1:2:3::9".parse().expect("ip")).err(),
            Some("per_ip")
        );
        assert!(six.admit("2001:db8:1:3::1".parse().expect("ip")).is_ok());
    }
}
