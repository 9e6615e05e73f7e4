//! A tool's parameters: as the tools file declares them, as the JSON schema clients
//! read, and as a call's arguments are checked against them.
//!
//! The parameter forms are Asya's (`type`, `description`, `required`, `default`,
//! `options` for an enum, `items` for arrays, `properties` for objects); the schema is
//! the JSON-schema subset MCP clients read. A call is checked for what a pipeline
//! cannot check for itself: a required argument missing, an argument of the wrong JSON
//! type, a value outside `options`. Unknown arguments pass through to the payload, as
//! they do on Asya's gateway.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The JSON type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParameterType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
}

impl ParameterType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParameterType::String => "string",
            ParameterType::Number => "number",
            ParameterType::Integer => "integer",
            ParameterType::Boolean => "boolean",
            ParameterType::Array => "array",
            ParameterType::Object => "object",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match self {
            ParameterType::String => value.is_string(),
            ParameterType::Number => value.is_number(),
            ParameterType::Integer => value.is_i64() || value.is_u64(),
            ParameterType::Boolean => value.is_boolean(),
            ParameterType::Array => value.is_array(),
            ParameterType::Object => value.is_object(),
        }
    }
}

/// One parameter of a tool, as the tools file declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    #[serde(rename = "type")]
    pub kind: ParameterType,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    /// The values allowed (a JSON-schema `enum`).
    #[serde(default)]
    pub options: Option<Vec<Value>>,
    /// Arrays: the schema of each item.
    #[serde(default)]
    pub items: Option<Box<Parameter>>,
    /// Objects: the schema of each field.
    #[serde(default)]
    pub properties: Option<BTreeMap<String, Parameter>>,
}

/// Why a call's arguments were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArgumentError {
    #[error("missing required parameter: {0}")]
    Missing(String),
    #[error("parameter `{name}` must be of type {expected}, not {found}")]
    WrongType {
        name: String,
        expected: &'static str,
        /// The value given, as JSON text.
        found: String,
    },
    #[error("parameter `{name}` must be one of {allowed}, not {found}")]
    NotAnOption {
        name: String,
        /// The values allowed and the one given, as JSON text.
        allowed: String,
        found: String,
    },
}

/// The JSON schema of one parameter.
pub fn parameter_schema(parameter: &Parameter) -> Value {
    let mut schema = Map::new();
    schema.insert("type".into(), json!(parameter.kind.as_str()));
    if let Some(description) = &parameter.description {
        schema.insert("description".into(), json!(description));
    }
    if let Some(default) = &parameter.default {
        schema.insert("default".into(), default.clone());
    }
    if let Some(options) = &parameter.options {
        schema.insert("enum".into(), json!(options));
    }
    if let Some(items) = &parameter.items {
        schema.insert("items".into(), parameter_schema(items));
    }
    if let Some(properties) = &parameter.properties {
        return Value::Object(
            object_schema(properties)
                .into_iter()
                .chain(schema.into_iter().filter(|(key, _)| key != "type"))
                .collect(),
        );
    }
    Value::Object(schema)
}

/// The JSON schema of an object with these parameters.
pub fn object_schema(parameters: &BTreeMap<String, Parameter>) -> Map<String, Value> {
    let properties: Map<String, Value> = parameters
        .iter()
        .map(|(name, parameter)| (name.clone(), parameter_schema(parameter)))
        .collect();
    let required: Vec<&String> = parameters
        .iter()
        .filter(|(_, parameter)| parameter.required)
        .map(|(name, _)| name)
        .collect();
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    schema
}

/// The arguments checked against the parameters, with defaults filled in.
pub fn complete(
    parameters: &BTreeMap<String, Parameter>,
    mut arguments: Map<String, Value>,
) -> Result<Map<String, Value>, ArgumentError> {
    for (name, parameter) in parameters {
        match arguments.get(name) {
            None | Some(Value::Null) => {
                if let Some(default) = &parameter.default {
                    arguments.insert(name.clone(), default.clone());
                } else if parameter.required {
                    return Err(ArgumentError::Missing(name.clone()));
                }
            }
            Some(value) => check(name, parameter, value)?,
        }
    }
    Ok(arguments)
}

fn check(name: &str, parameter: &Parameter, value: &Value) -> Result<(), ArgumentError> {
    if !parameter.kind.admits(value) {
        return Err(ArgumentError::WrongType {
            name: name.to_owned(),
            expected: parameter.kind.as_str(),
            found: crate::envelope::limits::echo(&value.to_string()),
        });
    }
    if let Some(options) = &parameter.options
        && !options.contains(value)
    {
        return Err(ArgumentError::NotAnOption {
            name: name.to_owned(),
            allowed: crate::envelope::limits::echo(&json!(options).to_string()),
            found: crate::envelope::limits::echo(&value.to_string()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameters(yaml: &str) -> BTreeMap<String, Parameter> {
        serde_norway::from_str(yaml).expect("parameters")
    }

    #[test]
    fn the_schema_says_types_defaults_options_and_what_is_required() {
        let schema = object_schema(&parameters(
            "text: {type: string, description: What to say, required: true}\n\
             format: {type: string, options: [txt, md], default: txt}\n\
             tags: {type: array, items: {type: string}}\n",
        ));
        assert_eq!(
            Value::Object(schema),
            json!({
                "type": "object",
                "properties": {
                    "format": {"type": "string", "default": "txt", "enum": ["txt", "md"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "text": {"type": "string", "description": "What to say"},
                },
                "required": ["text"],
            })
        );
    }

    #[test]
    fn defaults_fill_in_and_required_ones_are_checked() {
        let declared = parameters(
            "text: {type: string, required: true}\ntimes: {type: integer, default: 2}\n",
        );
        let args = json!({"text": "hi", "extra": true});
        let done =
            complete(&declared, args.as_object().cloned().unwrap_or_default()).expect("complete");
        assert_eq!(
            Value::Object(done),
            json!({"text": "hi", "extra": true, "times": 2})
        );
        assert_eq!(
            complete(&declared, Map::new()),
            Err(ArgumentError::Missing("text".into()))
        );
    }

    #[test]
    fn a_wrong_type_or_option_is_refused_with_its_name() {
        let declared =
            parameters("n: {type: integer}\nformat: {type: string, options: [txt, md]}\n");
        let wrong = complete(
            &declared,
            json!({"n": "3"}).as_object().cloned().unwrap_or_default(),
        );
        assert!(
            matches!(&wrong, Err(ArgumentError::WrongType { name, .. }) if name == "n"),
            "{wrong:?}"
        );
        let outside = complete(
            &declared,
            json!({"format": "pdf"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        assert!(
            matches!(&outside, Err(ArgumentError::NotAnOption { name, .. }) if name == "format"),
            "{outside:?}"
        );
    }
}
