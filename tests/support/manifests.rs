//! The Kubernetes manifests under `deploy/`, read the way a cluster would get them.
//!
//! A kustomization is rendered with `kubectl kustomize` where kubectl is installed,
//! else by [`render_files`], which applies the few kustomize features `deploy/` uses
//! (resources, nameSuffix, labels with selectors, strategic-merge and JSON 6902 patches,
//! nameReference configurations) to the files themselves. Where kubectl is there, a test
//! checks that both give the same documents. Documents are JSON values, so fields are
//! read with JSON pointers.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The repository's `deploy/` directory.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The kustomizations users apply: the whole CPU pipeline and each pool on its own.
pub const KUSTOMIZATIONS: &[&str] = &[".", "gateway", "overlays/cpu-pool", "overlays/gpu-pool"];

/// Every document of a YAML stream (empty documents skipped).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, String> {
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| error.to_string())?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// Reads and parses one file.
pub fn read_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    parse_documents(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Whether `kubectl` runs here.
pub fn kubectl_available() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// How a kustomization was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    Kubectl,
    Files,
}

/// Renders the kustomization in `deploy/<dir>`: with kubectl when it is installed.
pub fn render(dir: &str) -> (Renderer, Vec<Value>) {
    let path = deploy_dir().join(dir);
    if kubectl_available() {
        (Renderer::Kubectl, render_kubectl(&path))
    } else {
        (Renderer::Files, render_files(&path))
    }
}

/// `kubectl kustomize DIR`, parsed.
pub fn render_kubectl(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_documents(&String::from_utf8_lossy(&output.stdout))
        .unwrap_or_else(|error| panic!("kubectl kustomize {}: {error}", dir.display()))
}

/// A reference kustomize rewrites when the referenced resource is renamed.
struct NameReference {
    kind: String,
    field_specs: Vec<(String, String)>,
}

/// Renders a kustomization from its files, with the features `deploy/` uses.
pub fn render_files(dir: &Path) -> Vec<Value> {
    render_with_references(dir).0
}

