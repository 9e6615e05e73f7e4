//! Pipelines as tools: the tools a node offers (over MCP and Asya's `POST /tools/call`),
//! read from a file the user gives (`--tools FILE`).
//!
//! The file is Asya gateway's `routes.yaml`, accepted as is: `tools` (each with a name,
//! a description, parameters and a route), optional `routes` (named routes a tool may
//! refer to) and `defaults` (`timeout`, `progress`). It is read strictly (an unknown
//! field is an error, as Asya's gateway reads it), and checked whole at start, so a
//! typo in a route or a parameter stops the node with the line to fix rather than
//! failing a caller later. A call's arguments are checked against the parameters and
//! completed with their defaults ([`schema`]) before the envelope is built.

pub mod file;
pub mod schema;

pub use file::ToolsFile;
pub use schema::{ArgumentError, Parameter};

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One tool: a route and what its payload holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: BTreeMap<String, Parameter>,
    /// The actors a call's envelope goes through.
    pub route: Vec<String>,
    /// How long a call waits for the pipeline's end before it answers with the
    /// envelope's id instead.
    pub timeout: Duration,
    /// Whether callers are sent progress while the pipeline runs.
    pub progress: bool,
    /// Strings the tool's answers carry along (Asya's `metadata`).
    pub metadata: BTreeMap<String, String>,
}

impl Tool {
    /// The JSON schema of the tool's arguments.
    pub fn input_schema(&self) -> Map<String, Value> {
        schema::object_schema(&self.parameters)
    }

    /// The payload of a call: the arguments, checked and completed with defaults.
    pub fn payload(&self, arguments: Map<String, Value>) -> Result<Value, ArgumentError> {
        schema::complete(&self.parameters, arguments).map(Value::Object)
    }
}

/// The tools of a node, by name.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    tools: Arc<BTreeMap<String, Tool>>,
}

impl Tools {
    pub fn new(tools: impl IntoIterator<Item = Tool>) -> Self {
        Tools {
            tools: Arc::new(
                tools
                    .into_iter()
                    .map(|tool| (tool.name.clone(), tool))
                    .collect(),
            ),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Tool> {
        self.tools.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tool> {
        self.tools.values()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn len(&self) -> usize {
        self.tools.len()
    }
}
