//! The Kubernetes manifests under `deploy/`: every file parses, every kustomization
//! renders, each pool is wired to the node it runs (ports, probes, grace periods, queue
//! regex), the Secrets it reads are in the example, built-in kinds validate against
//! Kubernetes' schemas, and the image builds with the repository's toolchain file.

use crate::support::manifests::{
    self, KUSTOMIZATIONS, Pool, Renderer, canonical, container, deploy_dir, duration, env_value,
    of_kind, read_documents, render,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Every YAML file under `dir`.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every kustomization rendered, by its directory.
fn renderings() -> Vec<(&'static str, Vec<Value>)> {
    let mut how = None;
    let rendered = KUSTOMIZATIONS
        .iter()
        .map(|dir| {
            let (renderer, documents) = render(dir);
            how = Some(renderer);
            assert!(!documents.is_empty(), "deploy/{dir} renders nothing");
            (*dir, documents)
        })
        .collect();
    if how == Some(Renderer::Files) {
        eprintln!("kubectl is not installed: kustomizations rendered from the files");
    }
    rendered
}

/// The example actors bundled into the node.
fn bundled_actors() -> Vec<String> {
    wasya::bundled::BUNDLED_ACTORS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect()
}

#[test]
fn every_manifest_parses() {
    let files = yaml_files(&deploy_dir());
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let documents = read_documents(&file);
        assert!(!documents.is_empty(), "{} is empty", file.display());
        for document in &documents {
            assert!(document.is_object(), "{}: not a mapping", file.display());
            if file.file_name().unwrap() == "kustomizeconfig.yaml" {
                continue;
            }
            assert!(
                document["apiVersion"].is_string() && document["kind"].is_string(),
                "{}: no apiVersion or kind",
                file.display()
            );
            if document["kind"] != "Kustomization" {
                assert!(
                    document["metadata"]["name"].is_string(),
                    "{}: a {} without a name",
                    file.display(),
                    document["kind"]
                );
            }
        }
    }
}

#[test]
fn the_file_renderer_agrees_with_kubectl() {
    if !manifests::kubectl_available() {
        eprintln!("SKIPPED: kubectl is not installed; nothing to compare the file renderer with");
        return;
    }
    for dir in KUSTOMIZATIONS {
        let path = deploy_dir().join(dir);
        let sorted = |documents: Vec<Value>| {
            let mut documents: Vec<Value> = documents.iter().map(canonical).collect();
            documents.sort_by_key(|document| {
                format!("{}/{}", document["kind"], document["metadata"]["name"])
            });
            documents
        };
        let kubectl = sorted(manifests::render_kubectl(&path));
        let files = sorted(manifests::render_files(&path));
        assert_eq!(kubectl.len(), files.len(), "deploy/{dir}: document counts");
        for (by_kubectl, by_files) in kubectl.iter().zip(&files) {
            assert_eq!(
                by_kubectl, by_files,
                "deploy/{dir}: kubectl kustomize and the file renderer differ"
            );
        }
    }
}

/// The port a probe or Service names: a number, or a container port's name.
fn resolve_port(container: &Value, port: &Value) -> u64 {
    match port {
        Value::Number(number) => number.as_u64().unwrap(),
        Value::String(name) => container["ports"]
            .as_array()
            .and_then(|ports| ports.iter().find(|p| p["name"] == name.as_str()))
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port named {name}")),
        other => panic!("port {other}"),
    }
}

