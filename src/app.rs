//! Wiring: builds every port from the configuration once, binds the listener
//! (port 0 works, for tests) and serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::audit::Audit;
use crate::avatars::Avatars;
use crate::captcha::CaptchaRenderer;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::config::{ProviderKind, RouteSet};
use crate::defence::Defence;
use crate::domain::{MobilePolicy, PasswordPolicy};
use crate::flow::{Flow, FlowParts, FlowSettings, InputRules};
use crate::http::{
    self, AppState, CookiePolicy, CsrfPolicy, Folder, Pages, RouterOptions, TrustedProxies,
};
use crate::limits::Limits;
use crate::passwords::PasswordHasher;
use crate::secret::ServerSecret;
use crate::server::ConnectionRules;
use crate::sms::{SmsChain, SmsSender};
use crate::store::redis::{RedisStore, RedisTimeouts};
use crate::store::{MemoryStore, SharedStore};
use crate::tokens::{TokenSettings, Tokens};
use crate::users::{self, PoolSettings, SharedUserRepo};
use crate::webhooks::Webhooks;

/// Ports a test may replace (a manual clock, a store or database that fails
/// on demand). Production code never sets these.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<SharedClock>,
    pub store: Option<SharedStore>,
    pub users: Option<SharedUserRepo>,
    pub sms: Option<Arc<dyn SmsSender>>,
}

pub struct App {
    listener: TcpListener,
    router: axum::Router,
    addr: SocketAddr,
    /// The metrics listener (`server.admin_listen`), unless `off`.
    admin: Option<(TcpListener, axum::Router)>,
    admin_addr: Option<SocketAddr>,
    shutdown_grace: Duration,
    connections: ConnectionRules,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Overrides::default()).await
    }

    pub async fn build_with(config: Config, overrides: Overrides) -> anyhow::Result<Self> {
        warn_about_development_settings(&config);
        let flow = build_flow(&config, overrides).await?;
        let state = AppState {
            flow: flow.clone(),
            trusted: TrustedProxies(Arc::new(config.server.trusted_proxies.0.clone())),
            cookies: CookiePolicy {
                secure: config.server.secure_cookies,
                max_age_secs: config.sessions.ttl_secs,
            },
            steps_require_captcha: config.compat.steps_require_captcha,
            sms: Arc::new(config.sms.clone()),
        };
        let router = http::router(
            state,
            RouterOptions {
                csrf: CsrfPolicy {
                    require_token: config.csrf.require_token,
                    https: config.server.secure_cookies,
                    trusted: TrustedProxies(Arc::new(config.server.trusted_proxies.0.clone())),
                },
                max_body_bytes: config.server.max_body_bytes,
                upload_max_bytes: config.avatars.max_bytes.saturating_add(64 * 1024),
                body_timeout: config.server.body_timeout.0,
                backend_deadline: config.server.backend_deadline.0,
                dev_hooks: config.dev.expose_secrets,
                route_sets: config.compat.routes.0.clone(),
                pages: pages(&config)?,
            },
        );
        let listener = TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("binding server.listen = {}", config.server.listen))?;
        let addr = listener.local_addr()?;
        let admin = match config.server.admin_listen.0 {
            Some(at) => {
                let l = TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding server.admin_listen = {at}"))?;
                let admin = http::admin_router(
                    crate::meter::install(),
                    flow.clone(),
                    config.admin.token.expose(),
                );
                Some((l, admin))
            }
            None => None,
        };
        let admin_addr = match &admin {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            addr,
            admin,
            admin_addr,
            shutdown_grace: Duration::from_secs(config.server.shutdown_grace_secs),
            connections: ConnectionRules::from_config(&config.server),
        })
    }

    /// Where `/metrics` is served, when it is.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves until SIGTERM or Ctrl-C; in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "phoneauth listening");
        // The admin listener stops with the process; it holds no requests
        // worth draining.
        if let Some((listener, router)) = self.admin {
            tracing::info!(admin_addr = %listener.local_addr()?, "metrics listening");
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "the admin listener failed");
                }
            });
        }
        // Once `stop` fires the listener closes (new connections are
        // refused) and in-flight requests finish, for at most the grace time.
        crate::server::serve(
            self.listener,
            self.router,
            self.connections,
            stop,
            self.shutdown_grace,
        )
        .await;
        Ok(())
    }
}

