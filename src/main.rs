//! The `phoneauth` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use phoneauth::domain::{Lang, Mobile, MobilePolicy, Purpose};
use phoneauth::sms::SmsMessage;
use phoneauth::{App, Config, telemetry};
use serde_json::json;

/// Sign-up and sign-in with a mobile number: captcha, SMS code, password, sessions.
#[derive(Parser)]
#[command(name = "phoneauth", version, about)]
struct Cli {
    /// TOML configuration file (default: ./phoneauth.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve,
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Send one test message through the configured SMS providers.
    SmsTest {
        /// Destination mobile number.
        mobile: String,
    },
    /// Find, disable, enable or delete a user, or end their sessions.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// The block list: numbers, prefixes, countries, client networks.
    Block {
        #[command(subcommand)]
        action: ListAction,
    },
    /// The safe list: numbers and prefixes the adaptive defence never blocks.
    Safe {
        #[command(subcommand)]
        action: ListAction,
    },
    /// Sends, verifications and refusals of the last hour and day.
    Stats,
    /// Audit records, newest first.
    Audit {
        /// RFC 3339 time or Unix seconds (default: a day ago).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        user_id: Option<i64>,
        /// An event name, e.g. `login_failed`.
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Import an existing site's users, keeping their ids and password hashes.
    ImportUsers {
        /// A CSV file with a header row, or JSON Lines (`.jsonl`, `.ndjson`).
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        file: Option<PathBuf>,
        /// The old site's database (mysql://…, postgres://…, sqlite://…,
        /// with --table), or a CSV or JSON Lines file.
        #[arg(long, value_name = "URL|FILE")]
        from: Option<String>,
        /// The old site's users table (`ih_user_profile`, `info_user`, …).
        #[arg(long)]
        table: Option<String>,
        /// The file's format (default: by its extension).
        #[arg(long, value_parser = ["csv", "jsonl"])]
        format: Option<String>,
        /// Where a field is in the source, repeatable: id, mobile, password,
        /// name, created_at (defaults fit iHome and the news site).
        #[arg(long = "map", visible_alias = "column", value_name = "FIELD=COLUMN")]
        map: Vec<String>,
        /// Rows that cannot be imported, with the reason (JSON Lines).
        #[arg(
            long,
            visible_alias = "reject-file",
            value_name = "FILE",
            default_value = "import-rejects.jsonl"
        )]
        rejects: PathBuf,
        /// Check and count everything, write no user.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Show a user, by id or by number.
    Show {
        #[arg(long, conflicts_with = "mobile", required_unless_present = "mobile")]
        id: Option<i64>,
        #[arg(long)]
        mobile: Option<String>,
    },
    /// Disable a user: every session ends at once.
    Disable {
        id: i64,
    },
    Enable {
        id: i64,
    },
    /// Delete a user: profile, avatar, identity and sessions.
    Delete {
        id: i64,
    },
    /// End every session of a user.
    EndSessions {
        id: i64,
    },
}