/// The checks every node container passes, pool or gateway.
fn check_node(deployment: &Value) {
    let name = &deployment["metadata"]["name"];
    let pod = &deployment["spec"]["template"]["spec"];
    let node = container(deployment, "wasya");
    let listen = env_value(node, "WASYA_LISTEN").expect("WASYA_LISTEN is set");
    let listen: std::net::SocketAddr = listen.parse().expect("WASYA_LISTEN is an address");
    assert!(
        listen.ip().is_unspecified(),
        "{name}: the node listens on {listen}, which kubelet probes cannot reach"
    );
    let port = u64::from(listen.port());
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let get = &node[probe]["httpGet"];
        assert_eq!(get["path"], path, "{name}: {probe} path");
        assert_eq!(
            resolve_port(node, &get["port"]),
            port,
            "{name}: {probe} port is not the node's"
        );
    }
    // A non-loopback address needs a token (the node refuses to start without one).
    let token = node["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|var| var["name"] == "WASYA_TOKEN" || var["name"] == "WASYA_TOKEN_FILE");
    assert!(
        token,
        "{name}: no WASYA_TOKEN, so the node would refuse to listen"
    );
    assert!(
        env_value(node, "WASYA_AMQP_URL").is_none(),
        "{name}: the broker URL is literal; it comes from a Secret"
    );

    // Grace: the longest actor call fits in the node's grace period, and the preStop
    // pause plus that grace period fit in the pod's.
    let timeout = duration(&env_value(node, "WASYA_TIMEOUT").unwrap_or_else(|| "30s".into()));
    let longest =
        manifests::key_values(&env_value(node, "WASYA_ACTOR_TIMEOUT").unwrap_or_default())
            .into_iter()
            .map(|(_, value)| duration(&value))
            .chain([timeout])
            .max()
            .unwrap();
    let grace = duration(&env_value(node, "WASYA_GRACE_PERIOD").unwrap_or_else(|| "30s".into()));
    assert!(
        grace > longest,
        "{name}: grace period {grace:?} is not above the longest actor timeout {longest:?}"
    );
    let pre_stop = Duration::from_secs(
        node["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: the node's preStop is a sleep")),
    );
    let termination = Duration::from_secs(
        pod["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: terminationGracePeriodSeconds is set")),
    );
    assert!(
        pre_stop + grace < termination,
        "{name}: preStop {pre_stop:?} + grace {grace:?} is not below terminationGracePeriodSeconds {termination:?}"
    );
    assert!(
        termination > longest,
        "{name}: terminationGracePeriodSeconds is not above the longest timeout"
    );
    // Memory and CPU are requested; the data directory is writable.
    assert!(
        node["resources"]["requests"]["cpu"].is_string()
            && node["resources"]["requests"]["memory"].is_string()
            && node["resources"]["limits"]["memory"].is_string(),
        "{name}: resources"
    );
    let data = env_value(node, "WASYA_DATA_DIR").expect("WASYA_DATA_DIR");
    assert!(
        node["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|mount| mount["mountPath"] == data.as_str()),
        "{name}: {data} is not a mounted volume (the root filesystem is read-only)"
    );
}

