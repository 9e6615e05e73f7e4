//! A Python handler into a component: the glue (`glue.py`) imports it the way Asya's
//! runtime does and maps its results, and componentize-py builds CPython, the glue and
//! the handler's modules into one pre-initialised component.
//!
//! A plain `def` handler is built for `http-actor` of `wasya:actor@0.1.0` (the actor
//! world with `wasi:http` 0.2), an `async def` one for `http-actor` of
//! `wasya:actor@0.2.0` (`handle` an `async func`, `wasi:http` 0.3): one instance then
//! holds many calls at once. The WIT is the node's own ([`crate::wasi_wit`]), and the
//! glue ships `wasya_http`, a small `requests`-like module (coroutines in the async
//! world) a handler imports to call out. Each file shipped is a common part and the
//! world's part, joined here; `wasya_http` ends with the part both worlds share
//! (`wasya_http_libraries.py`): a component has no sockets, so a socket or a name lookup
//! raises a Python exception naming the way out, and `httpx` and `requests` get
//! transports over `wasi:http` when a handler imports them.

use super::python_packages;
use super::toolchains::COMPONENTIZE_PY;
use super::{Mode, output_path, run_tool, workspace};
use anyhow::{Context, bail};
use std::path::Path;

const GLUE: &str = include_str!("glue.py");
const GLUE_SYNC: &str = include_str!("glue_sync.py");
const GLUE_ASYNC: &str = include_str!("glue_async.py");
/// The glue's module name: unlikely to clash with a user's.
const GLUE_MODULE: &str = "wasya_actor";
/// The HTTP helper a handler imports (`import wasya_http`).
const HTTP_HELPER: &str = include_str!("wasya_http.py");
const HTTP_HELPER_SYNC: &str = include_str!("wasya_http_sync.py");
const HTTP_HELPER_ASYNC: &str = include_str!("wasya_http_async.py");
/// What follows either world's part: no sockets, and httpx and requests over `wasi:http`.
const HTTP_LIBRARIES: &str = include_str!("wasya_http_libraries.py");
/// The world a plain `def` is built for: the actor's, with `wasi:http` to call out.
const HTTP_WORLD: &str = "package wasya:actor@0.1.0;\n\nworld http-actor {\n    include actor;\n    import wasi:http/outgoing-handler@0.2.12;\n}\n";

/// Which world a handler is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerWorld {
    /// A plain `def`: `wasya:actor@0.1.0`.
    Sync,
    /// An `async def`: `wasya:actor@0.2.0`.
    Async,
}

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
    let world = handler_world(handler, &path);
    let tool = COMPONENTIZE_PY.find()?;
    COMPONENTIZE_PY.check_version(&tool).await?;
    let out = output_path(out)?;
    let dir = workspace()?;
    let glue = dir.path().join("glue");
    std::fs::create_dir(&glue)?;
    let (glue_part, http_part) = match world {
        HandlerWorld::Sync => (GLUE_SYNC, HTTP_HELPER_SYNC),
        HandlerWorld::Async => (GLUE_ASYNC, HTTP_HELPER_ASYNC),
    };
    let source = format!("{GLUE}{glue_part}")
        .replace("{{HANDLER}}", handler)
        .replace("{{MODE}}", mode.as_str());
    std::fs::write(glue.join(format!("{GLUE_MODULE}.py")), source)?;
    std::fs::write(
        glue.join("wasya_http.py"),
        format!("{HTTP_HELPER}{http_part}{HTTP_LIBRARIES}"),
    )?;
    // The world's WIT and its WASI packages, where componentize-py reads them.
    let wit = dir.path().join("wit");
    let (world_wit, wasi) = match world {
        HandlerWorld::Sync => {
            std::fs::write(wit.join("http.wit"), HTTP_WORLD)?;
            (wit.clone(), crate::wasi_wit::WASI_WIT)
        }
        HandlerWorld::Async => {
            let async_wit = dir.path().join("wit-async");
            std::fs::create_dir_all(&async_wit)?;
            std::fs::write(
                async_wit.join("actor.wit"),
                crate::wasi_wit::ASYNC_ACTOR_WIT,
            )?;
            (async_wit, crate::wasi_wit::WASI_WIT_P3)
        }
    };
    for (package, text) in wasi {
        let package_dir = world_wit.join("deps").join(package);
        std::fs::create_dir_all(&package_dir)?;
        std::fs::write(package_dir.join(format!("{package}.wit")), text)?;
    }
    let venv = python_packages::virtual_env(&tool);
    let mut command = tokio::process::Command::new(&tool);
    if let Some(venv) = &venv {
        command.env("VIRTUAL_ENV", venv);
    }
    command
        // Its own backtrace says nothing about the handler; the Python one does.
        .env("RUST_BACKTRACE", "0")
        .arg("-d")
        .arg(&world_wit)
        .args(["-w", "http-actor", "componentize", "-p"])
        .arg(&glue)
        .arg("-p")
        .arg(&path)
        .arg(GLUE_MODULE)
        .arg("-o")
        .arg(&out);
    if let Err(failed) = run_tool("componentize-py", &mut command).await {
        let roots = python_packages::search_roots(&path, venv.as_deref());
        let said = format!("{failed:#}");
        return Err(
            match python_packages::native_extension_cause(&said, &roots)
                .or_else(|| python_packages::missing_stdlib_cause(&said))
            {
                Some(cause) => failed.context(cause),
                None => failed,
            },
        );
    }
    super::declare_built_mode(&out, mode).await
}

