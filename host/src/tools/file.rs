//! Reading a tools file: Asya gateway's `routes.yaml`, strictly.

use super::schema::Parameter;
use super::{Tool, Tools};
use crate::records::validate_name;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a call waits for its pipeline when neither the tool nor the file's
/// `defaults` say (Asya's gateway default).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a tools file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("cannot read the tools file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the tools file {path} is not valid")]
    Invalid {
        path: PathBuf,
        #[source]
        source: ToolsFileError,
    },
}

/// What is wrong inside a tools file.
#[derive(Debug, thiserror::Error)]
pub enum ToolsFileError {
    #[error(transparent)]
    Yaml(#[from] serde_norway::Error),
    #[error("tool #{0} has no name")]
    Unnamed(usize),
    #[error("tool `{0}` is declared twice")]
    Duplicate(String),
    #[error("tool `{tool}`: the route is empty")]
    EmptyRoute { tool: String },
    #[error("tool `{tool}`: no route named `{route}` in `routes`")]
    UnknownRoute { tool: String, route: String },
    #[error("tool `{tool}`: {reason}")]
    InvalidActor { tool: String, reason: String },
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    routes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    tools: Vec<RawTool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    progress: Option<bool>,
    /// Seconds.
    timeout: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    parameters: BTreeMap<String, Parameter>,
    route: RouteRef,
    progress: Option<bool>,
    /// Seconds.
    timeout: Option<u64>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

/// A route: its actors, or the name of one in `routes`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RouteRef {
    Actors(Vec<String>),
    Named(String),
}

/// Reading tools files.
pub struct ToolsFile;

impl ToolsFile {
    /// Reads and checks the tools file at `path`.
    pub fn load(path: &Path) -> Result<Tools, ToolsError> {
        let text = std::fs::read_to_string(path).map_err(|source| ToolsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|source| ToolsError::Invalid {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads and checks the text of a tools file.
    pub fn parse(text: &str) -> Result<Tools, ToolsFileError> {
        let file: RawFile = serde_norway::from_str(text)?;
        let mut seen = BTreeSet::new();
        let mut tools = Vec::with_capacity(file.tools.len());
        for (index, raw) in file.tools.into_iter().enumerate() {
            if raw.name.trim().is_empty() {
                return Err(ToolsFileError::Unnamed(index + 1));
            }
            if !seen.insert(raw.name.clone()) {
                return Err(ToolsFileError::Duplicate(raw.name));
            }
            let route = match raw.route {
                RouteRef::Actors(actors) => actors,
                RouteRef::Named(route) => match file.routes.get(&route) {
                    Some(actors) => actors.clone(),
                    None => {
                        return Err(ToolsFileError::UnknownRoute {
                            tool: raw.name,
                            route,
                        });
                    }
                },
            };
            if route.is_empty() {
                return Err(ToolsFileError::EmptyRoute { tool: raw.name });
            }
            for actor in &route {
                validate_name(actor).map_err(|error| ToolsFileError::InvalidActor {
                    tool: raw.name.clone(),
                    reason: error.to_string(),
                })?;
            }
            let seconds = raw.timeout.or(file.defaults.timeout);
            tools.push(Tool {
                name: raw.name,
                description: raw.description,
                parameters: raw.parameters,
                route,
                timeout: seconds.map_or(DEFAULT_TOOL_TIMEOUT, Duration::from_secs),
                progress: raw.progress.or(file.defaults.progress).unwrap_or(true),
                metadata: raw.metadata,
            });
        }
        Ok(Tools::new(tools))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASYA_EXAMPLE: &str = r#"
defaults:
  progress: false
  timeout: 120
routes:
  text-pipeline: [prep, summarize]
tools:
- name: process_document
  description: Process a document
  parameters:
    document: {type: string, description: The text, required: true}
    format: {type: string, options: [pdf, txt], default: txt}
  route: text-pipeline
  metadata: {category: nlp}
- name: shout
  description: Upper-cases a text
  parameters:
    text: {type: string, required: true}
  route: [upper]
  progress: true
  timeout: 5
"#;

    #[test]
    fn reads_asya_gateway_routes_as_they_are() {
        let tools = ToolsFile::parse(ASYA_EXAMPLE).expect("valid");
        assert_eq!(tools.len(), 2);
        let document = tools.get("process_document").expect("declared");
        assert_eq!(document.route, vec!["prep", "summarize"]);
        assert_eq!(document.timeout, Duration::from_secs(120));
        assert!(!document.progress);
        assert_eq!(document.metadata["category"], "nlp");
        let shout = tools.get("shout").expect("declared");
        assert_eq!(shout.route, vec!["upper"]);
        assert_eq!(shout.timeout, Duration::from_secs(5));
        assert!(shout.progress);
    }

    #[test]
    fn refuses_what_would_fail_a_caller_later() {
        let unknown_field = "tools:\n- name: a\n  route: [x]\n  retries: 3\n";
        assert!(matches!(
            ToolsFile::parse(unknown_field),
            Err(ToolsFileError::Yaml(_))
        ));
        let unknown_route = "tools:\n- name: a\n  route: missing\n";
        assert!(matches!(
            ToolsFile::parse(unknown_route),
            Err(ToolsFileError::UnknownRoute { .. })
        ));
        let twice = "tools:\n- name: a\n  route: [x]\n- name: a\n  route: [y]\n";
        assert!(matches!(
            ToolsFile::parse(twice),
            Err(ToolsFileError::Duplicate(_))
        ));
        let bad_actor = "tools:\n- name: a\n  route: [\"no spaces\"]\n";
        assert!(matches!(
            ToolsFile::parse(bad_actor),
            Err(ToolsFileError::InvalidActor { .. })
        ));
        let empty = "tools:\n- name: a\n  route: []\n";
        assert!(matches!(
            ToolsFile::parse(empty),
            Err(ToolsFileError::EmptyRoute { .. })
        ));
    }
}
