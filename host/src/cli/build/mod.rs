//! `wasya build`: an actor's source into a component of the `actor` world.
//!
//! A Python handler is named as Asya's runtime names it (`ASYA_HANDLER` syntax) and a
//! JavaScript handler is a function a module exports; either is wrapped in a small glue
//! module ([`python`], [`js`]) that gives it Asya's handler semantics, and built with the
//! language's real toolchain ([`tools`]). `wasya build DIR` builds a project made by
//! `wasya new` ([`project`]), Rust ones included. The WIT of the world is the one the
//! node was built with, so a component built here always fits the node that built it.

mod js;
pub mod project;
mod python;
mod python_packages;
pub mod toolchains;

pub use js::build as build_js;
pub use python::build as build_python;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// The world every actor targets, as this node knows it.
pub const WIT: &str = include_str!("../../../../wit/actor.wit");

/// Asya's handler modes, as `ASYA_HANDLER_MODE` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The handler takes and returns payloads.
    #[default]
    Payload,
    /// The handler takes and returns whole envelopes (and may change routes).
    Envelope,
}

impl Mode {
    /// The mode as `ASYA_HANDLER_MODE` names it (`payload`, `envelope`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Payload => "payload",
            Mode::Envelope => "envelope",
        }
    }
}

/// Flags of `wasya build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// A project made by `wasya new` (the directory of its `wasya.toml`); used when
    /// neither --python nor --js is given.
    pub dir: Option<PathBuf>,
    /// A Python handler, as ASYA_HANDLER names it: `module.function` or
    /// `module.Class.method`.
    #[arg(long, conflicts_with_all = ["js", "dir"], requires = "out")]
    pub python: Option<String>,
    /// Python: a directory on the module search path.
    #[arg(long, default_value = ".", requires = "python")]
    pub path: PathBuf,
    /// A JavaScript module exporting the handler.
    #[arg(long, conflicts_with = "dir", requires = "out")]
    pub js: Option<PathBuf>,
    /// JavaScript: the name of the exported handler function.
    #[arg(long, default_value = "handler", requires = "js")]
    pub export: String,
    /// `payload` (the default) or `envelope`, as ASYA_HANDLER_MODE.
    #[arg(long, value_enum, default_value_t = Mode::Payload)]
    pub mode: Mode,
    /// Where the component goes.
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
}

/// Builds what the flags name; prints the component's path.
pub async fn run(args: BuildArgs) -> anyhow::Result<()> {
    if (args.python.is_some() || args.js.is_some())
        && let Some(out) = &args.out
    {
        check_output_name(out)?;
    }
    let out = match (&args.python, &args.js, &args.out) {
        (Some(handler), _, Some(out)) => {
            python::build(handler, &args.path, args.mode, out).await?;
            out.clone()
        }
        (_, Some(file), Some(out)) => {
            js::build(file, &args.export, args.mode, out).await?;
            out.clone()
        }
        (None, None, out) => {
            let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
            project::build(&dir, out.as_deref()).await?
        }
        _ => bail!("-o OUT.wasm is needed with --python and --js"),
    };
    super::send::print_out(&out.display().to_string())
}

/// Refuses, before a build that takes seconds, an output whose file name is not an
/// actor name: a directory of components (`wasya up --actors DIR`) serves `NAME.wasm`
/// as actor `NAME`, and a deploy of it under that name would be refused too.
fn check_output_name(out: &Path) -> anyhow::Result<()> {
    let stem = out
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::records::validate_name(&stem).with_context(|| {
        format!(
            "-o {}: the file is named after the actor it holds (NAME.wasm serves actor NAME)",
            out.display()
        )
    })
}

/// Writes the handler mode the component was built in into it (a custom section the
/// node reads back, [`crate::runtime::wasm::declared`]), so a listing can say it.
async fn declare_built_mode(out: &Path, mode: Mode) -> anyhow::Result<()> {
    let mut bytes = tokio::fs::read(out)
        .await
        .with_context(|| format!("cannot read the built component {}", out.display()))?;
    let mode = match mode {
        Mode::Payload => crate::records::HandlerMode::Payload,
        Mode::Envelope => crate::records::HandlerMode::Envelope,
    };
    crate::runtime::wasm::declared::declare_mode(&mut bytes, mode);
    tokio::fs::write(out, bytes)
        .await
        .with_context(|| format!("cannot write {}", out.display()))
}

/// Runs a toolchain; its output is shown only when it fails.
async fn run_tool(what: &str, command: &mut tokio::process::Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    if !output.status.success() {
        let said = [output.stdout, output.stderr]
            .iter()
            .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        bail!("{what} failed ({}):\n{said}", output.status);
    }
    Ok(())
}

/// A build directory holding the world's WIT, gone when dropped.
fn workspace() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("wasya-build-")
        .tempdir()
        .context("cannot make a build directory")?;
    std::fs::create_dir(dir.path().join("wit"))?;
    std::fs::write(dir.path().join("wit/actor.wit"), WIT)?;
    Ok(dir)
}

/// `out` as an absolute path, its directory made.
fn output_path(out: &Path) -> anyhow::Result<PathBuf> {
    let out = std::path::absolute(out)
        .with_context(|| format!("{} is not a usable path", out.display()))?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot make the directory of {}", out.display()))?;
    }
    Ok(out)
}
