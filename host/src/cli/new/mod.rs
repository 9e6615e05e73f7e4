//! `wasya new NAME --lang rust|python|js [--async]`: a project that builds with `wasya
//! build` and passes its own test as written (`python3 -m unittest`, `node --test`,
//! `cargo test`). `--async` (Python) writes an `async def` handler, built for the async
//! world.
//!
//! The templates are plain files under `templates/`, embedded in the binary; `{{name}}`
//! becomes the actor's name. A Rust project gets the world's WIT beside its code.

use super::build::WIT;
use super::build::project::{Lang, MANIFEST};
use anyhow::{Context, bail};
use clap::Args;
use std::path::{Path, PathBuf};

/// Flags of `wasya new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The actor's name (`[a-z0-9][a-z0-9-]*`), also the project's directory.
    pub name: String,
    /// The language of the handler.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where the project's directory is made.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// An `async def` handler, built for the async world (`wasya:actor@0.2.0`: many
    /// calls per instance). Python only.
    #[arg(long = "async")]
    pub is_async: bool,
}

/// The templates of an async Python project.
const PYTHON_ASYNC: &[(&str, &str)] = &[
    (MANIFEST, include_str!("templates/python-async/wasya.toml")),
    (
        "handler.py",
        include_str!("templates/python-async/handler.py"),
    ),
    (
        "test_handler.py",
        include_str!("templates/python-async/test_handler.py"),
    ),
    (
        ".gitignore",
        include_str!("templates/python-async/gitignore"),
    ),
];

/// `(path in the project, template)` of each language.
fn templates(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Python => &[
            (MANIFEST, include_str!("templates/python/wasya.toml")),
            ("handler.py", include_str!("templates/python/handler.py")),
            (
                "test_handler.py",
                include_str!("templates/python/test_handler.py"),
            ),
            (".gitignore", include_str!("templates/python/gitignore")),
        ],
        Lang::Js => &[
            (MANIFEST, include_str!("templates/js/wasya.toml")),
            ("handler.js", include_str!("templates/js/handler.js")),
            (
                "handler.test.js",
                include_str!("templates/js/handler.test.js"),
            ),
            ("package.json", include_str!("templates/js/package.json")),
            (".gitignore", include_str!("templates/js/gitignore")),
        ],
        Lang::Rust => &[
            (MANIFEST, include_str!("templates/rust/wasya.toml")),
            ("Cargo.toml", include_str!("templates/rust/Cargo.toml")),
            ("src/lib.rs", include_str!("templates/rust/src/lib.rs")),
            ("wit/actor.wit", WIT),
            (".gitignore", include_str!("templates/rust/gitignore")),
        ],
    }
}

/// Writes the project; prints its directory.
pub async fn run(args: NewArgs) -> anyhow::Result<()> {
    crate::records::validate_name(&args.name)?;
    let files = match (args.lang, args.is_async) {
        (Lang::Python, true) => PYTHON_ASYNC,
        (_, true) => bail!(
            "--async is for Python: JavaScript stays on the sync world (componentize-js has no async exports), and a Rust actor writes `async fn handle` itself (guests/wait)"
        ),
        (lang, false) => templates(lang),
    };
    let dir = args.dir.join(&args.name);
    let written = tokio::task::spawn_blocking(move || write(&dir, &args.name, files).map(|()| dir))
        .await
        .context("the project was not written")??;
    super::send::print_out(&written.display().to_string())
}

fn write(dir: &Path, name: &str, files: &[(&str, &str)]) -> anyhow::Result<()> {
    if dir.exists() {
        bail!("{} exists: choose another name or --dir", dir.display());
    }
    for (path, template) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot make {}", parent.display()))?;
        }
        std::fs::write(&path, template.replace("{{name}}", name))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_writes_a_manifest_that_reads_back() {
        let sets = [
            (Lang::Python, templates(Lang::Python)),
            (Lang::Python, PYTHON_ASYNC),
            (Lang::Js, templates(Lang::Js)),
            (Lang::Rust, templates(Lang::Rust)),
        ];
        for (lang, files) in sets {
            let root = tempfile::tempdir().expect("a directory");
            let dir = root.path().join("hello-actor");
            write(&dir, "hello-actor", files).expect("written");
            let project = super::super::build::project::Project::read(&dir).expect("readable");
            assert_eq!((project.name.as_str(), project.lang), ("hello-actor", lang));
            assert!(
                write(&dir, "hello-actor", files).is_err(),
                "never over a project"
            );
        }
    }
}