#[derive(Subcommand)]
enum ListAction {
    /// Add an entry: TYPE is number, prefix, country or network.
    Add { r#type: String, value: String },
    /// Remove an entry.
    Remove { r#type: String, value: String },
    /// Print the entries.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("phoneauth: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        print!("{}", config.to_redacted_toml());
        for note in config.sms.template_notes() {
            eprintln!("note: {note}");
        }
        return ExitCode::SUCCESS;
    }
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("phoneauth: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("phoneauth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => App::build(config).await?.run_until_stopped().await?,
        Command::ImportUsers {
            file,
            from,
            table,
            format,
            map,
            rejects,
            dry_run,
        } => {
            let source = import_source(file, from, table, format.as_deref())?;
            import_users(&config, source, &map, &rejects, dry_run).await?;
        }
        Command::Migrate => {
            let repo = phoneauth::users::connect(
                &config.database.url,
                phoneauth::app::pg_settings(&config),
            )
            .await?;
            repo.migrate().await?;
            println!("migrations applied");
        }
        Command::SmsTest { mobile } => {
            let policy =
                MobilePolicy::new(&config.phone.allowed_regions.0).map_err(anyhow::Error::msg)?;
            let mobile = Mobile::parse(&mobile, &policy).context("not a valid mobile number")?;
            let clock: phoneauth::clock::SharedClock =
                std::sync::Arc::new(phoneauth::clock::SystemClock);
            let chain = phoneauth::sms::SmsChain::from_config(&config.sms, clock)
                .map_err(anyhow::Error::msg)?;
            let code = phoneauth::secret::random_code();
            let msg = SmsMessage {
                mobile: &mobile,
                code: &code,
                ttl_minutes: config.sms.code_ttl_secs.div_ceil(60),
                lang: Lang::Zh,
                notice: false,
                purpose: Purpose::Register,
                send_id: "",
            };
            let receipt = chain.send(&msg).await?;
            println!(
                "sent to {} via {} (message id: {})",
                mobile.masked(),
                receipt.provider,
                receipt.message_id.as_deref().unwrap_or("none")
            );
            println!("vendor answer: {}", msg.scrub(&receipt.vendor_answer));
        }
        Command::CheckConfig => {}
        Command::User { action } => {
            let flow = phoneauth::app::build_flow(&config, Default::default()).await?;
            let out = match action {
                UserAction::Show { id, mobile } => {
                    let mobile = match mobile {
                        Some(m) => Some(Mobile::parse(&m, flow.defence().policy())?),
                        None => None,
                    };
                    flow.find_user(id, mobile.as_ref()).await?.operator_view()
                }
                UserAction::Disable { id } => flow.set_disabled(id, true).await?.operator_view(),
                UserAction::Enable { id } => flow.set_disabled(id, false).await?.operator_view(),
                UserAction::Delete { id } => {
                    flow.remove_user(id).await?;
                    json!({ "user_id": id, "deleted": true })
                }
                UserAction::EndSessions { id } => {
                    flow.end_sessions_of(id).await?;
                    json!({ "user_id": id, "sessions_ended": true })
                }
            };
            print_json(&out);
            flow.audit().flush(Duration::from_secs(5)).await;
        }
        Command::Block { action } => list_command(&config, "block", action).await?,
        Command::Safe { action } => list_command(&config, "safe", action).await?,
        Command::Stats => {
            let flow = phoneauth::app::build_flow(&config, Default::default()).await?;
            print_json(&serde_json::to_value(flow.stats().await?)?);
        }
        Command::Audit {
            since,
            user_id,
            event,
            limit,
        } => {
            let flow = phoneauth::app::build_flow(&config, Default::default()).await?;
            let since_ms = match since {
                Some(s) => phoneauth::http::parse_since(&s)
                    .context("--since must be RFC 3339 or Unix seconds")?,
                None => flow.audit().now_ms() - 86_400_000,
            };
            let q = phoneauth::users::AuditQuery {
                since_ms,
                user_id,
                event,
                limit: limit.clamp(1, 100_000),
            };
            print_json(&json!({ "events": flow.audit_events(&q).await? }));
        }
    }
    Ok(())
}

async fn list_command(config: &Config, list: &str, action: ListAction) -> anyhow::Result<()> {
    let flow = phoneauth::app::build_flow(config, Default::default()).await?;
    let out = match action {
        ListAction::Add { r#type, value } => {
            let (entry, changed) = flow.change_list(true, list, &r#type, &value).await?;
            json!({ "entry": entry, "changed": changed })
        }
        ListAction::Remove { r#type, value } => {
            let (entry, changed) = flow.change_list(false, list, &r#type, &value).await?;
            json!({ "entry": entry, "changed": changed })
        }
        ListAction::List => json!({ "list": list, "entries": flow.list(list).await? }),
    };
    print_json(&out);
    flow.audit().flush(Duration::from_secs(5)).await;
    Ok(())
}

/// What `import-users` reads: a file (by `--format` or its extension), or
/// a table of a database named by URL.
fn import_source(
    file: Option<PathBuf>,
    from: Option<String>,
    table: Option<String>,
    format: Option<&str>,
) -> anyhow::Result<phoneauth::import::Source> {
    use phoneauth::import::Source;
    let is_database = |u: &str| {
        ["mysql://", "postgres://", "postgresql://", "sqlite:"]
            .iter()
            .any(|p| u.starts_with(p))
    };
    let path = match (file, from) {
        (_, Some(url)) if is_database(&url) => {
            anyhow::ensure!(format.is_none(), "--format is for files, not databases");
            let table = table.context("--table names the old site's users table")?;
            return Ok(Source::Table { url, table });
        }
        (_, Some(path)) => PathBuf::from(path),
        (Some(path), None) => path,
        (None, None) => anyhow::bail!("name a file, or --from and --table"),
    };
    anyhow::ensure!(
        table.is_none(),
        "--table is for a database (--from mysql://…, postgres://… or sqlite://…)"
    );
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match format.or(extension.as_deref()) {
        Some("jsonl" | "ndjson") => Ok(Source::Jsonl(path)),
        Some("json") => anyhow::bail!(
            "{}: give JSON Lines (.jsonl), one user object a line, or CSV",
            path.display()
        ),
        _ => Ok(Source::Csv(path)),
    }
}

async fn import_users(
    config: &Config,
    source: phoneauth::import::Source,
    map: &[String],
    rejects: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<()> {
    use phoneauth::import::{self, ColumnMap, Source};
    use std::io::IsTerminal;

    let mut columns = ColumnMap::for_table(match &source {
        Source::Table { table, .. } => Some(table),
        _ => None,
    });
    columns.apply(map)?;
    let policy = MobilePolicy::new(&config.phone.allowed_regions.0).map_err(anyhow::Error::msg)?;
    let repo = phoneauth::users::connect(&config.database.url, phoneauth::app::pg_settings(config))
        .await?;
    repo.migrate().await?;

    let started = std::time::Instant::now();
    let bar = std::io::stderr().is_terminal();
    let counts = import::run(
        repo.as_ref(),
        &policy,
        &source,
        &columns,
        rejects,
        dry_run,
        |c, fraction| {
            if bar {
                eprint!("\r{}", progress_line(c, fraction, started.elapsed()));
            }
        },
    )
    .await?;
    if bar {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = if secs > 0.0 {
        counts.read as f64 / secs
    } else {
        0.0
    };
    let mut out = serde_json::to_value(&counts)?;
    out["dry_run"] = json!(dry_run);
    out["seconds"] = json!((secs * 1000.0).round() / 1000.0);
    out["rows_per_second"] = json!(rate.round());
    if counts.rejected > 0 {
        out["reject_file"] = json!(rejects.display().to_string());
    }
    print_json(&out);
    Ok(())
}

/// `[########------------]  40%  40000 read · 39990 imported · …`
fn progress_line(
    c: &phoneauth::import::Counts,
    fraction: Option<f64>,
    elapsed: Duration,
) -> String {
    const WIDTH: usize = 24;
    let bar = fraction.map_or_else(String::new, |f| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let done = ((f * WIDTH as f64) as usize).min(WIDTH);
        format!(
            "[{}{}] {:>3.0}%  ",
            "#".repeat(done),
            "-".repeat(WIDTH - done),
            f * 100.0
        )
    });
    #[allow(clippy::cast_precision_loss)]
    let rate = c.read as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{bar}{} read · {} imported · {} present · {} updated · {} rejected · {rate:.0}/s ",
        c.read, c.imported, c.present, c.updated, c.rejected
    )
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