/// The store named by `store.url`: the embedded memory store, or Redis.
async fn open_store(config: &Config, clock: SharedClock) -> anyhow::Result<SharedStore> {
    let c = &config.store;
    if c.url == "memory://" {
        let store = MemoryStore::new(clock, c.memory_max_mb.saturating_mul(1 << 20));
        store.spawn_sweeper(Duration::from_secs(10));
        return Ok(store);
    }
    let timeouts = RedisTimeouts {
        connect: Duration::from_millis(c.connect_timeout_ms),
        operation: Duration::from_millis(c.timeout_ms),
    };
    let store = RedisStore::open(&c.url, &c.key_prefix, timeouts)
        .await
        .with_context(|| format!("store.url = {}", crate::config::redact_url(&c.url)))?;
    Ok(store)
}

pub fn pg_settings(config: &Config) -> PoolSettings {
    PoolSettings {
        max_connections: config.database.max_connections,
        acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
    }
}

async fn open_users(config: &Config) -> anyhow::Result<SharedUserRepo> {
    users::connect(&config.database.url, pg_settings(config))
        .await
        .with_context(|| {
            format!(
                "opening database.url = {}",
                crate::config::redact_url(&config.database.url)
            )
        })
}

/// The built-in pages, or the hosted site's folders (which must exist).
fn pages(config: &Config) -> anyhow::Result<Pages> {
    let open = |key: &str, dir: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Folder>> {
        dir.as_ref()
            .map(|d| Folder::open(d).with_context(|| format!("{key} = {}", d.display())))
            .transpose()
    };
    let static_dir = open("web.static_dir", &config.web.static_dir)?;
    let pages_dir = open("web.pages_dir", &config.web.pages_dir)?;
    for (key, dir) in [
        ("web.static_dir", &config.web.static_dir),
        ("web.pages_dir", &config.web.pages_dir),
    ] {
        if let Some(dir) = dir {
            refuse_private_files(config, key, dir)?;
        }
    }
    Ok(if static_dir.is_none() && pages_dir.is_none() {
        Pages::Builtin
    } else {
        Pages::Hosted {
            static_dir,
            pages_dir,
        }
    })
}

