//! A PostgreSQL role and schema of their own for each test, on the local server
//! (127.0.0.1:5432, database `test`), so tests of a pool's shared store run in parallel
//! without seeing each other. The nodes connect as the role, which may create the
//! schema; an outage is made by taking the role's right to log in away and ending its
//! connections, which touches no other test. Dropped with the handle.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Held while a role is granted or revoked its right on the database: PostgreSQL
/// refuses two concurrent changes of one database's privileges ("tuple concurrently
/// updated"), and the tests make roles in parallel.
static GRANTS: Mutex<()> = Mutex::new(());

fn psql(sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qtAc",
            sql,
        ])
        .output()
        .unwrap_or_else(|error| panic!("psql cannot run ({error}): is PostgreSQL installed?"));
    assert!(
        output.status.success(),
        "psql {sql:?} failed (is PostgreSQL running on 127.0.0.1:5432?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A role and the schema its nodes will create.
pub struct Postgres {
    pub role: String,
    pub schema: String,
}

impl Postgres {
    pub fn new() -> Postgres {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "wasya_t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let _grants = GRANTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        psql(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name}; \
             CREATE ROLE {name} LOGIN; GRANT CREATE ON DATABASE test TO {name};"
        ));
        Postgres {
            role: name.clone(),
            schema: name,
        }
    }

    /// The node flags for this store.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--store".into(),
            format!("postgres://{}@127.0.0.1:5432/test", self.role),
            "--store-schema".into(),
            self.schema.clone(),
        ]
    }

    /// Runs `sql` as the superuser, in the schema.
    pub fn query(&self, sql: &str) -> String {
        psql(&format!("SET search_path TO {}; {sql}", self.schema))
    }

    /// Starts `sql` as the superuser, in the schema, without waiting for it.
    pub fn start_query(&self, sql: &str) -> std::process::Child {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtAc"])
            .arg(format!("SET search_path TO {}; {sql}", self.schema))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("psql cannot run ({error})"))
    }

    /// Cuts the nodes off: no new connections, existing ones ended. A connection
    /// that passed authentication just before the role lost its right may show in
    /// `pg_stat_activity` only a moment later, so the sweep repeats until it finds
    /// none three times running.
    pub fn cut(&self) {
        psql(&format!("ALTER ROLE {} NOLOGIN;", self.role));
        let mut quiet = 0;
        while quiet < 3 {
            let ended = psql(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{}';",
                self.role
            ));
            quiet = if ended == "0" { quiet + 1 } else { 0 };
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Lets the nodes connect again.
    pub fn restore(&self) {
        psql(&format!("ALTER ROLE {} LOGIN;", self.role));
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _grants = GRANTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qtAc"])
            .arg(format!(
                "ALTER ROLE {0} NOLOGIN; \
                 SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{0}'; \
                 DROP SCHEMA IF EXISTS {0} CASCADE; REVOKE ALL ON DATABASE test FROM {0}; DROP ROLE IF EXISTS {0};",
                self.role
            ))
            .output();
    }
}