/// The pool's wiring to KEDA, and its actors to its queue regex.
fn check_pool(pool: &Pool, documents: &[Value], every_actor: &BTreeSet<String>) {
    let name = pool.name();
    let spec = &pool.scaled_object["spec"];
    assert!(
        pool.deployment["spec"]["replicas"].is_null(),
        "{name}: replicas set in the Deployment would fight KEDA on every apply"
    );
    assert_eq!(spec["minReplicaCount"], 0, "{name}: scales to zero");
    let max = spec["maxReplicaCount"].as_u64().expect("maxReplicaCount");
    assert!(max > 1, "{name}: maxReplicaCount {max}");
    for key in ["pollingInterval", "cooldownPeriod", "initialCooldownPeriod"] {
        assert!(spec[key].as_u64().is_some_and(|n| n > 0), "{name}: {key}");
    }
    let trigger = pool.trigger();
    assert_eq!(trigger["type"], "rabbitmq", "{name}");
    for (key, value) in [
        ("protocol", "http"),
        ("mode", "QueueLength"),
        ("useRegex", "true"),
        ("operation", "sum"),
    ] {
        assert_eq!(
            pool.trigger_field(key),
            Some(value),
            "{name}: trigger {key}"
        );
    }
    let target: f64 = pool
        .trigger_field("value")
        .and_then(|value| value.parse().ok())
        .expect("a numeric value");
    assert!(target > 0.0, "{name}: value");
    if let Some(activation) = pool.trigger_field("activationValue") {
        let _: f64 = activation.parse().expect("a numeric activationValue");
    }
    for forbidden in ["host", "hostFromEnv", "username", "password"] {
        assert!(
            trigger["metadata"][forbidden].is_null(),
            "{name}: {forbidden} in the trigger; credentials come from the TriggerAuthentication"
        );
    }
    let auth_name = &trigger["authenticationRef"]["name"];
    let auth = of_kind(documents, "TriggerAuthentication")
        .into_iter()
        .find(|auth| auth["metadata"]["name"] == *auth_name)
        .unwrap_or_else(|| panic!("{name}: TriggerAuthentication {auth_name} is not rendered"));
    assert!(
        auth["spec"]["secretTargetRef"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|target| target["parameter"] == "host"),
        "{name}: the TriggerAuthentication gives no host"
    );

    // The regex selects exactly the queues of the pool's actors.
    let actors = pool.actors();
    assert!(!actors.is_empty(), "{name}: serves no actor");
    // What the pool hosts from the shared store is what it scales on.
    let hosts = env_value(pool.node, "WASYA_HOSTS").expect("WASYA_HOSTS is set");
    let mut hosted: Vec<&str> = hosts.split(',').map(str::trim).collect();
    let mut served: Vec<&str> = actors.iter().map(String::as_str).collect();
    hosted.sort_unstable();
    served.sort_unstable();
    assert_eq!(
        hosted, served,
        "{name}: WASYA_HOSTS against the served actors"
    );
    let regex = pool.trigger_field("queueName").expect("queueName");
    let regex = regex::Regex::new(regex).expect("queueName is a regex");
    for actor in every_actor {
        let queue = pool.queue_of(actor);
        assert_eq!(
            regex.is_match(&queue),
            actors.contains(actor),
            "{name}: queue regex {regex} on {queue} (the pool serves {actors:?})"
        );
        let dead_letters = format!("{queue}-dlq");
        assert!(
            !regex.is_match(&dead_letters),
            "{name}: queue regex {regex} matches {dead_letters}"
        );
    }
    for queue in [
        "asya-x-dlq",
        "asya-happy-end",
        "asya-error-end",
        "asya-",
        "",
    ] {
        assert!(!regex.is_match(queue), "{name}: regex matches {queue:?}");
    }

    // Wasm actors the pool serves are bundled; socket actors have their runtime.
    let bundled = bundled_actors();
    let sockets = pool.socket_actors();
    for actor in &actors {
        assert!(
            bundled.contains(actor) || sockets.iter().any(|(socket, _)| socket == actor),
            "{name}: {actor} is neither bundled nor a socket actor"
        );
    }
    for (actor, socket) in sockets {
        check_socket_runtime(pool, &actor, &socket);
    }
}

