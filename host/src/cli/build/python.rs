//! A Python handler into a component: the glue (`glue.py`) imports it the way Asya's
//! runtime does and maps its results, and componentize-py builds CPython, the glue and
//! the handler's modules into one pre-initialised component.
//!
//! The component targets `http-actor`: the actor world with `wasi:http` imported
//! (its WIT is the node's own, [`crate::wasi_wit`]), and the glue ships `wasya_http`,
//! a small `requests`-like module a handler imports to call out.

use super::tools::COMPONENTIZE_PY;
use super::{Mode, output_path, run_tool, workspace};
use anyhow::{Context, bail};
use std::path::Path;

const GLUE: &str = include_str!("glue.py");
/// The glue's module name: unlikely to clash with a user's.
const GLUE_MODULE: &str = "wasya_actor";
/// The HTTP helper a handler imports (`import wasya_http`).
const HTTP_HELPER: &str = include_str!("wasya_http.py");
/// The world a Python actor is built for: the actor's, with `wasi:http` to call out.
const HTTP_WORLD: &str = "package wasya:actor@0.1.0;\n\nworld http-actor {\n    include actor;\n    import wasi:http/outgoing-handler@0.2.12;\n}\n";

/// Checks a handler name: dotted Python identifiers, at least `module.function`.
pub fn check_handler(handler: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = handler.split('.').collect();
    let identifier = |part: &str| {
        part.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    if parts.len() < 2 || !parts.iter().all(|part| identifier(part)) {
        bail!(
            "`{handler}` is not a handler: name it as ASYA_HANDLER does, `module.function` or `module.Class.method`"
        );
    }
    Ok(())
}

/// Builds `handler`, found on `path`, into `out`.
pub async fn build(handler: &str, path: &Path, mode: Mode, out: &Path) -> anyhow::Result<()> {
    check_handler(handler)?;
    let path = std::path::absolute(path)
        .with_context(|| format!("--path {} is not a usable path", path.display()))?;
    if !path.is_dir() {
        bail!("--path {} is not a directory", path.display());
    }
    let tool = COMPONENTIZE_PY.find()?;
    COMPONENTIZE_PY.check_version(&tool).await?;
    let out = output_path(out)?;
    let dir = workspace()?;
    let glue = dir.path().join("glue");
    std::fs::create_dir(&glue)?;
    let source = GLUE
        .replace("{{HANDLER}}", handler)
        .replace("{{MODE}}", mode.as_str());
    std::fs::write(glue.join(format!("{GLUE_MODULE}.py")), source)?;
    std::fs::write(glue.join("wasya_http.py"), HTTP_HELPER)?;
    let wit = dir.path().join("wit");
    std::fs::write(wit.join("http.wit"), HTTP_WORLD)?;
    for (package, text) in crate::wasi_wit::WASI_WIT {
        let package_dir = wit.join("deps").join(package);
        std::fs::create_dir_all(&package_dir)?;
        std::fs::write(package_dir.join(format!("{package}.wit")), text)?;
    }
    let mut command = tokio::process::Command::new(&tool);
    command
        // Its own backtrace says nothing about the handler; the Python one does.
        .env("RUST_BACKTRACE", "0")
        .arg("-d")
        .arg(dir.path().join("wit"))
        .args(["-w", "http-actor", "componentize", "-p"])
        .arg(&glue)
        .arg("-p")
        .arg(&path)
        .arg(GLUE_MODULE)
        .arg("-o")
        .arg(&out);
    run_tool("componentize-py", &mut command).await?;
    super::declare_built_mode(&out, mode).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_are_named_as_asya_names_them() {
        for good in ["handlers.double", "pkg.mod.Class.method", "_m.f1"] {
            assert!(check_handler(good).is_ok(), "{good}");
        }
        for bad in ["double", "a..b", "a.b-c", "a.\"b", "1a.b", ""] {
            assert!(check_handler(bad).is_err(), "{bad}");
        }
    }
}