/// The documents, and the name references of this kustomization and its bases (kustomize
/// carries a base's `configurations` up to the overlays).
fn render_with_references(dir: &Path) -> (Vec<Value>, Vec<NameReference>) {
    let kustomization = read_documents(&dir.join("kustomization.yaml"))
        .pop()
        .unwrap_or_else(|| panic!("{}/kustomization.yaml is empty", dir.display()));
    let strings = |key: &str| -> Vec<String> {
        kustomization[key]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|item| item.as_str().expect("a string").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut documents = Vec::new();
    let mut references = Vec::new();
    for resource in strings("resources") {
        let path = dir.join(&resource);
        if path.is_dir() {
            let (rendered, inherited) = render_with_references(&path);
            documents.extend(rendered);
            references.extend(inherited);
        } else {
            documents.extend(read_documents(&path));
        }
    }
    for patch in kustomization["patches"].as_array().into_iter().flatten() {
        let body = match (patch["path"].as_str(), patch["patch"].as_str()) {
            (Some(path), _) => read_documents(&dir.join(path)),
            (None, Some(inline)) => vec![Value::Array(
                parse_documents(inline)
                    .expect("an inline patch parses")
                    .into_iter()
                    .flat_map(|ops| ops.as_array().cloned().unwrap_or_default())
                    .collect(),
            )],
            _ => panic!("a patch without path or patch in {}", dir.display()),
        };
        for body in body {
            match &body {
                Value::Array(operations) => {
                    for document in documents
                        .iter_mut()
                        .filter(|document| matches_target(document, &patch["target"]))
                    {
                        apply_json6902(document, operations);
                    }
                }
                _ => {
                    let target = json!({"kind": body["kind"], "name": body["metadata"]["name"]});
                    let target = if patch["target"].is_object() {
                        &patch["target"]
                    } else {
                        &target
                    };
                    for document in documents
                        .iter_mut()
                        .filter(|document| matches_target(document, target))
                    {
                        strategic_merge(document, &body);
                    }
                }
            }
        }
    }
    for file in strings("configurations") {
        let config = read_documents(&dir.join(file)).pop().unwrap_or_default();
        for reference in config["nameReference"].as_array().into_iter().flatten() {
            references.push(NameReference {
                kind: reference["kind"].as_str().unwrap_or_default().to_owned(),
                field_specs: reference["fieldSpecs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|spec| {
                        (
                            spec["kind"].as_str().unwrap_or_default().to_owned(),
                            spec["path"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    if let Some(suffix) = kustomization["nameSuffix"].as_str() {
        // References follow the resources they name, where those are rendered here.
        let named = |kind: &str| -> Vec<String> {
            of_kind(&documents, kind)
                .iter()
                .filter_map(|document| document["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        };
        let renamed: Vec<(Vec<String>, &NameReference)> = references
            .iter()
            .map(|reference| (named(&reference.kind), reference))
            .collect();
        for document in &mut documents {
            let name = format!("{}{suffix}", document["metadata"]["name"].as_str().unwrap());
            document["metadata"]["name"] = Value::String(name);
        }
        for (names, reference) in renamed {
            for document in &mut documents {
                for (kind, path) in &reference.field_specs {
                    if document["kind"] == kind.as_str() {
                        let segments: Vec<&str> = path.split('/').collect();
                        suffix_at(document, &segments, suffix, &names);
                    }
                }
            }
        }
    }
    for label in kustomization["labels"].as_array().into_iter().flatten() {
        let pairs = label["pairs"].as_object().cloned().unwrap_or_default();
        let selectors = label["includeSelectors"] == true;
        for document in &mut documents {
            add_labels(document, "/metadata/labels", &pairs);
            if selectors {
                match document["kind"].as_str() {
                    Some("Deployment") => {
                        add_labels(document, "/spec/selector/matchLabels", &pairs);
                        add_labels(document, "/spec/template/metadata/labels", &pairs);
                    }
                    Some("PodDisruptionBudget") => {
                        add_labels(document, "/spec/selector/matchLabels", &pairs);
                    }
                    Some("Service") => add_labels(document, "/spec/selector", &pairs),
                    _ => {}
                }
            }
        }
    }
    (documents, references)
}

fn matches_target(document: &Value, target: &Value) -> bool {
    let field = |key: &str| target[key].as_str();
    field("kind").is_none_or(|kind| document["kind"] == kind)
        && field("name").is_none_or(|name| document["metadata"]["name"] == name)
        && field("group").is_none_or(|group| {
            document["apiVersion"]
                .as_str()
                .is_some_and(|api| api.starts_with(&format!("{group}/")))
        })
}

/// `replace` and `add` operations of a JSON patch (the ones `deploy/` uses).
fn apply_json6902(document: &mut Value, operations: &[Value]) {
    for operation in operations {
        let path = operation["path"].as_str().expect("a patch path");
        let (parent, key) = path.rsplit_once('/').expect("a pointer");
        let value = operation["value"].clone();
        let parent = document
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent} to patch"));
        match (operation["op"].as_str(), parent) {
            (Some("replace" | "add"), Value::Object(map)) => {
                map.insert(key.to_owned(), value);
            }
            (Some("replace"), Value::Array(list)) => {
                list[key.parse::<usize>().expect("an index")] = value;
            }
            (op, _) => panic!("patch operation {op:?} at {path} is not supported here"),
        }
    }
}

/// Kubernetes' strategic merge, as far as `deploy/` needs it: maps merge, lists of
/// named items merge by name (patch items first, as kustomize orders them), other
/// lists are replaced.
fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                match target.get_mut(key) {
                    Some(existing) => strategic_merge(existing, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(target), Value::Array(patch))
            if patch.iter().all(|item| item["name"].is_string())
                && target.iter().all(|item| item["name"].is_string()) =>
        {
            let mut merged = Vec::new();
            for item in patch {
                let mut item = item.clone();
                if let Some(existing) = target.iter().find(|old| old["name"] == item["name"]) {
                    let mut base = existing.clone();
                    strategic_merge(&mut base, &item);
                    item = base;
                }
                merged.push(item);
            }
            for item in target.iter() {
                if !patch.iter().any(|new| new["name"] == item["name"]) {
                    merged.push(item.clone());
                }
            }
            *target = merged;
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn suffix_at(value: &mut Value, path: &[&str], suffix: &str, names: &[String]) {
    match (value, path) {
        (Value::String(name), []) if names.contains(name) => name.push_str(suffix),
        (Value::Array(items), path) => {
            for item in items {
                suffix_at(item, path, suffix, names);
            }
        }
        (Value::Object(map), [first, rest @ ..]) => {
            if let Some(inner) = map.get_mut(*first) {
                suffix_at(inner, rest, suffix, names);
            }
        }
        _ => {}
    }
}

fn add_labels(document: &mut Value, pointer: &str, pairs: &Map<String, Value>) {
    let mut current = &mut *document;
    for segment in pointer.split('/').skip(1) {
        if !current.is_object() {
            return;
        }
        current = current
            .as_object_mut()
            .unwrap()
            .entry(segment)
            .or_insert_with(|| json!({}));
    }
    if let Value::Object(labels) = current {
        for (key, value) in pairs {
            labels.insert(key.clone(), value.clone());
        }
    }
}

/// Lists of named items sorted by name, so two renderings compare by content.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), canonical(value)))
                .collect(),
        ),
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(canonical).collect();
            if items.iter().all(|item| item["name"].is_string()) {
                items.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            }
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// The documents of one kind.
pub fn of_kind<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents
        .iter()
        .filter(|document| document["kind"] == kind)
        .collect()
}

/// A container's environment: the literal values (those from Secrets are left out).
pub fn literal_env(container: &Value) -> Vec<(String, String)> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|var| {
            Some((
                var["name"].as_str()?.to_owned(),
                var["value"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// One variable of a container's literal environment.
pub fn env_value(container: &Value, name: &str) -> Option<String> {
    literal_env(container)
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// A pod template's container by name.
pub fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {}", deployment["metadata"]["name"]))
}

/// A KEDA-scaled pool: the Deployment, its ScaledObject and what the node serves.
pub struct Pool<'a> {
    pub deployment: &'a Value,
    pub scaled_object: &'a Value,
    /// The node container (`wasya`).
    pub node: &'a Value,
}

impl<'a> Pool<'a> {
    /// Every pool in a rendering: each Deployment a ScaledObject targets.
    pub fn all(documents: &'a [Value]) -> Vec<Pool<'a>> {
        of_kind(documents, "ScaledObject")
            .into_iter()
            .map(|scaled_object| {
                let target = &scaled_object["spec"]["scaleTargetRef"]["name"];
                let deployment = of_kind(documents, "Deployment")
                    .into_iter()
                    .find(|deployment| deployment["metadata"]["name"] == *target)
                    .unwrap_or_else(|| {
                        panic!(
                            "ScaledObject {} targets {target}, which is not rendered",
                            scaled_object["metadata"]["name"]
                        )
                    });
                Pool {
                    deployment,
                    scaled_object,
                    node: container(deployment, "wasya"),
                }
            })
            .collect()
    }

    pub fn name(&self) -> &str {
        self.deployment["metadata"]["name"].as_str().unwrap()
    }

    /// The actors the node serves: WASYA_SERVE's wasm actors and the socket actors.
    pub fn actors(&self) -> Vec<String> {
        let mut actors: Vec<String> = env_value(self.node, "WASYA_SERVE")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty() && *name != "none")
            .map(str::to_owned)
            .collect();
        actors.extend(self.socket_actors().into_iter().map(|(name, _)| name));
        actors
    }

    /// WASYA_SOCKET_ACTORS as (name, socket path).
    pub fn socket_actors(&self) -> Vec<(String, String)> {
        key_values(&env_value(self.node, "WASYA_SOCKET_ACTORS").unwrap_or_default())
    }

    /// The queue of an actor (WASYA_QUEUE_PREFIX, default `asya-`).
    pub fn queue_of(&self, actor: &str) -> String {
        let prefix = env_value(self.node, "WASYA_QUEUE_PREFIX").unwrap_or_else(|| "asya-".into());
        format!("{prefix}{actor}")
    }

    /// The (only) rabbitmq trigger.
    pub fn trigger(&self) -> &'a Value {
        let triggers = self.scaled_object["spec"]["triggers"]
            .as_array()
            .expect("triggers");
        assert_eq!(triggers.len(), 1, "{}: one trigger", self.name());
        &triggers[0]
    }

    /// A trigger metadata field (KEDA takes them as strings).
    pub fn trigger_field(&self, key: &str) -> Option<&'a str> {
        self.trigger()["metadata"][key].as_str()
    }

    /// A ScaledObject spec field in whole seconds or counts.
    pub fn spec_number(&self, key: &str) -> Option<u64> {
        self.scaled_object["spec"][key].as_u64()
    }
}

/// `a=1,b=2` as pairs.
pub fn key_values(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (key, value) = item.split_once('=').expect("NAME=VALUE");
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect()
}

/// A duration as the node parses it (`30s`, `5m`).
pub fn duration(text: &str) -> Duration {
    wasya::units::parse_duration(text).unwrap_or_else(|error| panic!("{error}"))
}