/// A socket actor's runtime container shares the socket's directory with the node and
/// listens there; it has the GPU.
fn check_socket_runtime(pool: &Pool, actor: &str, socket: &str) {
    let name = pool.name();
    let runtime = container(pool.deployment, "runtime");
    let (dir, file) = socket.rsplit_once('/').expect("an absolute socket path");
    let volume_at = |container: &Value| {
        container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|mount| mount["mountPath"] == dir)
            .map(|mount| mount["name"].clone())
    };
    let volume = volume_at(pool.node).unwrap_or_else(|| panic!("{name}: node has no {dir}"));
    assert_eq!(
        volume_at(runtime),
        Some(volume.clone()),
        "{name}: node and runtime do not share {dir}"
    );
    let volumes = &pool.deployment["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == volume && v["emptyDir"].is_object()),
        "{name}: {volume} is not an emptyDir"
    );
    assert_eq!(
        env_value(runtime, "ASYA_SOCKET_DIR").as_deref(),
        Some(dir),
        "{name}: the runtime of {actor} listens elsewhere"
    );
    assert_eq!(
        env_value(runtime, "ASYA_SOCKET_NAME").unwrap_or_else(|| "asya-runtime.sock".into()),
        file,
        "{name}: socket name of {actor}"
    );
    assert_eq!(
        runtime["resources"]["limits"]["nvidia.com/gpu"], 1,
        "{name}: the runtime has the GPU"
    );
    assert!(
        pool.node["resources"]["limits"]["nvidia.com/gpu"].is_null(),
        "{name}: the node needs no GPU"
    );
    assert!(
        runtime["lifecycle"]["preStop"].is_object()
            && pool.deployment["spec"]["template"]["spec"]["shareProcessNamespace"] == true,
        "{name}: the runtime must outlive the node's drain"
    );
}

#[test]
fn pools_and_gateway_are_wired_to_the_node() {
    // Every actor anyone serves, and the bundled ones: each pool's regex is checked
    // against all of their queues.
    let rendered = renderings();
    let mut every_actor: BTreeSet<String> = bundled_actors().into_iter().collect();
    for (_, documents) in &rendered {
        for pool in Pool::all(documents) {
            every_actor.extend(pool.actors());
        }
    }
    let mut pools_seen = BTreeSet::new();
    for (dir, documents) in &rendered {
        for deployment in of_kind(documents, "Deployment") {
            check_node(deployment);
        }
        for pool in Pool::all(documents) {
            check_pool(&pool, documents, &every_actor);
            pools_seen.insert(pool.name().to_owned());
        }
        check_selectors(dir, documents);
    }
    assert!(
        pools_seen.contains("wasya-cpu") && pools_seen.contains("wasya-gpu"),
        "{pools_seen:?}"
    );
    // The gateway records outcomes and serves no actor; pool nodes record none.
    let (_, top) = &rendered[0];
    let gateway = of_kind(top, "Deployment")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "wasya-gateway")
        .expect("the top-level kustomization has the gateway");
    let node = container(gateway, "wasya");
    assert_eq!(env_value(node, "WASYA_SERVE").as_deref(), Some("none"));
    assert!(env_value(node, "WASYA_NO_END_ACTORS").is_none());
    for (_, documents) in &rendered {
        for pool in Pool::all(documents) {
            assert_eq!(
                env_value(pool.node, "WASYA_NO_END_ACTORS").as_deref(),
                Some("true"),
                "{}: pool nodes leave outcomes to the gateway",
                pool.name()
            );
        }
    }
}

/// Each Service and PodDisruptionBudget selects the pods of exactly one Deployment, on
/// a port that container has.
fn check_selectors(dir: &str, documents: &[Value]) {
    let deployments = of_kind(documents, "Deployment");
    let selects = |selector: &Value, deployment: &Value| {
        let labels = &deployment["spec"]["template"]["metadata"]["labels"];
        selector
            .as_object()
            .is_some_and(|selector| selector.iter().all(|(key, value)| labels[key] == *value))
    };
    for service in of_kind(documents, "Service") {
        let selector = &service["spec"]["selector"];
        let selected: Vec<_> = deployments
            .iter()
            .filter(|deployment| selects(selector, deployment))
            .collect();
        assert_eq!(
            selected.len(),
            1,
            "deploy/{dir}: Service {} selects {} Deployments",
            service["metadata"]["name"],
            selected.len()
        );
        let node = container(selected[0], "wasya");
        for port in service["spec"]["ports"].as_array().unwrap() {
            resolve_port(node, &port["targetPort"]);
        }
    }
    for budget in of_kind(documents, "PodDisruptionBudget") {
        let selector = &budget["spec"]["selector"]["matchLabels"];
        let selected = deployments
            .iter()
            .filter(|deployment| selects(selector, deployment))
            .count();
        assert_eq!(
            selected, 1,
            "deploy/{dir}: PodDisruptionBudget {} selects {selected} Deployments",
            budget["metadata"]["name"]
        );
    }
    for deployment in &deployments {
        assert!(
            selects(&deployment["spec"]["selector"]["matchLabels"], deployment),
            "deploy/{dir}: {} does not select its own pods",
            deployment["metadata"]["name"]
        );
    }
}

