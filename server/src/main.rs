//! `server`: serves the console and the SCIM API, and the operator commands beside it.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use domain::integrations::{Actor, IntegrationKind};
use server::telemetry::{self, LogFormat};
use server::{App, Config};

#[derive(Parser)]
#[command(
    name = "server",
    version,
    about = "Directory-integration console with a built-in SCIM 2.0 service provider",
    long_about = "With no command, serves the console and the SCIM API.\n\n\
        Environment: LEPTOS_SITE_ADDR (default 127.0.0.1:3000), DATABASE_URL (default \
        sqlite://data/console.db), PUBLIC_URL (default http://LEPTOS_SITE_ADDR), \
        LEPTOS_SITE_ROOT (default target/site), METRICS_ADDR (default: /metrics on \
        LEPTOS_SITE_ADDR), RUST_LOG, LOG_FORMAT (text or json)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Manage console administrators.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Manage provisioning tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an admin, and the organisation if it does not exist. Reads the password from
    /// standard input.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
    },
    /// Forget the failed logins counted against an admin's account, from every address, so
    /// that an admin locked out of the console can log in again at once.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Remove every second factor and recovery code of an admin who lost them, so that
    /// they log in with their password alone (and set up a factor again if their
    /// organisation requires one).
    ResetFactors {
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Replace an integration's provisioning token and print the new one (and only it) on
    /// standard output. The old token stops working at once.
    Reset {
        #[arg(long)]
        org: String,
        #[arg(long)]
        integration: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match LogFormat::from_env() {
        Ok(format) => telemetry::init_logging(format),
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `:#` adds each cause after its context.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().map_err(anyhow::Error::msg)?;
    match cli.command {
        None => serve(&config).await,
        Some(Command::Admin {
            command: AdminCommand::Create { org, email },
        }) => {
            let password = read_password()?;
            let store = domain::Store::open(&config.database_url, &config.store_options()).await?;
            let (org, admin) =
                domain::accounts::create_admin(&store, &org, &email, &password).await?;
            println!(
                "Created admin {} in organisation {}.",
                admin.email, org.name
            );
            Ok(())
        }
        Some(Command::Admin {
            command: AdminCommand::Unlock { email },
        }) => {
            let store = domain::Store::open(&config.database_url, &config.store_options()).await?;
            let forgotten = domain::accounts::unlock(&store, &email).await?;
            println!(
                "Unlocked {}: {forgotten} count(s) of failed logins forgotten.",
                email.trim()
            );
            Ok(())
        }
        Some(Command::Admin {
            command: AdminCommand::ResetFactors { email },
        }) => {
            let store = domain::Store::open(&config.database_url, &config.store_options()).await?;
            let removed = domain::factors::reset(&store, &email).await?;
            println!(
                "Removed {removed} second factor(s) of {}; they log in with their password alone.",
                email.trim()
            );
            Ok(())
        }
        Some(Command::Token {
            command: TokenCommand::Reset { org, integration },
        }) => {
            let kind = integration.parse::<IntegrationKind>()?;
            let store = domain::Store::open(&config.database_url, &config.store_options()).await?;
            let organisation = store
                .organisation_by_name(org.trim())
                .await?
                .ok_or_else(|| anyhow::anyhow!("no organisation is named {org:?}"))?;
            let token =
                domain::integrations::reset_token(&store, &organisation.id, kind, &Actor::Operator)
                    .await?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.expose())?;
            Ok(())
        }
    }
}

/// The password from standard input, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is shown; end with Enter): ");
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let mut all = String::new();
    stdin
        .read_to_string(&mut all)
        .context("cannot read the password from standard input")?;
    let password = all.strip_suffix('\n').unwrap_or(&all);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password.to_owned())
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    // Before the store opens, so that its gauges register with the recorder.
    let metrics = telemetry::install_metrics().map_err(anyhow::Error::msg)?;
    let app = App::build(config).await?;
    let listener = bind(config.site_addr).await?;
    let (metrics, upkeep) = telemetry::metrics_router(metrics);
    let (router, metrics_server) = match config.metrics_addr {
        None => (app.router.clone().merge(metrics), None),
        Some(addr) => {
            let listener = bind(addr).await?;
            tracing::info!("metrics on http://{addr}/metrics");
            let limits = config.connection_limits();
            let server = tokio::spawn(server::listen::serve(
                listener,
                metrics,
                limits,
                std::future::pending(),
            ));
            (app.router.clone(), Some(server))
        }
    };
    tracing::info!(
        "listening on http://{}; SCIM base URL {}",
        config.site_addr,
        config.scim_base_url()
    );
    let draining = app.draining.clone();
    let drain = config.shutdown_drain;
    server::listen::serve(listener, router, config.connection_limits(), async move {
        shutdown_signal().await;
        // Not ready from now on; still serving while load balancers notice.
        draining.start();
        if !drain.is_zero() {
            tracing::info!(seconds = drain.as_secs(), "draining before shutdown");
            tokio::time::sleep(drain).await;
        }
    })
    .await;
    upkeep.abort();
    if let Some(server) = metrics_server {
        server.abort();
    }
    app.shutdown().await;
    Ok(())
}

async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
