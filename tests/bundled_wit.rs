//! The WASI WIT kept in `wit/deps` (and WASI 0.3's, in `wit/async/deps`) is the WIT of
//! the `wasmtime-wasi-http` the node is built with: the node bundles it (for Python builds, so a handler's `wasi:http` is
//! the one the node implements), and it must not drift from the crate's own copy when
//! wasmtime is upgraded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn wit_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// The directory of the `wasmtime-wasi-http` crate the node is built with.
fn wasi_http_crate(root: &Path) -> PathBuf {
    let output = std::process::Command::new(env!("CARGO"))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let manifest = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "wasmtime-wasi-http")
        .and_then(|package| package["manifest_path"].as_str())
        .expect("wasmtime-wasi-http is a dependency of the node");
    Path::new(manifest).parent().unwrap().to_owned()
}

/// Our copy in `ours` holds the crate's WIT files in `crate_deps`, byte for byte.
fn same_files(ours: &Path, crate_deps: &Path) {
    let ours_dir = ours;
    let ours = wit_files(ours_dir);
    let theirs = wit_files(crate_deps);
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "the same packages as {}",
        crate_deps.display()
    );
    for (name, text) in &theirs {
        assert!(
            ours[name] == *text,
            "{} differs from {}: copy the crate's files there",
            ours_dir.join(name).display(),
            crate_deps.join(name).display()
        );
    }
}

#[test]
fn wit_deps_is_the_wasi_wit_of_the_wasmtime_the_node_links() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = wasi_http_crate(&root);
    same_files(&root.join("wit/deps"), &crate_dir.join("wit/deps"));
}

/// The same for WASI 0.3, which the async world (`wit/async`) links.
#[test]
fn wit_async_deps_is_the_wasi_0_3_wit_of_the_wasmtime_the_node_links() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = wasi_http_crate(&root);
    same_files(
        &root.join("wit/async/deps"),
        &crate_dir.join("src/p3/wit/deps"),
    );
}
