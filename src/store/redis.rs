//! The shared store: Redis single node (`redis://`, `rediss://`), Cluster
//! (`redis+cluster://h1:p1,h2:p2`) or Sentinel
//! (`redis+sentinel://h1:p1,h2:p2/master`).
//!
//! Every operation touches one key, so it works on Cluster (keys of one
//! mobile share a hash tag), and is one command or one Lua script — except
//! the code check, which is two scripts with a constant-time comparison in
//! Rust between them: the first counts the guess and returns the stored MAC,
//! the second deletes the code only if it still holds that MAC, so of two
//! right guesses only the one whose delete removed it succeeds. Windows
//! and TTLs are Redis's own expiries: the server's clock decides, not the
//! instances'. The connection is multiplexed and reconnects by itself; it is
//! opened lazily, so phoneauth starts (and answers DBERR) while Redis is down
//! and recovers when it returns. Every call is bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Script, Value};
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, RwLock};

use super::{
    CodeCheck, CodeClaim, Counter, IndexAdd, KvStore, PUMP_WINDOWS, PumpCounts, PumpKeys,
    StoreError,
};

/// Timeouts of the Redis connection.
#[derive(Debug, Clone, Copy)]
pub struct RedisTimeouts {
    pub connect: Duration,
    /// Bound on one whole operation, reconnect attempts included.
    pub operation: Duration,
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            operation: Duration::from_secs(2),
        }
    }
}

/// How to reach Redis, parsed from `store.url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
    },
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = split_hosts(rest.trim_end_matches('/'))
                .map(|h| format!("redis://{h}"))
                .collect();
            if nodes.is_empty() {
                return Err("redis+cluster:// needs at least one host:port".into());
            }
            return Ok(Self::Cluster(nodes));
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (hosts, master) = rest
                .split_once('/')
                .ok_or("redis+sentinel:// needs /<master name> after the hosts")?;
            let sentinels: Vec<String> =
                split_hosts(hosts).map(|h| format!("redis://{h}")).collect();
            if sentinels.is_empty() || master.is_empty() {
                return Err("redis+sentinel://host:port/<master name>".into());
            }
            return Ok(Self::Sentinel {
                sentinels,
                master: master.to_owned(),
            });
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            redis::Client::open(url).map_err(|e| e.to_string())?;
            return Ok(Self::Single(url.to_owned()));
        }
        Err("not a Redis URL".into())
    }
}

fn split_hosts(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|h| !h.is_empty())
}

/// One multiplexed connection of whichever topology.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