/// A served folder must not hold the database, its journals, the secret
/// file or logs (SPEC §5): refuse to start, naming what was found.
fn refuse_private_files(config: &Config, key: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let root = dir.canonicalize()?;
    let mut found: Vec<std::path::PathBuf> = crate::http::private_files_in(&root);
    let own = config
        .sqlite_file()
        .into_iter()
        .chain(config.embedded_secret_path());
    for path in own {
        let absolute = std::path::absolute(&path).unwrap_or(path);
        let parent = absolute.parent().and_then(|p| p.canonicalize().ok());
        if parent.is_some_and(|p| p.starts_with(&root)) && !found.contains(&absolute) {
            found.push(absolute);
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = found
        .iter()
        .take(5)
        .map(|p| p.display().to_string())
        .collect();
    bail!(
        "{key} = {} holds files that must never be served ({}{}): move the database \
         (database.url) and the secret file out of the served folder, or serve another folder",
        dir.display(),
        names.join(", "),
        if found.len() > 5 { ", …" } else { "" }
    )
}

/// The configured secret; otherwise, with PostgreSQL, one generated by the
/// first instance and kept in the database for all of them, and in embedded
/// mode one generated and kept beside the SQLite file. A shared store over a
/// private SQLite file with no configured secret is refused: nothing would
/// make the instances agree.
async fn load_secret(config: &Config) -> anyhow::Result<ServerSecret> {
    if !config.server.secret.is_empty() {
        return ServerSecret::from_hex(config.server.secret.expose()).context("server.secret");
    }
    if let Some(kept) = crate::deployment_secret::for_database(&config.database.url)? {
        let bytes = kept
            .agree(ServerSecret::generate().expose_bytes())
            .await
            .context("reading the deployment secret from the database")?;
        return ServerSecret::from_bytes(bytes).context("the secret stored in the database");
    }
    if config.store.url != "memory://" {
        bail!(
            "server.secret must be set when the store is shared but the database is not (set it identically on every instance)"
        );
    }
    match config.embedded_secret_path() {
        Some(path) => ServerSecret::load_or_create(&path).context("embedded server secret"),
        None => Ok(ServerSecret::generate()),
    }
}

fn warn_about_development_settings(config: &Config) {
    if config.sms.provider == ProviderKind::Log {
        tracing::warn!(
            "DEVELOPMENT ONLY: sms.provider = \"log\" writes codes to the log and sends nothing. \
             Configure a real provider before anyone depends on this instance."
        );
    }
    let steps_on = config.compat.routes.0.contains(&RouteSet::Steps);
    if steps_on && !config.compat.steps_require_captcha {
        tracing::warn!(
            "ROUTE SET `steps` WITHOUT A CAPTCHA: anyone can make phoneauth text any number \
             (POST /register-step-1), within the send limits only. Set \
             compat.steps_require_captcha = true unless the app cannot show a captcha."
        );
    }
    if config.dev.expose_secrets {
        tracing::warn!(
            "DEVELOPMENT ONLY: dev.expose_secrets = true serves captcha answers and SMS codes \
             at /dev/*. Never enable this in production."
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

/// Every port of the flow, from the configuration: the store, the database
/// (migrated), the secret, the SMS chain, the defence and the audit log.
/// The service runs on it; the operator commands (`phoneauth user …`) too.
pub async fn build_flow(config: &Config, overrides: Overrides) -> anyhow::Result<Arc<Flow>> {
    let clock: SharedClock = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));

    // One TLS provider for every client (sqlx, redis), chosen explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = match overrides.store {
        Some(s) => s,
        None => open_store(config, clock.clone()).await?,
    };
    let users = match overrides.users {
        Some(u) => u,
        None => open_users(config).await?,
    };
    users
        .migrate()
        .await
        .context("running database migrations")?;
    // From here on, each database call of a request is bounded by what is
    // left of that request's budget (Redis operations bound themselves).
    let users = crate::budget::BoundedUsers::wrap(users);
    let secret = load_secret(config).await?;
    let sms = Arc::new(match overrides.sms {
        Some(sender) => SmsChain::new(vec![sender]),
        None => SmsChain::from_config(&config.sms, clock.clone()).map_err(anyhow::Error::msg)?,
    });
    let captcha = Arc::new(CaptchaRenderer::new().context("loading the captcha font")?);
    let hasher = Arc::new(PasswordHasher::new(&config.password).context("password hasher")?);
    let settings = FlowSettings {
        captcha_ttl: Duration::from_secs(config.captcha.ttl_secs),
        code_ttl: Duration::from_secs(config.sms.code_ttl_secs),
        max_guesses: config.sms.max_guesses,
        session_ttl: Duration::from_secs(config.sessions.ttl_secs),
        max_sessions_per_user: config.sessions.max_per_user as usize,
        steps_require_token: config.compat.steps_require_token,
        sign_up_by_code: config.accounts.sign_up_by_code,
        hide_registered: config.accounts.hide_registered,
        expose_secrets: config.dev.expose_secrets,
        receipts_from: [
            ProviderKind::Twilio,
            ProviderKind::Aliyun,
            ProviderKind::Tencent,
        ]
        .into_iter()
        .filter(|&p| crate::sms::receipts::configured(p, &config.sms))
        .map(ProviderKind::name)
        .collect(),
        inputs: InputRules {
            mobile: MobilePolicy::new(&config.phone.allowed_regions.0)
                .map_err(anyhow::Error::msg)?,
            password: PasswordPolicy {
                min_len: config.password.min_len,
                max_len: config.password.max_len,
            },
        },
    };
    let avatars = Arc::new(
        Avatars::from_config(&config.avatars, &config.database.url).map_err(anyhow::Error::msg)?,
    );
    let defence = Arc::new(
        Defence::new(
            config.defence.clone(),
            &config.sms.test_numbers,
            store.clone(),
            users.clone(),
            clock.clone(),
            settings.inputs.mobile.clone(),
        )
        .map_err(anyhow::Error::msg)?,
    );
    if let Err(e) = defence.refresh_lists().await {
        tracing::warn!(error = %e, "could not read the block and safe lists at start; retrying in the background");
    }
    defence.watch_lists();
    let webhooks = Arc::new(
        Webhooks::new(
            config.webhooks.endpoints.clone(),
            config.webhooks.retry_initial_ms,
            users.clone(),
            clock.clone(),
        )
        .map_err(anyhow::Error::msg)?,
    );
    webhooks.run_sender();
    let webhooks = (!webhooks.is_empty()).then_some(webhooks);
    let audit = Arc::new(Audit::new(users.clone(), clock.clone(), webhooks));
    audit.keep_for(config.audit.retention_days);
    let tokens = Arc::new(Tokens::new(
        TokenSettings {
            issuer: config.tokens.issuer.clone(),
            audience: config.tokens.audience.clone(),
            ttl_secs: config.tokens.ttl_secs,
            rotate_hours: config.tokens.rotate_hours,
        },
        users.clone(),
        secret.clone(),
        clock.clone(),
    ));
    let flow = Flow::new(FlowParts {
        tokens,
        avatars,
        defence,
        audit,
        limits: Limits::new(store.clone(), config.limits.clone()),
        store,
        users,
        sms,
        clock,
        secret,
        captcha,
        hasher,
        settings,
    });
    Ok(Arc::new(flow))
}
