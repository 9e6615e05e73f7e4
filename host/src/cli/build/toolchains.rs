//! The toolchains `wasya build` drives, found where a user puts them, and named with
//! the exact install command when they are missing.
//!
//! Each is looked up through its own environment variable first (so a pinned copy in
//! a virtual environment or a project's `node_modules` can be chosen), then on `PATH`.
//! The versions here are the ones the build is tested with; another version is used
//! with a warning.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

/// A toolchain `wasya build` runs.
pub struct Tool {
    /// The executable's name, looked up on `PATH`.
    pub command: &'static str,
    /// The environment variable that can point at the executable instead.
    pub env: &'static str,
    /// The version the build is tested with.
    pub version: &'static str,
    /// The command that installs the tested version.
    pub install: &'static str,
}

/// Python: `componentize-py` (CPython and the component, pre-initialised).
pub const COMPONENTIZE_PY: Tool = Tool {
    command: "componentize-py",
    env: "WASYA_COMPONENTIZE_PY",
    version: "0.25.1",
    install: "pip install componentize-py==0.25.1",
};

/// JavaScript: `componentize-js` (StarlingMonkey and the component).
pub const COMPONENTIZE_JS: Tool = Tool {
    command: "componentize-js",
    env: "WASYA_COMPONENTIZE_JS",
    version: "0.23.0",
    install: "npm install -g @bytecodealliance/componentize-js@0.23.0",
};

impl Tool {
    /// Where the tool is, or an error that says how to install it.
    pub fn find(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = std::env::var_os(self.env) {
            let path = PathBuf::from(path);
            if !path.is_file() {
                bail!(
                    "{}={} is not a file: point it at the {} executable",
                    self.env,
                    path.display(),
                    self.command
                );
            }
            return Ok(path);
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(self.command))
                .find(|candidate| candidate.is_file())
        });
        match found {
            Some(path) => Ok(path),
            None => bail!(
                "{} is not installed: `{}` (or set {} to its executable)",
                self.command,
                self.install,
                self.env
            ),
        }
    }

    /// Warns when the tool found is not the version the build is tested with.
    pub async fn check_version(&self, path: &Path) -> anyhow::Result<()> {
        let output = tokio::process::Command::new(path)
            .arg("--version")
            .output()
            .await
            .with_context(|| format!("cannot run {}", path.display()))?;
        let said = String::from_utf8_lossy(&output.stdout);
        if !said.contains(self.version) {
            tracing::warn!(
                tool = self.command,
                found = said.trim(),
                tested = self.version,
                "this version is not the one wasya build is tested with: `{}`",
                self.install
            );
        }
        Ok(())
    }
}
