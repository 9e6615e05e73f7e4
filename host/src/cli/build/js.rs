//! A JavaScript handler into a component: the glue (`glue.js`) imports the handler's
//! module and maps its results, and componentize-js builds StarlingMonkey, the glue and
//! the module into one pre-initialised component.
//!
//! componentize-js reads modules only from the directory of the file it builds, so the
//! handler's directory is copied into the build directory beside the glue (without
//! `node_modules` and hidden entries: a handler that needs packages bundles them
//! first). componentize-js's default features stay on, so `fetch()` works (through
//! `wasi:http`, to the hosts the actor is granted); only the `fetch-event` export is
//! left out, as an actor exports `handle` instead.

use super::toolchains::COMPONENTIZE_JS;
use super::{Mode, output_path, run_tool, workspace};
use anyhow::{Context, bail};
use std::path::Path;

const GLUE: &str = include_str!("glue.js");
/// The glue's file name: unlikely to clash with a user's.
const GLUE_FILE: &str = "__wasya_actor.js";

/// Checks an export name: a JavaScript identifier.
pub fn check_export(name: &str) -> anyhow::Result<()> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    if !valid {
        bail!("`{name}` is not the name of an exported function");
    }
    Ok(())
}

/// Builds the function `export` of module `file` into `out`.
pub async fn build(file: &Path, export: &str, mode: Mode, out: &Path) -> anyhow::Result<()> {
    check_export(export)?;
    let file = std::path::absolute(file)
        .with_context(|| format!("--js {} is not a usable path", file.display()))?;
    let (Some(source_dir), Some(name)) = (file.parent(), file.file_name()) else {
        bail!("--js {} is not a file", file.display());
    };
    if !file.is_file() {
        bail!("--js {} is not a file", file.display());
    }
    let name = name.to_string_lossy();
    if name.contains('"') || name.contains('\\') {
        bail!(
            "--js {}: rename the file without quotes or backslashes",
            file.display()
        );
    }
    let tool = COMPONENTIZE_JS.find()?;
    COMPONENTIZE_JS.check_version(&tool).await?;
    let out = output_path(out)?;
    let dir = workspace()?;
    let sources = dir.path().join("src");
    copy_sources(source_dir, &sources)
        .with_context(|| format!("cannot copy {}", source_dir.display()))?;
    let glue = GLUE
        .replace("{{MODULE}}", &format!("./{name}"))
        .replace("{{EXPORT}}", export)
        .replace("{{MODE}}", mode.as_str());
    std::fs::write(sources.join(GLUE_FILE), glue)?;
    let mut command = tokio::process::Command::new(&tool);
    command
        .arg(sources.join(GLUE_FILE))
        .arg("--wit")
        .arg(dir.path().join("wit"))
        .args(["--world-name", "actor", "--disable", "fetch-event", "-o"])
        .arg(&out);
    run_tool("componentize-js", &mut command).await?;
    super::declare_built_mode(&out, mode).await
}

/// Copies a source tree, leaving out `node_modules` and hidden entries.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with('.') || text == "node_modules" || text == "target" {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_sources(&entry.path(), &to.join(&name))?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_identifiers() {
        for good in ["handler", "_h", "$h1", "handleMessage"] {
            assert!(check_export(good).is_ok(), "{good}");
        }
        for bad in ["", "1h", "a-b", "a\"b", "a.b"] {
            assert!(check_export(bad).is_err(), "{bad}");
        }
    }
}
