//! Where a Python handler's packages come from, and why one of them did not load.
//!
//! componentize-py bundles what the handler imports from the `--path` directories and
//! from the site-packages of the active virtual environment (`VIRTUAL_ENV`), and no
//! other. A user who installed componentize-py and their packages into one venv but
//! runs `wasya build` without activating it gets that venv all the same: the tool's
//! own environment is the one meant. A package with a native extension cannot load in
//! a component (its `.so` is built for the build machine, not for wasm); componentize-py
//! then fails with an `ImportError` that does not say so, and the build names the
//! package instead.

use std::path::{Path, PathBuf};

/// How deep below a package directory native extensions are looked for.
const SEARCH_DEPTH: usize = 4;

/// The virtual environment componentize-py should bundle from: the active one, else the
/// one the tool itself is installed in (`<venv>/bin/componentize-py`).
pub fn virtual_env(tool: &Path) -> Option<PathBuf> {
    if let Some(active) = std::env::var_os("VIRTUAL_ENV").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(active));
    }
    let tool = std::fs::canonicalize(tool).unwrap_or_else(|_| tool.to_owned());
    let venv = tool.parent()?.parent()?;
    venv.join("pyvenv.cfg").is_file().then(|| venv.to_owned())
}

/// The directories a handler's imports are found in: `--path`, then the venv's
/// site-packages.
pub fn search_roots(path: &Path, venv: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = vec![path.to_owned()];
    if let Some(venv) = venv {
        for lib in ["lib", "lib64"] {
            let Ok(entries) = std::fs::read_dir(venv.join(lib)) else {
                continue;
            };
            roots.extend(
                entries
                    .flatten()
                    .map(|entry| entry.path().join("site-packages"))
                    .filter(|dir| dir.is_dir()),
            );
        }
    }
    roots
}

/// Why a failed build failed, where the cause is a package with a native extension:
/// a sentence naming the package and the extension, or `None`.
pub fn native_extension_cause(said: &str, roots: &[PathBuf]) -> Option<String> {
    for package in imported_packages(said) {
        for root in roots {
            let dir = root.join(&package);
            if let Some(extension) = native_extension_in(&dir, SEARCH_DEPTH) {
                let shown = extension.strip_prefix(root).unwrap_or(&extension);
                return Some(format!(
                    "package `{package}` cannot load in a wasm component: it has a native extension ({}), \
                     built for this machine, not for wasm. Use a pure-Python package instead, or run this \
                     handler as a socket actor (Asya's runtime behind `wasya sidecar` or a socket actor of `wasya up`)",
                    shown.display()
                ));
            }
        }
    }
    None
}

/// Parts of CPython's standard library its wasm build has not, and what to do instead.
const MISSING_STDLIB: &[(&str, &str)] = &[
    (
        "_ssl",
        "the standard library's `ssl` is not in CPython's wasm build (TLS is the node's): \
         call out with httpx, requests or wasya_http, whose https:// requests the node makes",
    ),
    (
        "_ctypes",
        "`ctypes` is not in CPython's wasm build: a component cannot load native code",
    ),
];

/// Why a failed build failed, where the cause is a part of the standard library a
/// component has not: a sentence, or `None`.
pub fn missing_stdlib_cause(said: &str) -> Option<String> {
    let named = imported_packages(said);
    MISSING_STDLIB
        .iter()
        .find(|(module, _)| named.iter().any(|name| name == module))
        .map(|(_, why)| (*why).to_owned())
}

/// The top-level packages an `ImportError` or `ModuleNotFoundError` in `said` names.
fn imported_packages(said: &str) -> Vec<String> {
    let mut packages = Vec::new();
    for line in said.lines() {
        if !(line.contains("ImportError") || line.contains("ModuleNotFoundError")) {
            continue;
        }
        // Every quoted dotted name on the line: the module, and the one it came from.
        for (index, quoted) in line.split('\'').enumerate() {
            if index % 2 == 0 {
                continue;
            }
            let top = quoted.split('.').next().unwrap_or_default();
            let is_name =
                !top.is_empty() && top.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if is_name && !packages.iter().any(|known| known == top) {
                packages.push(top.to_owned());
            }
        }
    }
    packages
}

/// The first native extension (`.so`, `.pyd`) under `dir`, at most `depth` levels down.
fn native_extension_in(dir: &Path, depth: usize) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut below = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            below.push(path);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "so" || extension == "pyd")
        {
            return Some(path);
        }
    }
    if depth == 0 {
        return None;
    }
    below
        .iter()
        .find_map(|dir| native_extension_in(dir, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packages_an_import_error_names_are_read_from_it() {
        let said = "Traceback (most recent call last):\n  File \"handler.py\", line 1\n\
                    ImportError: cannot import name 'ArgsKwargs' from 'pydantic_core._pydantic_core' (unknown location)\n\
                    ModuleNotFoundError: No module named 'numpy'\nValueError: 'not_this'";
        assert_eq!(
            imported_packages(said),
            ["ArgsKwargs", "pydantic_core", "numpy"]
        );
    }

    #[test]
    fn a_missing_ssl_says_the_node_makes_tls() {
        let cause =
            missing_stdlib_cause("ModuleNotFoundError: No module named '_ssl'").expect("a cause");
        assert!(cause.contains("TLS is the node's"), "{cause}");
        assert_eq!(
            missing_stdlib_cause("ModuleNotFoundError: No module named 'x'"),
            None
        );
    }

    #[test]
    fn a_package_holding_an_so_is_named_and_a_pure_one_is_not() {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("fast/_impl")).expect("dirs");
        std::fs::write(root.path().join("fast/__init__.py"), "").expect("init");
        std::fs::write(
            root.path().join("fast/_impl/core.cpython-311.so"),
            b"\x7fELF",
        )
        .expect("so");
        std::fs::create_dir_all(root.path().join("pure")).expect("dirs");
        std::fs::write(root.path().join("pure/__init__.py"), "").expect("init");
        let roots = [root.path().to_owned()];
        let cause = native_extension_cause(
            "ModuleNotFoundError: No module named 'fast._impl.core'",
            &roots,
        )
        .expect("a cause");
        assert!(cause.contains("`fast`"), "{cause}");
        assert!(cause.contains("core.cpython-311.so"), "{cause}");
        assert_eq!(
            native_extension_cause("ImportError: cannot import name 'x' from 'pure'", &roots),
            None
        );
    }
}