/// Every (Secret, key) a rendering reads, and whether it may be missing.
fn secret_references(documents: &[Value]) -> Vec<(String, String, bool)> {
    let mut found = Vec::new();
    fn walk(value: &Value, found: &mut Vec<(String, String, bool)>) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("secretKeyRef") {
                    found.push((
                        reference["name"].as_str().unwrap().to_owned(),
                        reference["key"].as_str().unwrap().to_owned(),
                        reference["optional"] == true,
                    ));
                }
                for value in map.values() {
                    walk(value, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, found)),
            _ => {}
        }
    }
    for document in documents {
        walk(document, &mut found);
        if document["kind"] == "TriggerAuthentication" {
            for target in document["spec"]["secretTargetRef"]
                .as_array()
                .into_iter()
                .flatten()
            {
                found.push((
                    target["name"].as_str().unwrap().to_owned(),
                    target["key"].as_str().unwrap().to_owned(),
                    false,
                ));
            }
        }
        let pod = &document["spec"]["template"]["spec"];
        for volume in pod["volumes"].as_array().into_iter().flatten() {
            assert!(
                volume["secret"].is_null(),
                "secret volumes are not used by these manifests; check them here if added"
            );
        }
    }
    found
}

#[test]
fn every_secret_referenced_is_in_the_example() {
    let example = read_documents(&deploy_dir().join("secrets.example.yaml"));
    let keys_of = |name: &str| -> Vec<String> {
        example
            .iter()
            .filter(|secret| secret["kind"] == "Secret" && secret["metadata"]["name"] == name)
            .flat_map(|secret| {
                ["stringData", "data"].into_iter().flat_map(move |field| {
                    secret[field]
                        .as_object()
                        .map(|map| map.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                })
            })
            .collect()
    };
    let mut referenced = BTreeSet::new();
    for (dir, documents) in renderings() {
        for (name, key, _optional) in secret_references(&documents) {
            assert!(
                keys_of(&name).contains(&key),
                "deploy/{dir} reads key {key} of Secret {name}, which deploy/secrets.example.yaml lacks"
            );
            referenced.insert(name);
        }
    }
    for secret in &example {
        let name = secret["metadata"]["name"].as_str().unwrap();
        assert!(
            referenced.contains(name),
            "the example Secret {name} is read by no manifest"
        );
    }
    // The management URL ends in the vhost, as KEDA reads it.
    let management = example
        .iter()
        .find(|s| s["metadata"]["name"] == "wasya-rabbitmq")
        .and_then(|s| s["stringData"]["management-url"].as_str())
        .unwrap();
    assert!(management.starts_with("http"), "{management}");
    assert!(management.ends_with("/%2F"), "{management}");
}

/// The `kubernetes-validate` command: $WASYA_KUBERNETES_VALIDATE, the CI venv, or PATH.
fn validator() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("WASYA_KUBERNETES_VALIDATE").map(PathBuf::from),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ci-venv/bin/kubernetes-validate"),
        ),
        Some(PathBuf::from("kubernetes-validate")),
    ];
    candidates.into_iter().flatten().find(|candidate| {
        Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

/// The oldest Kubernetes the manifests support (the preStop `sleep` action is on by
/// default from 1.30) and a recent one.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.34.0"];

#[test]
fn built_in_kinds_validate_against_kubernetes_schemas() {
    let Some(validator) = validator() else {
        let message = "kubernetes-validate is not installed (pip install kubernetes-validate, \
                       or run .ci/run, which puts it in target/ci-venv)";
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{message}");
        }
        eprintln!("\n*** SKIPPED: {message} ***\n");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![deploy_dir().join("secrets.example.yaml")];
    for (name, documents) in renderings() {
        let file = dir
            .path()
            .join(format!("{}.yaml", name.replace(['/', '.'], "_")));
        let text: String = documents
            .iter()
            .map(|document| format!("---\n{}", serde_norway::to_string(document).unwrap()))
            .collect();
        std::fs::write(&file, text).unwrap();
        files.push(file);
    }
    for version in KUBERNETES_VERSIONS {
        let output = Command::new(&validator)
            .args(["--strict", "-k", version])
            .args(&files)
            .output()
            .expect("kubernetes-validate runs");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "manifests do not validate against Kubernetes {version}:\n{report}"
        );
        // Only KEDA's kinds may lack a schema: a built-in kind without one would pass
        // unchecked.
        for line in report.lines() {
            if line.contains("Couldn't find schema") {
                assert!(line.contains("keda.sh/"), "unchecked: {line}");
            }
        }
        assert!(
            report.contains("INFO") || report.contains("validated"),
            "{report}"
        );
    }
}

#[test]
fn the_dockerfile_builds_from_the_repository_toolchain_into_a_non_root_image() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert_eq!(
        stages.len(),
        3,
        "a build stage, the split-off debug info, and the runtime stage last"
    );
    let (build, debug_info, runtime) = (stages[0], stages[1], stages[2]);
    // The image ships a stripped binary; the debug info is a build target of its own.
    assert!(build.contains("objcopy --strip-all"), "{build}");
    assert!(build.contains("--add-gnu-debuglink"), "{build}");
    assert!(
        debug_info.starts_with("scratch AS debug-info") && debug_info.contains("wasya.debug"),
        "{debug_info}"
    );
    // The toolchain comes from rust-toolchain.toml alone.
    assert!(build.contains("COPY rust-toolchain.toml"), "{build}");
    assert!(build.contains("rustup toolchain install"), "{build}");
    assert!(build.contains("wasm32-wasip2"), "{build}");
    assert!(build.contains("--locked"), "{build}");
    for pinned in ["rustup default", "cargo +", "--toolchain"] {
        assert!(
            !build.contains(pinned),
            "the build stage pins a toolchain: {pinned}"
        );
    }
    // The runtime stage: the binary, no root.
    let user = runtime
        .lines()
        .find_map(|line| line.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "USER {user}"
    );
    let copies: Vec<&str> = runtime.lines().filter(|l| l.starts_with("COPY")).collect();
    assert!(
        copies
            .iter()
            .any(|copy| copy.contains("/usr/local/bin/wasya")),
        "{copies:?}"
    );
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/wasya\"]"));
    // The build context keeps what the build reads and leaves out build output.
    let ignored: Vec<String> = std::fs::read_to_string(root.join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "host",
        "guests",
        "wit",
        "tests",
        "runtimes",
        "examples",
    ] {
        assert!(root.join(needed).exists(), "{needed}");
        assert!(
            !ignored
                .iter()
                .any(|pattern| pattern == needed || pattern == "*"),
            ".dockerignore drops {needed}, which the build needs"
        );
    }
    for output in ["target", "guests/target", ".git"] {
        assert!(
            ignored.iter().any(|p| p == output),
            ".dockerignore keeps {output}"
        );
    }
    // The GPU runtime image copies files that exist.
    let runtime_file =
        std::fs::read_to_string(deploy_dir().join("gpu-runtime.Dockerfile")).unwrap();
    for line in runtime_file.lines().filter(|l| l.starts_with("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(root.join(source).is_file(), "{line}: {source} is missing");
        }
    }
}
