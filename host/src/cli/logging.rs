//! Which log lines a process writes, chosen from the environment as the tools around
//! it expect: `WASYA_LOG`, else Rust's usual `RUST_LOG`, else (for `wasya sidecar`,
//! which takes Asya's environment) `ASYA_LOG_LEVEL`'s Python level names, else `info`;
//! and whether lines are coloured.

/// The filter directives for this process (`EnvFilter` syntax); `env` reads a variable.
pub fn filter_directives(env: impl Fn(&str) -> Option<String>, sidecar: bool) -> String {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if let Some(directives) = set("WASYA_LOG").or_else(|| set("RUST_LOG")) {
        return directives;
    }
    if sidecar && let Some(level) = set("ASYA_LOG_LEVEL") {
        return python_level(&level).to_owned();
    }
    "info".to_owned()
}

/// Whether log lines carry colour codes: only on a terminal, and never with `NO_COLOR`
/// set to anything but empty (no-color.org); a file, a pipe or a collector gets plain
/// text.
pub fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// A Python logging level name as a tracing level (`WARNING` → `warn`).
fn python_level(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" | "FATAL" | "ERROR" => "error",
        "WARNING" | "WARN" => "warn",
        "DEBUG" => "debug",
        "NOTSET" | "TRACE" => "trace",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn wasya_log_then_rust_log_then_info() {
        let both = [("WASYA_LOG", "debug"), ("RUST_LOG", "warn")];
        assert_eq!(filter_directives(env(&both), false), "debug");
        assert_eq!(
            filter_directives(env(&[("RUST_LOG", "warn,wasya=trace")]), false),
            "warn,wasya=trace"
        );
        assert_eq!(filter_directives(env(&[("WASYA_LOG", " ")]), false), "info");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(!colour(false, None), "a pipe or a file");
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
    }

    #[test]
    fn the_sidecar_reads_asya_log_level() {
        let asya = [("ASYA_LOG_LEVEL", "WARNING")];
        assert_eq!(filter_directives(env(&asya), true), "warn");
        assert_eq!(
            filter_directives(env(&asya), false),
            "info",
            "only the sidecar"
        );
        let both = [("ASYA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "error")];
        assert_eq!(
            filter_directives(env(&both), true),
            "error",
            "RUST_LOG wins"
        );
    }
}
