//! The scaling loop `deploy/` configures, played out on this machine with real nodes and
//! a real broker. The test takes KEDA's part, and the HPA's that KEDA drives:
//!
//! - its parameters come from the CPU pool's ScaledObject (queue regex, target queue
//!   length, activation, min/max replicas, polling interval, cooldowns, HPA behaviour),
//!   with every period divided by `WASYA_SCALING_SPEEDUP` (default 10);
//! - the metric is read as KEDA's rabbitmq scaler reads it in QueueLength mode with a
//!   regex: `GET /api/queues/{vhost}?page=1&use_regex=true&pagination=false&name=…`
//!   on the management API (the broker filters by the regex), summing `messages`
//!   (ready + unacknowledged) over the queues returned;
//! - KEDA activates the pool from zero when the metric is above `activationValue`,
//!   and deactivates it to zero once inactive for `cooldownPeriod` (or, never active,
//!   `initialCooldownPeriod` after creation); in between, the HPA sets
//!   ceil(metric / value) replicas (within its 10% tolerance), clamped to [1, max],
//!   stabilised and rate-limited by the ScaledObject's behaviour policies;
//! - a replica is a real `wasya up` with the pool Deployment's environment; scaling in
//!   pauses for its preStop, then sends SIGTERM and waits, as the kubelet would.
//!
//! Each node handles one message of an actor at a time here (WASYA_CONCURRENCY=1 instead
//! of the manifest's 8), so that one node on this small machine has a pod's share of
//! work, and a burst needs more than one.

use crate::support::manifests::{Pool, container, duration, literal_env, of_kind, render};
use crate::support::{Broker, NodeProcess};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BURST: usize = 5_000;
const IN_FLIGHT: usize = 64;
/// The work each envelope brings: `upper`, then `spin` busy for this long, then `echo`.
const ROUTE: &[&str] = &["upper", "spin", "echo"];
const SPIN_MS: u64 = 2;
/// The HPA controller's sync period (kube-controller-manager's default).
const HPA_SYNC: Duration = Duration::from_secs(15);
/// The HPA's tolerance around the target before it changes anything.
const HPA_TOLERANCE: f64 = 0.1;

fn speedup() -> f64 {
    std::env::var("WASYA_SCALING_SPEEDUP")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(10.0)
}

/// One scaling policy of the HPA behaviour.
#[derive(Debug, Clone)]
struct Policy {
    pods: bool,
    value: u32,
    period: Duration,
}

/// The HPA behaviour in one direction.
#[derive(Debug, Clone)]
struct Behavior {
    window: Duration,
    select_max: bool,
    policies: Vec<Policy>,
}

impl Behavior {
    fn read(value: &Value, default_window: Duration, scale: impl Fn(Duration) -> Duration) -> Self {
        let seconds = |value: &Value| Duration::from_secs(value.as_u64().unwrap());
        Behavior {
            window: value["stabilizationWindowSeconds"]
                .as_u64()
                .map(|s| scale(Duration::from_secs(s)))
                .unwrap_or(scale(default_window)),
            select_max: value["selectPolicy"].as_str().unwrap_or("Max") == "Max",
            policies: value["policies"]
                .as_array()
                .expect("behaviour policies (the HPA defaults are not modelled)")
                .iter()
                .map(|policy| Policy {
                    pods: policy["type"] == "Pods",
                    value: policy["value"].as_u64().unwrap() as u32,
                    period: scale(seconds(&policy["periodSeconds"])),
                })
                .collect(),
        }
    }
}

/// What KEDA and the HPA are told by the ScaledObject, periods sped up.
#[derive(Debug, Clone)]
struct Autoscaler {
    regex: String,
    target: f64,
    activation: f64,
    min: u32,
    max: u32,
    polling: Duration,
    cooldown: Duration,
    initial_cooldown: Duration,
    hpa_sync: Duration,
    up: Behavior,
    down: Behavior,
}