struct Scripts {
    set_nx: Script,
    incr_window: Script,
    decr: Script,
    peek: Script,
    put_code: Script,
    guess_code: Script,
    delete_if: Script,
    hold_if: Script,
    release_if: Script,
    index_add: Script,
    pump_send: Script,
    pump_verified: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            // {1} when stored; {0, pttl} when the key exists.
            set_nx: Script::new(
                r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
                    return {1, 0}
                  end
                  return {0, redis.call('PTTL', KEYS[1])}",
            ),
            // A window opens on the first hit; a key that lost its expiry is healed.
            // KEYS: 2 block keys, 4 sent counters, 4 verified counters;
            // ARGV: the 4 windows in ms. A block (a counter with a TTL) stops
            // everything; otherwise the sends are counted.
            pump_send: Script::new(
                r"for i = 1, 2 do
                    local c = tonumber(redis.call('GET', KEYS[i]) or '0')
                    if c > 0 then return {i, redis.call('PTTL', KEYS[i])} end
                  end
                  local out = {0, 0}
                  for i = 3, 6 do
                    local c = redis.call('INCR', KEYS[i])
                    if c == 1 or redis.call('PTTL', KEYS[i]) < 0 then
                      redis.call('PEXPIRE', KEYS[i], ARGV[i - 2])
                    end
                    out[#out + 1] = c
                  end
                  for i = 7, 10 do
                    out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
                  end
                  return out",
            ),
            pump_verified: Script::new(
                r"for i = 1, 4 do
                    local c = redis.call('INCR', KEYS[i])
                    if c == 1 or redis.call('PTTL', KEYS[i]) < 0 then
                      redis.call('PEXPIRE', KEYS[i], ARGV[i])
                    end
                  end
                  return 0",
            ),
            incr_window: Script::new(
                r"local c = redis.call('INCR', KEYS[1])
                  local t = redis.call('PTTL', KEYS[1])
                  if c == 1 or t < 0 then
                    redis.call('PEXPIRE', KEYS[1], ARGV[1])
                    t = tonumber(ARGV[1])
                  end
                  return {c, t}",
            ),
            decr: Script::new(
                r"local c = tonumber(redis.call('GET', KEYS[1]) or '0')
                  if c > 0 then redis.call('DECR', KEYS[1]) end
                  return 0",
            ),
            peek: Script::new(
                r"local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
                  local t = redis.call('PTTL', KEYS[1])
                  if t < 0 then t = 0 end
                  return {c, t}",
            ),
            put_code: Script::new(
                r"redis.call('DEL', KEYS[1])
                  redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'guesses', 0)
                  redis.call('PEXPIRE', KEYS[1], ARGV[2])
                  return 0",
            ),
            // Counts the guess and returns the stored MAC for a constant-time
            // comparison in Rust; false when absent, held by a claim (by the
            // server's clock) or out of guesses.
            guess_code: Script::new(
                r"local mac = redis.call('HGET', KEYS[1], 'mac')
                  if not mac then return false end
                  local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
                  local t = redis.call('TIME')
                  if held > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then
                    return false
                  end
                  local g = tonumber(redis.call('HGET', KEYS[1], 'guesses') or '0')
                  if g >= tonumber(ARGV[1]) then return false end
                  g = redis.call('HINCRBY', KEYS[1], 'guesses', 1)
                  return {mac, g}",
            ),
            // Deletes the code only if it is still the one that was guessed, so
            // a code re-sent meanwhile survives; 1 for the caller that deleted.
            // A live hold (a registration committing) keeps the code.
            delete_if: Script::new(
                r"if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[1] then return 0 end
                  local t = redis.call('TIME')
                  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                  if tonumber(redis.call('HGET', KEYS[1], 'held') or '0') > now then
                    return 0
                  end
                  return redis.call('DEL', KEYS[1])",
            ),
            // Holds the code for ARGV[2] ms if it still holds the guessed MAC
            // and no live hold is on it; 1 for the caller that got the hold.
            // A right guess is no guess: the count the guess script took is
            // given back, so a released code keeps every guess it had.
            hold_if: Script::new(
                r"if redis.call('HGET', KEYS[1], 'mac') ~= ARGV[1] then return 0 end
                  local t = redis.call('TIME')
                  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
                  local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
                  if held > now then return 0 end
                  redis.call('HSET', KEYS[1], 'held', now + tonumber(ARGV[2]), 'holder', ARGV[3])
                  redis.call('HINCRBY', KEYS[1], 'guesses', -1)
                  return 1",
            ),
            // Ends the hold only for its holder.
            release_if: Script::new(
                r"if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then
                    redis.call('HDEL', KEYS[1], 'held', 'holder')
                  end
                  return 0",
            ),
            // A sorted set scored by the server's clock in microseconds: the
            // newest member last; the oldest beyond the cap removed and
            // returned.
            index_add: Script::new(
                r"local t = redis.call('TIME')
                  local score = tonumber(t[1]) * 1000000 + tonumber(t[2])
                  redis.call('ZADD', KEYS[1], score, ARGV[1])
                  redis.call('PEXPIRE', KEYS[1], ARGV[3])
                  local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
                  if over > 0 then
                    local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
                    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
                    return old
                  end
                  return {}",
            ),
        }
    }
}

pub struct RedisStore {
    target: RedisTarget,
    prefix: String,
    timeouts: RedisTimeouts,
    conn: RwLock<Option<Conn>>,
    /// When the connection was last dropped to re-read the topology (ms
    /// since `started`): at most one drop per [`TOPOLOGY_REREAD_GAP`].
    last_reread_ms: std::sync::atomic::AtomicU64,
    started: std::time::Instant,
    connecting: Mutex<()>,
    sentinel: Option<Mutex<SentinelClient>>,
    scripts: Scripts,
}

