//! A project made by `wasya new`: its `wasya.toml` says what to build, and
//! `wasya build DIR` builds it into `DIR/target/NAME.wasm`.
//!
//! ```toml
//! name = "hello"
//! lang = "python"          # python | js | rust
//! mode = "payload"         # or envelope
//! handler = "handler.process"   # python: as ASYA_HANDLER names it
//! file = "handler.js"           # js: the module…
//! export = "handler"            # …and its exported function
//! ```

use super::{Mode, js, python, run_tool};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The project file's name.
pub const MANIFEST: &str = "wasya.toml";

/// The language of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// A Python handler, built with componentize-py.
    Python,
    /// A JavaScript module, built with componentize-js.
    Js,
    /// A Rust crate, built with cargo for wasm32-wasip2.
    Rust,
}

/// What `wasya.toml` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The actor's name; the component is built as `target/NAME.wasm`.
    pub name: String,
    /// The language the project is written in.
    pub lang: Lang,
    /// Whether the handler takes payloads or whole envelopes.
    #[serde(default)]
    pub mode: Mode,
    /// Python: the handler, as ASYA_HANDLER names it.
    pub handler: Option<String>,
    /// JavaScript: the module exporting the handler.
    pub file: Option<PathBuf>,
    /// JavaScript: the exported function (`handler`).
    pub export: Option<String>,
}

impl Project {
    /// Reads `dir/wasya.toml`.
    pub fn read(dir: &Path) -> anyhow::Result<Project> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} has no {MANIFEST}: make a project with `wasya new NAME --lang python|js|rust`, or build with --python / --js",
                dir.display()
            )
        })?;
        let project: Project =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        crate::records::validate_name(&project.name)
            .with_context(|| format!("{}: name", path.display()))?;
        Ok(project)
    }
}

/// Builds the project in `dir`; returns where the component is.
pub async fn build(dir: &Path, out: Option<&Path>) -> anyhow::Result<PathBuf> {
    let project = Project::read(dir)?;
    let out = match out {
        Some(out) => out.to_owned(),
        None => dir.join("target").join(format!("{}.wasm", project.name)),
    };
    match project.lang {
        Lang::Python => {
            let Some(handler) = &project.handler else {
                bail!("{MANIFEST}: a Python project names its `handler` (module.function)");
            };
            python::build(handler, dir, project.mode, &out).await?;
        }
        Lang::Js => {
            let Some(file) = &project.file else {
                bail!("{MANIFEST}: a JavaScript project names its module in `file`");
            };
            let export = project.export.as_deref().unwrap_or("handler");
            js::build(&dir.join(file), export, project.mode, &out).await?;
        }
        Lang::Rust => build_rust(dir, &project.name, &out).await?,
    }
    Ok(out)
}

/// `cargo build` for wasm32-wasip2, then the component copied to `out`.
async fn build_rust(dir: &Path, name: &str, out: &Path) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new("cargo");
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"));
    run_tool("cargo build (wasm32-wasip2)", &mut command).await?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let built = target
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let out = super::output_path(out)?;
    std::fs::copy(&built, &out)
        .with_context(|| format!("cannot copy {} to {}", built.display(), out.display()))?;
    Ok(())
}