impl Autoscaler {
    fn from_pool(pool: &Pool, speedup: f64) -> Autoscaler {
        let scale = |period: Duration| period.div_f64(speedup);
        let spec = &pool.scaled_object["spec"];
        let seconds = |key: &str, default: u64| {
            scale(Duration::from_secs(spec[key].as_u64().unwrap_or(default)))
        };
        let behavior = &spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"];
        let number = |key: &str| -> f64 {
            pool.trigger_field(key)
                .map(|text| text.parse().expect("a number"))
                .unwrap_or(0.0)
        };
        Autoscaler {
            regex: pool.trigger_field("queueName").unwrap().to_owned(),
            target: number("value"),
            activation: number("activationValue"),
            min: spec["minReplicaCount"].as_u64().unwrap_or(0) as u32,
            max: spec["maxReplicaCount"].as_u64().unwrap_or(100) as u32,
            polling: seconds("pollingInterval", 30),
            cooldown: seconds("cooldownPeriod", 300),
            initial_cooldown: seconds("initialCooldownPeriod", 0),
            hpa_sync: scale(HPA_SYNC),
            up: Behavior::read(&behavior["scaleUp"], Duration::ZERO, scale),
            down: Behavior::read(&behavior["scaleDown"], Duration::from_secs(300), scale),
        }
    }
}

/// Go's url.QueryEscape, as KEDA escapes the queue regex.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            b' ' => "+".into(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// KEDA's rabbitmq scaler over HTTP with `useRegex`: the `host` is the management URL
/// from the TriggerAuthentication's Secret, its last path segment the vhost.
struct QueueLengthScaler {
    host: reqwest::Url,
    regex: String,
    http: reqwest::Client,
}

impl QueueLengthScaler {
    fn new(host: &str, regex: &str) -> Self {
        QueueLengthScaler {
            host: reqwest::Url::parse(host).expect("a management URL"),
            regex: regex.to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// The summed `messages` of the queues the regex selects.
    async fn messages(&self) -> Result<u64, String> {
        let mut base = self.host.clone();
        let path = base.path().to_owned();
        let (rest, vhost) = path.rsplit_once('/').unwrap_or(("", ""));
        let vhost = if vhost.is_empty() { "%2F" } else { vhost };
        let user = base.username().to_owned();
        let password = base.password().map(str::to_owned);
        base.set_path("");
        let _ = base.set_username("");
        let _ = base.set_password(None);
        let uri = format!(
            "{}{rest}/api/queues/{vhost}?page=1&use_regex=true&pagination=false&name={}&page_size=100",
            base.as_str().trim_end_matches('/'),
            query_escape(&self.regex),
        );
        let response = self
            .http
            .get(&uri)
            .basic_auth(user, password)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{uri}: {}", response.status()));
        }
        let page: Value = response.json().await.map_err(|error| error.to_string())?;
        if page["page_count"].as_u64().unwrap_or(0) > 1 {
            return Err("regex matches more queues than can be recovered at once".into());
        }
        Ok(page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|queue| queue["messages"].as_u64().unwrap_or(0))
            .sum())
    }
}

/// How a scaled-in node ended.
struct Stopped {
    status: ExitStatus,
    after_sigterm: Duration,
}

/// The pool's Deployment: replicas as real processes.
struct Deployment {
    broker: Arc<Broker>,
    env: Vec<(String, String)>,
    replicas: u32,
    running: VecDeque<NodeProcess>,
    starting: Vec<tokio::task::JoinHandle<NodeProcess>>,
    stopping: Vec<std::thread::JoinHandle<Stopped>>,
    pre_stop: Duration,
    started: usize,
}

impl Deployment {
    fn start_one(&mut self) {
        let broker = self.broker.clone();
        let env = self.env.clone();
        self.started += 1;
        self.starting.push(tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            NodeProcess::start_on_broker_with(&broker, &[], &env)
        }));
    }

    /// Pods that have started (their API listens).
    async fn settle(&mut self) {
        let mut still = Vec::new();
        for handle in self.starting.drain(..) {
            if handle.is_finished() {
                self.running.push_back(handle.await.expect("a node starts"));
            } else {
                still.push(handle);
            }
        }
        self.starting = still;
    }

    /// The live pods: started or starting.
    fn live(&self) -> usize {
        self.running.len() + self.starting.len()
    }

    /// Sets the replica count: starts pods, or stops the newest (preStop, SIGTERM).
    async fn scale(&mut self, replicas: u32) {
        self.replicas = replicas;
        while self.live() < replicas as usize {
            self.start_one();
        }
        while self.live() > replicas as usize {
            if self.running.is_empty() {
                let handle = self.starting.pop().unwrap();
                self.running.push_back(handle.await.expect("a node starts"));
            }
            let mut node = self.running.pop_back().unwrap();
            let pre_stop = self.pre_stop;
            self.stopping.push(std::thread::spawn(move || {
                std::thread::sleep(pre_stop);
                let sent = Instant::now();
                let status = node.terminate();
                Stopped {
                    status,
                    after_sigterm: sent.elapsed(),
                }
            }));
        }
    }
}