/// The world `handler` is built for: async when its function (or method) is an
/// `async def` in its module's source. The module is read as text, not run: the build
/// machine's Python need not have the handler's packages.
pub fn handler_world(handler: &str, path: &Path) -> HandlerWorld {
    let parts: Vec<&str> = handler.split('.').collect();
    // `a.b.f` is module `a.b` and function `f`, or module `a`, class `b`, method `f`.
    for split in (1..parts.len()).rev() {
        let module = parts[..split].join("/");
        let source = [format!("{module}.py"), format!("{module}/__init__.py")]
            .iter()
            .find_map(|file| std::fs::read_to_string(path.join(file)).ok());
        let Some(source) = source else { continue };
        let function = parts[parts.len() - 1];
        let class = (parts.len() - split == 2).then(|| parts[split]);
        return if is_async_def(&source, class, function) {
            HandlerWorld::Async
        } else {
            HandlerWorld::Sync
        };
    }
    HandlerWorld::Sync
}

/// Whether `source` defines `function` (at the top level, or as a method of `class`)
/// with `async def`.
fn is_async_def(source: &str, class: Option<&str>, function: &str) -> bool {
    let mut in_class = class.is_none();
    for line in source.lines() {
        let indented = line.starts_with([' ', '\t']);
        let text = line.trim_start();
        if let Some(class) = class
            && !indented
            && !text.is_empty()
            && !text.starts_with('#')
        {
            in_class = text.strip_prefix("class ").is_some_and(|rest| {
                rest.trim_start().starts_with(class)
                    && rest.trim_start()[class.len()..].starts_with([':', '(', ' '])
            });
            continue;
        }
        if !in_class || (class.is_none() && indented) {
            continue;
        }
        let Some(rest) = text.strip_prefix("async") else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("def") else {
            continue;
        };
        let rest = rest.trim_start();
        if rest.starts_with(function) && rest[function.len()..].trim_start().starts_with('(') {
            return true;
        }
    }
    false
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

    #[test]
    fn an_async_def_is_told_from_a_def() {
        let source = "import x\n\nasync def fetch(payload):\n    pass\n\ndef plain(p):\n    return p\n\nclass Bot:\n    def __init__(self):\n        pass\n\n    async def answer(self, p):\n        return p\n\n    def echo(self, p):\n        return p\n\nclass Other:\n    async def echo(self, p):\n        return p\n";
        assert!(is_async_def(source, None, "fetch"));
        assert!(!is_async_def(source, None, "plain"));
        assert!(
            !is_async_def(source, None, "answer"),
            "a method is not a function"
        );
        assert!(is_async_def(source, Some("Bot"), "answer"));
        assert!(
            !is_async_def(source, Some("Bot"), "echo"),
            "Other's echo is not Bot's"
        );
        assert!(is_async_def(source, Some("Other"), "echo"));
        assert!(
            !is_async_def(source, None, "fetc"),
            "a prefix is not the name"
        );
    }
}
