//! The `wasya` command line: `up` runs a node, `send` and the management commands talk
//! to one, `new` and `build` make actors.
//!
//! Every flag can also come from a `WASYA_*` environment variable, since containers
//! are configured that way. Values are parsed here and checked again as a whole by
//! [`crate::config::NodeConfig::validate`], so a bad one is reported in one line.

pub mod build;
pub mod manage;
pub mod new;
pub mod open_files;
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
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (embedded queue or RabbitMQ), serving the example actors or a directory of them.
    Up(Box<up::UpArgs>),
    /// Submit an envelope to a node and (with --wait) print its outcome.
    Send(send::SendArgs),
    /// Serve one socket actor on RabbitMQ from Asya's sidecar environment (ASYA_*).
    Sidecar,
    /// Upload a component to a node: a new actor, or a new version of one.
    Deploy(manage::DeployArgs),
    /// Set an actor's options (timeout, memory, concurrency, env, handler mode), or register a socket actor.
    Configure(manage::ConfigureArgs),
    /// List a node's actors.
    Actors(manage::NodeArgs),
    /// Show one actor of a node.
    Actor(manage::ActorArgs),
    /// Remove an actor from a node (its messages stay queued).
    Rm(manage::ActorArgs),
    /// Build a component: a Python handler (--python), a JavaScript module (--js), or a
    /// project made by `wasya new`.
    Build(build::BuildArgs),
    /// Make a project for an actor in Rust, Python or JavaScript.
    New(new::NewArgs),
}