/// What the control loop shows the test while it runs.
#[derive(Default)]
struct Status {
    replicas: u32,
    live: usize,
    stopping: usize,
    peak: u32,
    metric: u64,
    log: Vec<String>,
}

/// A scale event of the HPA (for its rate limits).
struct ScaleEvent {
    at: Instant,
    change: i64,
}

/// KEDA and the HPA, one tick at a time.
struct Controller {
    autoscaler: Autoscaler,
    scaler: QueueLengthScaler,
    created: Instant,
    last_active: Option<Instant>,
    recommendations: Vec<(Instant, u32)>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
}

impl Controller {
    /// KEDA's poll: activation from zero, deactivation to zero.
    fn keda(&mut self, metric: u64, replicas: u32, now: Instant) -> Option<u32> {
        let a = &self.autoscaler;
        let active = metric as f64 > a.activation;
        if active {
            self.last_active = Some(now);
            if replicas == 0 {
                return Some(a.min.max(1));
            }
        } else if replicas > 0 && a.min == 0 {
            let idle = match self.last_active {
                None => now >= self.created + a.initial_cooldown,
                Some(last) => now >= last + a.cooldown,
            };
            if idle {
                return Some(0);
            }
        }
        None
    }

    /// The HPA's sync: replicas for the metric, stabilised and rate-limited.
    fn hpa(&mut self, metric: u64, current: u32, now: Instant) -> Option<u32> {
        if current == 0 {
            return None; // scaling is disabled while the target is at zero
        }
        let a = self.autoscaler.clone();
        let ratio = metric as f64 / (a.target * f64::from(current));
        let desired = if (1.0 - ratio).abs() <= HPA_TOLERANCE {
            current
        } else {
            (metric as f64 / a.target).ceil() as u32
        };
        // Stabilisation: the lowest recommendation of the scale-up window, the highest
        // of the scale-down window.
        self.recommendations.push((now, desired));
        let keep = a.up.window.max(a.down.window);
        self.recommendations
            .retain(|(at, _)| now.duration_since(*at) <= keep);
        let in_window = |window: Duration| {
            self.recommendations
                .iter()
                .filter(move |(at, _)| now.duration_since(*at) <= window)
                .map(|(_, replicas)| *replicas)
        };
        let up = in_window(a.up.window).min().unwrap_or(desired);
        let down = in_window(a.down.window).max().unwrap_or(desired);
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }
        let changed = |events: &[ScaleEvent], period: Duration| -> i64 {
            events
                .iter()
                .filter(|event| now.duration_since(event.at) <= period)
                .map(|event| event.change)
                .sum()
        };
        let limited = if recommendation > current {
            let mut limit: Option<i64> = None;
            for policy in &a.up.policies {
                let start = i64::from(current) - changed(&self.up_events, policy.period)
                    + changed(&self.down_events, policy.period);
                let proposed = if policy.pods {
                    start + i64::from(policy.value)
                } else {
                    (start as f64 * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i64
                };
                limit = Some(match limit {
                    None => proposed,
                    Some(limit) if a.up.select_max => limit.max(proposed),
                    Some(limit) => limit.min(proposed),
                });
            }
            let limit = limit.unwrap().max(i64::from(current)).min(i64::from(a.max));
            (i64::from(recommendation)).min(limit) as u32
        } else if recommendation < current {
            let mut limit: Option<i64> = None;
            for policy in &a.down.policies {
                let start = i64::from(current) + changed(&self.down_events, policy.period)
                    - changed(&self.up_events, policy.period);
                let proposed = if policy.pods {
                    start - i64::from(policy.value)
                } else {
                    (start as f64 * (1.0 - f64::from(policy.value) / 100.0)) as i64
                };
                limit = Some(match limit {
                    None => proposed,
                    Some(limit) if a.down.select_max => limit.min(proposed),
                    Some(limit) => limit.max(proposed),
                });
            }
            let limit = limit.unwrap().min(i64::from(current)).max(1);
            (i64::from(recommendation)).max(limit) as u32
        } else {
            current
        };
        let limited = limited.clamp(a.min.max(1), a.max);
        match limited.cmp(&current) {
            std::cmp::Ordering::Greater => self.up_events.push(ScaleEvent {
                at: now,
                change: i64::from(limited - current),
            }),
            std::cmp::Ordering::Less => self.down_events.push(ScaleEvent {
                at: now,
                change: i64::from(current - limited),
            }),
            std::cmp::Ordering::Equal => return None,
        }
        Some(limited)
    }
}

