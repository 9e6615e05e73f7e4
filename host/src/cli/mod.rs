//! The `wasya` command line: `up` runs a node, `send` and the management commands talk
//! to one, `new` and `build` make actors.
//!
//! Every flag can also come from a `WASYA_*` environment variable, since containers
//! are configured that way. Values are parsed here and checked again as a whole by
//! [`crate::config::NodeConfig::validate`], so a bad one is reported in one line.

pub mod build;
pub mod client;
pub mod exit;
pub mod log_throttle;
pub mod logging;
pub mod manage;
pub mod new;
pub mod open_files;
pub mod s3_args;
pub mod send;
pub mod sidecar;
pub mod up;

use clap::{Parser, Subcommand, ValueEnum};

/// wasya: run actor pipelines, with actors as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wasya", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, global = true, env = "WASYA_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What `wasya sidecar --help` lists: the variables it reads, as Asya's sidecar does.
const SIDECAR_ENVIRONMENT: &str = "\
Environment (Asya's sidecar variables; the README's table says what each does):
  ASYA_ACTOR_NAME             the actor served (its queue is asya-{name})
  ASYA_TRANSPORT              rabbitmq (the default; sqs is refused)
  ASYA_RABBITMQ_URL           the broker, or ASYA_RABBITMQ_HOST, _PORT, _USERNAME, _PASSWORD
  ASYA_RABBITMQ_EXCHANGE      the topic exchange (default asya)
  ASYA_RABBITMQ_PREFETCH      calls at once (default 1)
  ASYA_SOCKET_DIR             where the runtime's socket is (with ASYA_SOCKET_NAME)
  ASYA_RUNTIME_TIMEOUT        one call's timeout (default 5m)
  ASYA_RUNTIME_READY_TIMEOUT  the wait for the runtime's runtime-ready file before consuming (default 5m)
  ASYA_ACTOR_HAPPY_END        the happy-end actor's name (default happy-end)
  ASYA_ACTOR_ERROR_END        the error-end actor's name (default error-end)
  ASYA_IS_END_ACTOR           true: the actor ends routes (Asya's crew end actors)
  ASYA_GATEWAY_URL            an Asya gateway to report each hop's progress to
  ASYA_METRICS_ENABLED        false: nothing listens
  ASYA_METRICS_ADDR           where /metrics is served (default :8080)
  ASYA_METRICS_NAMESPACE      the prefix of Asya's metric families (default asya_actor)
  ASYA_LOG_LEVEL              the log level, Python's names (WASYA_LOG or RUST_LOG win)
Named as ignored at start when set: ASYA_CUSTOM_METRICS, ASYA_QUEUE_RETRY_MAX_ATTEMPTS,
ASYA_QUEUE_RETRY_BACKOFF, ASYA_SQS_ENDPOINT, ASYA_AWS_REGION, ASYA_SQS_VISIBILITY_TIMEOUT,
ASYA_SQS_WAIT_TIME_SECONDS.";

/// What `wasya build --help` lists: the toolchains it drives and where it finds them.
const BUILD_ENVIRONMENT: &str = "\
Toolchains (found on PATH, or where these name them):
  WASYA_COMPONENTIZE_PY   componentize-py for --python (tested: 0.25.1, pip install componentize-py==0.25.1)
  WASYA_COMPONENTIZE_JS   componentize-js for --js (tested: 0.23.0, npm install -g @bytecodealliance/componentize-js@0.23.0)
Rust projects build with cargo and the wasm32-wasip2 target (rustup target add wasm32-wasip2).
An actor's name, and so the file name of -o NAME.wasm, is 1-63 of [a-z0-9-] starting with a
letter or digit; happy-end and error-end are the node's own.";

/// The commands of `wasya`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (embedded queue or RabbitMQ), serving the example actors or a directory of them.
    Up(Box<up::UpArgs>),
    /// Submit an envelope to a node and (with --wait) print its outcome.
    Send(send::SendArgs),
    /// Serve one socket actor on RabbitMQ from Asya's sidecar environment (ASYA_*).
    #[command(after_help = SIDECAR_ENVIRONMENT)]
    Sidecar,
    /// Upload a component to a node: a new actor, or a new version of one.
    Deploy(manage::DeployArgs),
    /// Set an actor's options (timeout, memory, concurrency, env, handler mode), or register a socket actor.
    Configure(manage::ConfigureArgs),
    /// List a node's actors (`-o json` for the API's JSON).
    Actors(manage::ListArgs),
    /// Show one actor of a node.
    Actor(manage::ActorArgs),
    /// Remove an actor from a node (its messages stay queued).
    Rm(manage::ActorArgs),
    /// Build a component: a Python handler (--python), a JavaScript module (--js), or a
    /// project made by `wasya new`.
    #[command(after_help = BUILD_ENVIRONMENT)]
    Build(build::BuildArgs),
    /// Make a project for an actor in Rust, Python or JavaScript.
    New(new::NewArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The line an error ends the process with: `error: ` and its causes, each said once.
pub fn error_line(error: &anyhow::Error) -> String {
    format!("error: {}", crate::error_chain::chain(error.as_ref()))
}

/// Writes the completion script of `shell` for this command line to stdout.
pub fn print_completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "wasya", &mut std::io::stdout());
}
