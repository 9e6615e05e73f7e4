//! Builds the example actors in `guests/` and bundles them into the node.
//!
//! The actors are built by the host's own build, so `cargo test` and `cargo run` need no
//! manual step first. They are members of the repository's workspace (one lock file, and
//! `cargo fetch` brings their crates too) but not default members, and they target
//! `wasm32-wasip2`, so they are built here with a nested cargo, in the workspace's
//! `guest` profile. That cargo gets its own target directory (`guests/target`, or
//! `WASYA_GUESTS_TARGET`): sharing
//! the outer one would wait forever on the build directory lock the outer cargo holds
//! while this script runs. Settings of the outer build that would leak through the
//! environment (flags, wrappers, the target) are removed from the child's.
//!
//! Outputs:
//! - `$OUT_DIR/actors/NAME.wasm`, a copy of every actor component;
//! - `$OUT_DIR/bundled_actors.rs`, a `BUNDLED_ACTORS` table of `(name, bytes)` sorted by
//!   name, meant for `include!`;
//! - the `WASYA_GUESTS_DIR` compile-time variable, the directory of the built components;
//! - `$OUT_DIR/wasi_wit.rs`, a `WASI_WIT` table of `(package, text)`: the WASI WIT
//!   packages (`wasi:http` and what it uses) kept in `wit/deps`, the WIT of the
//!   `wasmtime-wasi-http` the node is built with; `WASI_WIT_P3`, the same for WASI 0.3
//!   (`wit/async/deps`), and `ASYNC_ACTOR_WIT`, the async actor world. `wasya build
//!   --python` gives them to componentize-py, so a Python actor's `wasi:http` is the
//!   one the node implements.
//!
//! The script reads only the repository: nothing here may need a crate that a plain
//! `cargo build` does not download (a dev-dependency, another platform's crate), so
//! a fresh machine builds from the registry alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const GUEST_TARGET: &str = "wasm32-wasip2";
/// The workspace profile the actors are built in (small code: they are bundled).
const GUEST_PROFILE: &str = "guest";
/// The node's own package, the one workspace member that is not an actor.
const NODE_PACKAGE: &str = "wasya";

/// Variables of the outer build that must not reach the nested cargo: they carry flags,
/// wrappers, a target or a tool chosen for the host, not for the guests.
const LEAKING_VARS: &[&str] = &[
    "RUSTC",
    "RUSTDOC",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTDOC",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
];

/// A crate of the guests workspace.
struct GuestCrate {
    dir: PathBuf,
    name: String,
    cdylib: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts"),
    );
    let out_dir =
        PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR for build scripts"));
    let root = manifest_dir
        .parent()
        .expect("the host crate lives in a directory of the repository");
    let wit_dir = root.join("wit");
    let guests_dir = root.join("guests");
    // `WASYA_GUESTS_TARGET` puts the actors' build elsewhere (scripts/fresh-build.sh
    // does, so its builds leave a developer's own alone).
    println!("cargo:rerun-if-env-changed=WASYA_GUESTS_TARGET");
    let guests_target = env::var_os("WASYA_GUESTS_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| guests_dir.join("target"));

    println!("cargo:rerun-if-changed={}", wit_dir.display());
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    let crates = guest_crates(root, &guests_dir);
    for krate in &crates {
        println!(
            "cargo:rerun-if-changed={}",
            krate.dir.join("Cargo.toml").display()
        );
        println!("cargo:rerun-if-changed={}", krate.dir.join("src").display());
    }

    build_guests(root, &guests_target);

    let built_dir = guests_target.join(GUEST_TARGET).join(GUEST_PROFILE);
    println!("cargo:rustc-env=WASYA_GUESTS_DIR={}", built_dir.display());

    let mut actors: Vec<&GuestCrate> = crates.iter().filter(|c| c.cdylib).collect();
    actors.sort_by(|a, b| a.name.cmp(&b.name));

    let actors_out = out_dir.join("actors");
    fs::create_dir_all(&actors_out)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", actors_out.display()));

    let mut table = String::from(
        "/// The example actors, `(name, component bytes)`, sorted by name.\npub const BUNDLED_ACTORS: &[(&str, &[u8])] = &[",
    );
    for (i, actor) in actors.iter().enumerate() {
        // Cargo names the artifact after the library, whose name has `_` for `-`.
        let file = format!("{}.wasm", actor.name.replace('-', "_"));
        let built = built_dir.join(&file);
        let bundled = actors_out.join(format!("{}.wasm", actor.name));
        fs::copy(&built, &bundled).unwrap_or_else(|e| {
            panic!(
                "cannot copy the actor component {} to {}: {e}",
                built.display(),
                bundled.display()
            )
        });
        let bundled = bundled.to_str().unwrap_or_else(|| {
            panic!(
                "OUT_DIR must be valid UTF-8 to bundle the actors, got {}",
                bundled.display()
            )
        });
        if i > 0 {
            table.push_str(", ");
        }
        // `{:?}` quotes and escapes like a Rust string literal.
        write!(table, "({:?}, include_bytes!({bundled:?}))", actor.name)
            .expect("writing to a String cannot fail");
    }
    table.push_str("];\n");

    let table_path = out_dir.join("bundled_actors.rs");
    fs::write(&table_path, table)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", table_path.display()));

    bundle_wasi_wit(&wit_dir, &out_dir);
}

