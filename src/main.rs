//! The `phoneauth` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use phoneauth::domain::{Lang, Mobile, MobilePolicy};
use phoneauth::sms::SmsMessage;
use phoneauth::{App, Config, telemetry};

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
    }
    Ok(())
}