/// Runs KEDA and the HPA against the deployment until `stop`; returns the deployment.
async fn control_loop(
    mut controller: Controller,
    mut deployment: Deployment,
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Deployment {
    let tick = Duration::from_millis(100);
    let mut next_poll = Instant::now();
    let mut next_sync = Instant::now() + controller.autoscaler.hpa_sync;
    while !stop.load(Ordering::SeqCst) {
        deployment.settle().await;
        let now = Instant::now();
        let mut decision = None;
        let mut metric = None;
        if now >= next_poll {
            next_poll = now + controller.autoscaler.polling;
            match controller.scaler.messages().await {
                Ok(messages) => {
                    metric = Some(messages);
                    decision = controller.keda(messages, deployment.replicas, now);
                }
                Err(error) => eprintln!("keda: scaler error: {error}"),
            }
        }
        if decision.is_none() && now >= next_sync {
            next_sync = now + controller.autoscaler.hpa_sync;
            match controller.scaler.messages().await {
                Ok(messages) => {
                    metric = Some(messages);
                    decision = controller.hpa(messages, deployment.replicas, now);
                }
                Err(error) => eprintln!("hpa: metric error: {error}"),
            }
        }
        let from = deployment.replicas;
        if let Some(replicas) = decision {
            deployment.scale(replicas).await;
        }
        {
            let mut status = status.lock().unwrap();
            if let Some(metric) = metric {
                status.metric = metric;
            }
            if let Some(replicas) = decision {
                let line = format!(
                    "{:6.1}s  metric {:5}  replicas {from} -> {replicas}",
                    started.elapsed().as_secs_f64(),
                    status.metric
                );
                status.log.push(line);
            }
            status.replicas = deployment.replicas;
            status.peak = status.peak.max(deployment.replicas);
            status.live = deployment.live();
            status.stopping = deployment
                .stopping
                .iter()
                .filter(|h| !h.is_finished())
                .count();
        }
        tokio::time::sleep(tick).await;
    }
    deployment
}

/// Waits until `condition` holds on the status, or panics with the log after `limit`.
async fn wait_for(
    status: &Arc<Mutex<Status>>,
    what: &str,
    limit: Duration,
    condition: impl Fn(&Status) -> bool,
) -> Instant {
    let deadline = Instant::now() + limit;
    loop {
        {
            let status = status.lock().unwrap();
            if condition(&status) {
                return Instant::now();
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not within {limit:?}; replicas {}, live {}, metric {}; scaling log:\n{}",
                    status.replicas,
                    status.live,
                    status.metric,
                    status.log.join("\n")
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_scales_the_cpu_pool_out_and_back_to_zero() {
    let speedup = speedup();
    let (_, documents) = render("overlays/cpu-pool");
    let pools = Pool::all(&documents);
    let pool = pools
        .iter()
        .find(|pool| pool.name() == "wasya-cpu")
        .expect("the CPU pool");
    for actor in ROUTE {
        assert!(
            pool.actors().iter().any(|served| served == actor),
            "{actor} not in the pool"
        );
    }
    let autoscaler = Autoscaler::from_pool(pool, speedup);
    eprintln!("autoscaler (periods / {speedup}): {autoscaler:#?}");
    let (_, gateway_documents) = render("gateway");
    let gateway = of_kind(&gateway_documents, "Deployment")[0];

    let broker = Arc::new(Broker::new());
    let env_of = |container: &Value, overrides: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = literal_env(container)
            .into_iter()
            .filter(|(key, _)| !overrides.iter().any(|(name, _)| name == key))
            .collect();
        env.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    };
    // The gateway: takes the burst, records every outcome (it serves no pool actor).
    let gateway_env = env_of(container(gateway, "wasya"), &[]);
    let gateway_env: Vec<(&str, &str)> = gateway_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let gateway = NodeProcess::start_on_broker_with(&broker, &[], &gateway_env);

    let node = pool.node;
    let grace =
        duration(&crate::support::manifests::env_value(node, "WASYA_GRACE_PERIOD").unwrap());
    let pre_stop = Duration::from_secs(
        node["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .unwrap(),
    );
    let deployment = Deployment {
        broker: broker.clone(),
        env: env_of(node, &[("WASYA_CONCURRENCY", "1")]),
        replicas: 0,
        running: VecDeque::new(),
        starting: Vec::new(),
        stopping: Vec::new(),
        pre_stop: pre_stop.div_f64(speedup),
        started: 0,
    };
    let host = format!("http://guest:guest@127.0.0.1:15672/{}", broker.vhost);
    let controller = Controller {
        scaler: QueueLengthScaler::new(&host, &autoscaler.regex),
        autoscaler: autoscaler.clone(),
        created: Instant::now(),
        last_active: None,
        recommendations: Vec::new(),
        up_events: Vec::new(),
        down_events: Vec::new(),
    };
    // `kubectl apply`: the Deployment starts with one pod (which declares the pool's
    // queues), the ScaledObject takes over.
    let started = Instant::now();
    let mut deployment = deployment;
    deployment.scale(1).await;
    let status = Arc::new(Mutex::new(Status::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let control = tokio::spawn(control_loop(
        controller,
        deployment,
        status.clone(),
        stop.clone(),
        started,
    ));
    // Idle, it goes to zero after the initial cooldown.
    let idle_limit = autoscaler.initial_cooldown + autoscaler.polling * 2 + Duration::from_secs(60);
    wait_for(&status, "the idle pool scaled to zero", idle_limit, |s| {
        s.replicas == 0 && s.live == 0
    })
    .await;
    for actor in ROUTE {
        let queue = pool.queue_of(actor);
        assert_eq!(broker.queue_length(&queue), Some(0), "{queue} was declared");
    }

    // The burst, from zero nodes.
    let burst_at = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..BURST)
        .map(|n| {
            gateway.submit(
                ROUTE,
                json!({"text": format!("envelope {n}"), "for_ms": SPIN_MS}),
            )
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let submitted = burst_at.elapsed();
    let outcomes: Vec<Value> = futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let gateway = &gateway;
            async move {
                gateway
                    .get(&format!("/v1/envelopes/{id}?wait=120s"))
                    .await
                    .1
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let drained = burst_at.elapsed();
    let succeeded = outcomes
        .iter()
        .filter(|view| view["status"] == "succeeded")
        .count();
    let failed = outcomes
        .iter()
        .filter(|view| view["status"] == "failed")
        .count();
    let sample = outcomes
        .iter()
        .find(|view| view["status"] == "succeeded")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        sample["results"],
        json!([{"text": format!("ENVELOPE {}", ids.iter().position(|id| *id == sample["id"]).unwrap()), "for_ms": SPIN_MS}]),
        "the route ran: upper, spin, echo"
    );

    // Back to zero after the cooldown.
    let zero_limit = autoscaler.cooldown
        + autoscaler.down.window
        + autoscaler.polling * 2
        + Duration::from_secs(60);
    let zero_at = wait_for(&status, "the pool back at zero", zero_limit, |s| {
        s.replicas == 0 && s.live == 0 && s.stopping == 0
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let deployment = control.await.unwrap();
    let (peak, log) = {
        let status = status.lock().unwrap();
        (status.peak, status.log.join("\n"))
    };
    let mut slowest = Duration::ZERO;
    let mut exits = 0;
    for handle in deployment.stopping {
        let stopped = handle.join().expect("a stop");
        assert!(
            stopped.status.success(),
            "a scaled-in node exited with {:?}",
            stopped.status
        );
        assert!(
            stopped.after_sigterm < grace,
            "a node took {:?} after SIGTERM, past its grace period {grace:?}",
            stopped.after_sigterm
        );
        slowest = slowest.max(stopped.after_sigterm);
        exits += 1;
    }
    eprintln!(
        "scaling: {BURST} envelopes through {ROUTE:?}; submitted in {:.1}s, all ended after {:.1}s; \
         peak {peak} nodes ({} started in all); back to zero {:.1}s after the burst ({:.1}s after the last outcome; \
         cooldown {:?}); {exits} nodes stopped, each exit 0, the slowest {:.2}s after SIGTERM\n{log}",
        submitted.as_secs_f64(),
        drained.as_secs_f64(),
        deployment.started,
        (zero_at - burst_at).as_secs_f64(),
        (zero_at - burst_at - drained).as_secs_f64(),
        autoscaler.cooldown,
        slowest.as_secs_f64(),
    );
    assert_eq!(
        succeeded,
        BURST,
        "{failed} failed, {} without an outcome",
        BURST - succeeded - failed
    );
    assert!(
        peak > 1,
        "the burst did not scale the pool past one node:\n{log}"
    );
    assert_eq!(exits, deployment.started, "every node started was stopped");
    // None lost, none left: every queue of the vhost is empty, dead letters included.
    for (queue, messages) in broker.queue_lengths() {
        assert_eq!(messages, 0, "{queue} still holds {messages} messages");
    }
}