impl RedisStore {
    /// Builds the store; the first connection is made on first use (and tried
    /// once here, only to log early whether Redis answers).
    pub async fn open(
        url: &str,
        prefix: &str,
        timeouts: RedisTimeouts,
    ) -> Result<Arc<Self>, StoreError> {
        let target = RedisTarget::parse(url).map_err(StoreError::Unavailable)?;
        let sentinel = match &target {
            RedisTarget::Sentinel { sentinels, master } => Some(Mutex::new(
                SentinelClient::build(
                    sentinels.clone(),
                    master.clone(),
                    None,
                    SentinelServerType::Master,
                )
                .map_err(unavailable)?,
            )),
            _ => None,
        };
        let store = Arc::new(Self {
            target,
            prefix: prefix.to_owned(),
            timeouts,
            conn: RwLock::new(None),
            last_reread_ms: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            connecting: Mutex::new(()),
            sentinel,
            scripts: Scripts::new(),
        });
        if let Err(e) = store.ping().await {
            tracing::warn!(error = %e, "Redis does not answer yet; requests get DBERR until it does");
        }
        Ok(store)
    }

    /// One guess at a code (see `verify_code` and `claim_code`): the guess
    /// script counts it and returns the MAC; a match then consumes the code,
    /// or holds it for the lease, only if it still holds that MAC.
    async fn guess(
        &self,
        key: &str,
        candidate: &[u8],
        max_guesses: u32,
        hold: Option<(Duration, &[u8])>,
    ) -> Result<CodeCheck, StoreError> {
        let k = &self.key(key);
        let guessed: Option<(Vec<u8>, u32)> = self
            .run(Resend::Never, |mut c| async move {
                let script = &self.scripts.guess_code;
                script.key(k).arg(max_guesses).invoke_async(&mut c).await
            })
            .await?;
        let Some((mac, guesses)) = guessed else {
            return Ok(CodeCheck::Missing);
        };
        let matched = bool::from(mac.as_slice().ct_eq(candidate));
        let mac = &mac;
        let exhausted = guesses >= max_guesses;
        if matched && let Some((lease, holder)) = hold {
            let held: i64 = self
                .run(Resend::Never, |mut c| async move {
                    let script = &self.scripts.hold_if;
                    let mut call = script.key(k);
                    call.arg(mac).arg(ms(lease)).arg(holder);
                    call.invoke_async(&mut c).await
                })
                .await?;
            // Only the caller that got the hold may use the code.
            return Ok(if held == 1 {
                CodeCheck::Match
            } else {
                CodeCheck::Missing
            });
        }
        if matched || exhausted {
            let deleted: i64 = self
                .run(Resend::Never, |mut c| async move {
                    let script = &self.scripts.delete_if;
                    script.key(k).arg(mac).invoke_async(&mut c).await
                })
                .await?;
            if matched {
                // Only the caller whose delete removed the code has used it.
                return Ok(if deleted == 1 {
                    CodeCheck::Match
                } else {
                    CodeCheck::Missing
                });
            }
        }
        Ok(CodeCheck::Wrong {
            remaining: max_guesses.saturating_sub(guesses),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        if let Some(c) = self.conn.read().await.as_ref() {
            return Ok(c.clone());
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.conn.read().await.as_ref() {
            return Ok(c.clone());
        }
        let c = tokio::time::timeout(self.timeouts.connect, self.connect())
            .await
            .map_err(|_| StoreError::Unavailable("timed out connecting to Redis".into()))??;
        *self.conn.write().await = Some(c.clone());
        Ok(c)
    }

    async fn connect(&self) -> Result<Conn, StoreError> {
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.response_timeout()))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        match &self.target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
                let m = client
                    .get_connection_manager_with_config(manager_config)
                    .await
                    .map_err(unavailable)?;
                Ok(Conn::Single(m))
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClientBuilder::new(nodes.clone())
                    // A node that does not answer must not hold a rebuild
                    // of the whole connection past a request's budget.
                    .connection_timeout(self.timeouts.connect.min(NODE_CONNECT_TIMEOUT))
                    .response_timeout(self.response_timeout())
                    .retries(0)
                    .build()
                    .map_err(unavailable)?;
                let c = client.get_async_connection().await.map_err(unavailable)?;
                Ok(Conn::Cluster(c))
            }
            RedisTarget::Sentinel { .. } => {
                let Some(sentinel) = &self.sentinel else {
                    return Err(StoreError::Unavailable("sentinel client missing".into()));
                };
                let client = sentinel
                    .lock()
                    .await
                    .async_get_client()
                    .await
                    .map_err(unavailable)?;
                let m = client
                    .get_connection_manager_with_config(manager_config)
                    .await
                    .map_err(unavailable)?;
                Ok(Conn::Single(m))
            }
        }
    }

    /// How long one reply may take: half the operation's bound, so that a
    /// hung node shows up as a time-out (and a topology re-read) while there
    /// is still time to try again.
    fn response_timeout(&self) -> Duration {
        self.timeouts.operation / 2
    }

    /// Forgets the connection so the next call reads the topology afresh
    /// (Cluster: the slot map; Sentinel: the current primary), at most once
    /// per [`TOPOLOGY_REREAD_GAP`] however many requests fail at once. A
    /// single node's connection manager reconnects by itself.
    async fn reread_topology(&self) {
        use std::sync::atomic::Ordering;
        if matches!(self.target, RedisTarget::Single(_)) {
            return;
        }
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_reread_ms.load(Ordering::Relaxed);
        let gap = u64::try_from(TOPOLOGY_REREAD_GAP.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < gap && last != 0 {
            return;
        }
        if self
            .last_reread_ms
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            *self.conn.write().await = None;
        }
    }

    /// Runs one operation under the timeout and within the request's budget
    /// (`crate::budget`), through failovers (SPEC §7):
    ///
    /// - An answer that proves the command was not applied (`MOVED`, `ASK`,
    ///   `TRYAGAIN`, `CLUSTERDOWN`, `READONLY`, `LOADING`, `MASTERDOWN`, a
    ///   refused connection, no connection at all) is tried again after a
    ///   short pause, whatever the operation.
    /// - A dropped connection or a time-out leaves the outcome unknown: the
    ///   operation is sent again only when `resend` says a repeat cannot
    ///   matter; a consume or a counter is never re-sent, the request
    ///   answers DBERR instead.
    /// - On Cluster and Sentinel, each such failure forgets the connection,
    ///   so the next attempt reads the topology afresh (the slot map, or the
    ///   sentinels' current primary) at once instead of on a timer. The
    ///   cluster client's own retries are off for the same reason: it would
    ///   re-send after a dropped connection.
    async fn run<T, F>(&self, resend: Resend, op: impl Fn(Conn) -> F) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, RedisError>>,
    {
        let attempts = async {
            let mut pause = RETRY_PAUSE_MIN;
            loop {
                let outcome = match self.conn().await {
                    Ok(conn) => op(conn).await.map_err(Reason::Redis),
                    Err(e) => Err(Reason::Store(e)),
                };
                let e = match outcome {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                let (again, topology) = match &e {
                    _ if resend == Resend::Once => (false, true),
                    Reason::Store(_) => (true, true),
                    Reason::Redis(e) if not_applied(e) => (true, true),
                    Reason::Redis(e) if outcome_unknown(e) => (resend == Resend::Safe, true),
                    Reason::Redis(_) => (false, false),
                };
                if topology {
                    self.reread_topology().await;
                }
                if !again {
                    return Err(match e {
                        Reason::Store(e) => e,
                        Reason::Redis(e) => unavailable(e),
                    });
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_PAUSE_MAX);
            }
        };
        // The bound covers getting a connection too: callers queued behind a
        // reconnect must not wait for each other's attempts.
        match crate::budget::bound(tokio::time::timeout(self.timeouts.operation, attempts)).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(
                "Redis did not answer in time".into(),
            )),
        }
    }
}

