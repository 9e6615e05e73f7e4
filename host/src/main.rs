//! The `wasya` binary: parse the command line, set up logging, run the subcommand.
//! Errors end the process with one line on stderr and a non-zero exit code. Logs go to
//! stderr, coloured only on a terminal and without `NO_COLOR`, repeated warnings
//! rate-limited ([`wasya::cli::log_throttle`]).

use clap::Parser;
use wasya::cli::{Cli, Command, LogFormat};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.log_format,
        matches!(cli.command, Command::Sidecar),
        matches!(cli.command, Command::Up(_) | Command::Sidecar),
    );
    let runtime = match wasya::tokio_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => wasya::cli::up::run(*args).await,
            Command::Send(args) => wasya::cli::send::run(args).await,
            Command::Sidecar => wasya::cli::sidecar::run().await,
            Command::Deploy(args) => wasya::cli::manage::deploy(args).await,
            Command::Configure(args) => wasya::cli::manage::configure(args).await,
            Command::Actors(args) => wasya::cli::manage::list(args).await,
            Command::Actor(args) => wasya::cli::manage::show(args).await,
            Command::Rm(args) => wasya::cli::manage::remove(args).await,
            Command::Build(args) => wasya::cli::build::run(args).await,
            Command::New(args) => wasya::cli::new::run(args).await,
            Command::Completions { shell } => {
                wasya::cli::print_completions(shell);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", wasya::cli::error_line(&error));
            std::process::ExitCode::from(wasya::cli::exit::code_of(&error))
        }
    }
}

fn init_tracing(format: LogFormat, sidecar: bool, serves: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let directives =
        wasya::cli::logging::filter_directives(|name| std::env::var(name).ok(), sidecar);
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let throttle = wasya::cli::log_throttle::Throttle::default();
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(wasya::cli::logging::colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(lines.with_filter(throttle.clone())).init(),
        // One flat object per line: `level`, `message` and the fields at the top, as
        // log shippers expect.
        LogFormat::Json => registry
            .with(
                lines
                    .json()
                    .flatten_event(true)
                    .with_filter(throttle.clone()),
            )
            .init(),
    }
    if serves {
        throttle.start_summaries();
    }
}