/// Writes the `WASI_WIT` table from the WASI packages kept in `wit/deps`.
///
/// They are the repository's own copy of the WIT of the `wasmtime-wasi-http` the node
/// links (a test checks the two agree), so the build reads no registry path and needs
/// no `cargo metadata`, which would resolve the dev-dependencies a plain `cargo build`
/// never downloads.
fn bundle_wasi_wit(wit_dir: &Path, out_dir: &Path) {
    let deps = wit_dir.join("deps");
    let mut table = wit_table(
        "/// The WASI WIT packages, `(package, text)`.\npub const WASI_WIT",
        &deps,
    );
    assert!(
        table.contains("include_str!"),
        "{} holds no WIT packages; the node bundles the WASI WIT from there",
        deps.display()
    );
    table.push_str(&wit_table(
        "/// The WASI 0.3 WIT packages of the async world, `(package, text)`.\npub const WASI_WIT_P3",
        &wit_dir.join("async/deps"),
    ));
    let actor = wit_dir.join("async/actor.wit");
    println!("cargo:rerun-if-changed={}", actor.display());
    writeln!(
        table,
        "/// The async actor world's own WIT (`wasya:actor@0.2.0`).\npub const ASYNC_ACTOR_WIT: &str = include_str!({:?});",
        actor.to_str().expect("a UTF-8 repository path")
    )
    .expect("writing to a String cannot fail");
    let table_path = out_dir.join("wasi_wit.rs");
    fs::write(&table_path, table)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", table_path.display()));
}

/// A `(package, text)` table, declared as `declaration`, of the WIT files in `deps`.
fn wit_table(declaration: &str, deps: &Path) -> String {
    println!("cargo:rerun-if-changed={}", deps.display());
    let mut files: Vec<PathBuf> = fs::read_dir(deps)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", deps.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wit"))
        .collect();
    files.sort();
    let mut table = format!("{declaration}: &[(&str, &str)] = &[");
    for file in &files {
        let package = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("a WIT file name");
        let path = file.to_str().expect("a UTF-8 repository path");
        write!(table, "({package:?}, include_str!({path:?})), ")
            .expect("writing to a String cannot fail");
    }
    table.push_str("];\n");
    table
}

/// Runs `cargo build --profile guest --target wasm32-wasip2` for every actor of the
/// workspace.
fn build_guests(root: &Path, guests_target: &Path) {
    let cargo = env::var_os("CARGO").expect("cargo sets CARGO for build scripts");
    let mut command = Command::new(cargo);
    command.current_dir(root).args([
        "build",
        "--workspace",
        "--exclude",
        NODE_PACKAGE,
        "--profile",
        GUEST_PROFILE,
        "--target",
        GUEST_TARGET,
    ]);
    for var in LEAKING_VARS {
        command.env_remove(var);
    }
    command
        .env("CARGO_TARGET_DIR", guests_target)
        // Build script stdout is read by cargo as instructions: the child's goes to stderr,
        // which cargo shows when the build fails.
        .stdout(Stdio::from(std::io::stderr()))
        .stderr(Stdio::inherit());

    let status = command.status().unwrap_or_else(|e| {
        panic!(
            "cannot run cargo to build the example actors in {}: {e}",
            root.display()
        )
    });
    assert!(
        status.success(),
        "building the example actors failed ({status}); its output is above.\n\
         The actors need the {GUEST_TARGET} target: run `rustup target add {GUEST_TARGET}`.\n\
         To see the errors alone, run `cargo build --workspace --exclude {NODE_PACKAGE} \
         --profile {GUEST_PROFILE} --target {GUEST_TARGET}` in {dir}.",
        dir = root.display(),
    );
}

/// The actor crates of the workspace (its members under `guests/`), as cargo reads
/// them (`cargo metadata --no-deps`, which resolves nothing and downloads nothing).
fn guest_crates(root: &Path, guests_dir: &Path) -> Vec<GuestCrate> {
    let cargo = env::var_os("CARGO").expect("cargo sets CARGO for build scripts");
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"]);
    for var in LEAKING_VARS {
        command.env_remove(var);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo metadata in {}: {e}", root.display()));
    assert!(
        output.status.success(),
        "cargo metadata failed in {}: {}",
        root.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("cargo metadata printed no JSON: {e}"));
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    packages
        .iter()
        .filter_map(|package| {
            let manifest = PathBuf::from(package["manifest_path"].as_str()?);
            let dir = manifest.parent()?.to_path_buf();
            if !dir.starts_with(guests_dir) {
                return None;
            }
            let cdylib = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|target| {
                    target["crate_types"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|kind| kind == "cdylib")
                });
            Some(GuestCrate {
                dir,
                name: package["name"].as_str().unwrap_or_default().to_owned(),
                cdylib,
            })
        })
        .collect()
}