/// The least time between two topology re-reads.
const TOPOLOGY_REREAD_GAP: Duration = Duration::from_millis(200);
/// Bound on connecting to one cluster node.
const NODE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Pauses between attempts of one operation through a failover.
const RETRY_PAUSE_MIN: Duration = Duration::from_millis(20);
const RETRY_PAUSE_MAX: Duration = Duration::from_millis(160);

/// Whether an operation may be sent again when its outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resend {
    /// Applying it twice leaves the same state (reads, `SET`, `DEL`).
    Safe,
    /// A consume or a counter: never sent twice.
    Never,
    /// A probe: one attempt, whatever happens (readiness wants the news now).
    Once,
}

/// The server refused the command, or it never reached one: not applied.
fn not_applied(e: &RedisError) -> bool {
    e.is_connection_refusal()
        || matches!(
            e.code(),
            Some(
                "MOVED"
                    | "ASK"
                    | "TRYAGAIN"
                    | "CLUSTERDOWN"
                    | "READONLY"
                    | "LOADING"
                    | "MASTERDOWN"
            )
        )
}

/// The command may or may not have been applied.
fn outcome_unknown(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout()
}

enum Reason {
    Store(StoreError),
    Redis(RedisError),
}

/// The primaries of a `CLUSTER SLOTS` answer (host and port, each once) and
/// how many slots they cover.
fn cluster_primaries(slots: &Value) -> (Vec<(String, u16)>, u64) {
    let mut primaries = Vec::new();
    let mut covered = 0;
    let Value::Array(ranges) = slots else {
        return (primaries, 0);
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let int =
            |v: Option<&Value>| v.and_then(|v| redis::from_redis_value::<i64>(v.clone()).ok());
        let (Some(start), Some(end)) = (int(parts.first()), int(parts.get(1))) else {
            continue;
        };
        let Some(Value::Array(node)) = parts.get(2) else {
            continue;
        };
        let host = node
            .first()
            .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
        let port = int(node.get(1)).and_then(|p| u16::try_from(p).ok());
        // A range whose primary is named is covered; a primary without a
        // usable address (an empty host, as a node that does not know its
        // own address reports it) is checked through any node's view only.
        covered += u64::try_from(end - start + 1).unwrap_or(0);
        if let (Some(host), Some(port)) = (host, port)
            && !host.is_empty()
            && host != "?"
            && !primaries.contains(&(host.clone(), port))
        {
            primaries.push((host, port));
        }
    }
    (primaries, covered)
}

