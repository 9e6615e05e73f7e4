//! A real browser for the status page's tests: headless Chromium driven by Selenium
//! from the test Python (`tests/ui/status_page.py`).
//!
//! The browser and its driver are the system's (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; `WASYA_CHROMIUM` and `WASYA_CHROMEDRIVER` point
//! elsewhere). Where either or the Python is missing the test says so and passes,
//! unless `WASYA_REQUIRE_TOOLCHAINS` is set, as `.ci/run` does: there it fails.
//! Screenshots go to `target/ui-screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one scenario may take, browser start included.
const SCENARIO_LIMIT: Duration = Duration::from_secs(180);

/// The Python, browser and driver a scenario runs with.
pub struct Browser {
    python: PathBuf,
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn tool(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// No browser: the test is skipped, or fails where the run requires the toolchains.
fn missing(what: &str) -> Option<Browser> {
    assert!(
        std::env::var_os("WASYA_REQUIRE_TOOLCHAINS").is_none(),
        "{what}, and this run requires it"
    );
    eprintln!("skipped: {what}");
    None
}

impl Browser {
    /// The browser, or `None` (the test is skipped) where a part is missing.
    pub fn find() -> Option<Browser> {
        let python = super::python::python()?;
        let chromium = tool("WASYA_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("WASYA_CHROMEDRIVER", "/usr/bin/chromedriver");
        for path in [&chromium, &chromedriver] {
            if !path.is_file() {
                return missing(&format!(
                    "{} is missing (apt-get install chromium chromium-driver)",
                    path.display()
                ));
            }
        }
        let selenium = Command::new(&python)
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|output| output.status.success());
        if !selenium {
            return missing(&format!(
                "{} cannot import selenium (pip install selenium==4.50.0)",
                python.display()
            ));
        }
        Some(Browser {
            python,
            chromium,
            chromedriver,
        })
    }

    /// Where screenshots go: `target/ui-screenshots/`.
    pub fn screenshots() -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("ui-screenshots")
    }

    fn command(&self, scenario: &str, base: &str, arg: Option<&str>, token: &str) -> Command {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/ui/status_page.py");
        let mut command = Command::new(&self.python);
        command
            .arg(script)
            .arg(scenario)
            .arg(base)
            .arg(Self::screenshots())
            .args(arg)
            .env("WASYA_CHROMIUM", &self.chromium)
            .env("WASYA_CHROMEDRIVER", &self.chromedriver)
            .env("UI_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts `scenario` against the node at `base`, with `arg` and the node's token.
    pub fn start(&self, scenario: &str, base: &str, arg: Option<&str>, token: &str) -> Scenario {
        let mut child = self
            .command(scenario, base, arg, token)
            .spawn()
            .expect("python starts");
        let steps = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let sink = steps.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let errors = child.stderr.take().expect("stderr is piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(errors).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Scenario {
            child,
            lines: steps,
            stderr,
            started: Instant::now(),
        }
    }
}

/// A scenario running in the browser; it prints `STEP <name> <json>` per state.
pub struct Scenario {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

impl Scenario {
    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.lines.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    fn found(&self, name: &str) -> Option<serde_json::Value> {
        let prefix = format!("STEP {name} ");
        self.lines.lock().unwrap().iter().find_map(|line| {
            line.strip_prefix(&prefix)
                .map(|facts| serde_json::from_str(facts).expect("a step's facts are JSON"))
        })
    }

    /// Waits for step `name`; the facts it printed.
    pub async fn step(&mut self, name: &str) -> serde_json::Value {
        loop {
            if let Some(facts) = self.found(name) {
                return facts;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its last lines may still be on their way.
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(facts) = self.found(name) {
                    return facts;
                }
                panic!(
                    "the browser scenario ended ({status}) before step `{name}`\n{}",
                    self.output()
                );
            }
            assert!(
                self.started.elapsed() < SCENARIO_LIMIT,
                "no step `{name}` within {SCENARIO_LIMIT:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the scenario to end, and asserts that it passed.
    pub async fn passes(mut self) {
        loop {
            if let Some(status) = self.child.try_wait().expect("the scenario's status") {
                tokio::time::sleep(Duration::from_millis(100)).await;
                assert!(
                    status.success(),
                    "the browser scenario failed\n{}",
                    self.output()
                );
                return;
            }
            assert!(
                self.started.elapsed() < SCENARIO_LIMIT,
                "the browser scenario did not end within {SCENARIO_LIMIT:?}\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Scenario {
    /// Asks the script to stop first (it then closes its browser), and kills it
    /// when it has not within a few seconds.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