/// Readiness of a cluster: every slot has a primary, and each primary,
/// asked by address over the cluster client's own connections (and
/// credentials), answers that its own view of the cluster is ok. A primary
/// that died without a replica keeps its slots until the cluster gives up on
/// it, and a restarted one refuses writes for a while though the others
/// already call the cluster ok: a `PING` that some live node answers proves
/// nothing.
async fn cluster_ready(mut c: ClusterConnection) -> Result<(), StoreError> {
    let any = || RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
    let slots = c
        .route_command(redis::cmd("CLUSTER").arg("SLOTS").clone(), any())
        .await
        .map_err(unavailable)?;
    let info = c
        .route_command(redis::cmd("CLUSTER").arg("INFO").clone(), any())
        .await
        .map_err(unavailable)?;
    let info: String = redis::from_redis_value(info).map_err(unavailable)?;
    if !info.contains("cluster_state:ok") {
        return Err(StoreError::Unavailable(
            "the cluster reports cluster_state:fail".into(),
        ));
    }
    let info = c
        .route_command(redis::cmd("CLUSTER").arg("INFO").clone(), any())
        .await
        .map_err(unavailable)?;
    let info: String = redis::from_redis_value(info).map_err(unavailable)?;
    if !info.contains("cluster_state:ok") {
        return Err(StoreError::Unavailable(
            "the cluster reports cluster_state:fail".into(),
        ));
    }
    let (primaries, covered) = cluster_primaries(&slots);
    if covered < 16_384 {
        return Err(StoreError::Unavailable(format!(
            "only {covered} of 16384 slots have a primary"
        )));
    }
    let mut probes = tokio::task::JoinSet::new();
    for (host, port) in primaries {
        let mut c = c.clone();
        probes.spawn(async move {
            let at = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port,
            });
            let node = |e: &dyn std::fmt::Display| {
                StoreError::Unavailable(format!("primary {host}:{port}: {e}"))
            };
            let info = c
                .route_command(redis::cmd("CLUSTER").arg("INFO").clone(), at)
                .await
                .map_err(|e| node(&e))?;
            let info: String = redis::from_redis_value(info).map_err(|e| node(&e))?;
            if info.contains("cluster_state:ok") {
                Ok(())
            } else {
                Err(node(&"its own view of the cluster is not ok (a restarted primary waits before it takes writes)"))
            }
        });
    }
    while let Some(answer) = probes.join_next().await {
        answer.map_err(unavailable)??;
    }
    Ok(())
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl KvStore for RedisStore {
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("SET")
                .arg(k)
                .arg(value)
                .arg("PX")
                .arg(ms(ttl))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let k = &self.key(key);
        let (stored, pttl): (i64, i64) = self
            .run(Resend::Never, |mut c| async move {
                self.scripts
                    .set_nx
                    .key(k)
                    .arg(value)
                    .arg(ms(ttl))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok((stored == 0).then(|| Duration::from_millis(pttl.max(0) as u64)))
    }

    async fn replace(&self, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        let k = &self.key(key);
        // Writing the same value twice cannot matter.
        let reply: Option<String> = self
            .run(Resend::Safe, |mut c| async move {
                redis::cmd("SET")
                    .arg(k)
                    .arg(value)
                    .arg("XX")
                    .arg("KEEPTTL")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(reply.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("GET").arg(k).query_async(&mut c).await
        })
        .await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let k = &self.key(key);
        self.run(Resend::Never, |mut c| async move {
            redis::cmd("GETDEL").arg(k).query_async(&mut c).await
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("DEL").arg(k).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn delete_all(&self, keys: &[String]) -> Result<(), StoreError> {
        let ks: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let ks = &ks;
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("DEL").arg(ks).query_async::<()>(&mut c).await
        })
        .await
    }

    async fn incr_window(&self, key: &str, window: Duration) -> Result<Counter, StoreError> {
        let k = &self.key(key);
        let (count, pttl): (u64, i64) = self
            .run(Resend::Never, |mut c| async move {
                self.scripts
                    .incr_window
                    .key(k)
                    .arg(ms(window))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(Counter {
            count,
            resets_in: Duration::from_millis(pttl.max(0) as u64),
        })
    }

    async fn pump_send(&self, keys: &PumpKeys<'_>) -> Result<PumpCounts, StoreError> {
        let all: Vec<String> = keys
            .blocks
            .iter()
            .chain(&keys.sent)
            .chain(&keys.verified)
            .map(|k| self.key(k))
            .collect();
        let all = &all;
        let reply: Vec<i64> = self
            .run(Resend::Never, |mut c| async move {
                let mut call = self.scripts.pump_send.prepare_invoke();
                for k in all {
                    call.key(k);
                }
                for w in PUMP_WINDOWS {
                    call.arg(ms(w));
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        let n = |i: usize| reply.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(match reply.first() {
            Some(&scope) if scope > 0 => PumpCounts::Blocked {
                scope: scope as usize - 1,
                remaining: Duration::from_millis(n(1)),
            },
            _ => PumpCounts::Counted {
                sent: [n(2), n(3), n(4), n(5)],
                verified: [n(6), n(7), n(8), n(9)],
            },
        })
    }

    async fn pump_verified(&self, keys: [&str; 4]) -> Result<(), StoreError> {
        let all: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        let all = &all;
        self.run(Resend::Never, |mut c| async move {
            let mut call = self.scripts.pump_verified.prepare_invoke();
            for k in all {
                call.key(k);
            }
            for w in PUMP_WINDOWS {
                call.arg(ms(w));
            }
            call.invoke_async::<()>(&mut c).await
        })
        .await
    }

    async fn decr(&self, key: &str) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Never, |mut c| async move {
            self.scripts.decr.key(k).invoke_async::<()>(&mut c).await
        })
        .await
    }

    async fn peek_counter(&self, key: &str) -> Result<Counter, StoreError> {
        let k = &self.key(key);
        let (count, pttl): (u64, i64) = self
            .run(Resend::Safe, |mut c| async move {
                self.scripts.peek.key(k).invoke_async(&mut c).await
            })
            .await?;
        Ok(Counter {
            count,
            resets_in: Duration::from_millis(pttl.max(0) as u64),
        })
    }

    async fn put_code(&self, key: &str, mac: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            self.scripts
                .put_code
                .key(k)
                .arg(mac)
                .arg(ms(ttl))
                .invoke_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn verify_code(
        &self,
        key: &str,
        candidate: &[u8],
        max_guesses: u32,
    ) -> Result<CodeCheck, StoreError> {
        self.guess(key, candidate, max_guesses, None).await
    }

    async fn claim_code(&self, key: &str, claim: CodeClaim<'_>) -> Result<CodeCheck, StoreError> {
        let hold = Some((claim.lease, claim.holder));
        self.guess(key, claim.candidate, claim.max_guesses, hold)
            .await
    }

    async fn release_code(&self, key: &str, holder: &[u8]) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            self.scripts
                .release_if
                .key(k)
                .arg(holder)
                .invoke_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn index_add(&self, key: &str, add: IndexAdd<'_>) -> Result<Vec<String>, StoreError> {
        let k = &self.key(key);
        self.run(Resend::Never, |mut c| async move {
            self.scripts
                .index_add
                .key(k)
                .arg(add.member)
                .arg(add.max)
                .arg(ms(add.ttl))
                .invoke_async(&mut c)
                .await
        })
        .await
    }

    async fn index_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("ZREM")
                .arg(k)
                .arg(member)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn index_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let k = &self.key(key);
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("ZRANGE")
                .arg(k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(Resend::Safe, |mut c| async move {
            redis::cmd("PING").query_async::<()>(&mut c).await
        })
        .await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        let conn = self
            .run(Resend::Once, |c| async move { Ok::<_, RedisError>(c) })
            .await?;
        let probe = async {
            match conn {
                Conn::Cluster(c) => cluster_ready(c).await,
                Conn::Single(mut m) => {
                    let role: Vec<Value> = redis::cmd("ROLE")
                        .query_async(&mut m)
                        .await
                        .map_err(unavailable)?;
                    let role = role
                        .first()
                        .and_then(|v| redis::from_redis_value::<String>(v.clone()).ok())
                        .unwrap_or_default();
                    if role == "master" {
                        return Ok(());
                    }
                    // A demoted primary: on Sentinel, the next call asks again.
                    self.reread_topology().await;
                    Err(StoreError::Unavailable(format!(
                        "the Redis node is a {role}, not a primary"
                    )))
                }
            }
        };
        match crate::budget::bound(tokio::time::timeout(self.timeouts.operation, probe)).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(
                "the readiness probe did not finish in time".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_topology() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379/0"),
            Ok(RedisTarget::Single("redis://127.0.0.1:6379/0".into()))
        );
        assert!(matches!(
            RedisTarget::parse("rediss://cache.example:6380"),
            Ok(RedisTarget::Single(_))
        ));
        assert_eq!(
            RedisTarget::parse("redis+cluster://10.0.0.1:7000, 10.0.0.2:7000"),
            Ok(RedisTarget::Cluster(vec![
                "redis://10.0.0.1:7000".into(),
                "redis://10.0.0.2:7000".into()
            ]))
        );
        assert_eq!(
            RedisTarget::parse("redis+sentinel://s1:26379,s2:26379/mymaster"),
            Ok(RedisTarget::Sentinel {
                sentinels: vec!["redis://s1:26379".into(), "redis://s2:26379".into()],
                master: "mymaster".into()
            })
        );
        assert!(RedisTarget::parse("redis+sentinel://s1:26379").is_err());
        assert!(RedisTarget::parse("redis+cluster://").is_err());
        assert!(RedisTarget::parse("memcached://x").is_err());
    }
}
