//! A PostgreSQL server of the test's own that takes TLS connections only, with a
//! server certificate for `localhost` from a CA made in the test: what a managed
//! PostgreSQL with `require_secure_transport` looks like to a node. The machine's
//! shared cluster is left as it is; this one lives in a temporary directory, runs as
//! the `postgres` user (PostgreSQL refuses to run as root), and stops when dropped.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running TLS-only server.
pub struct TlsPostgres {
    pub port: u16,
    /// The PEM file of the CA that signed the server's certificate.
    pub ca_file: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest installed PostgreSQL's programs.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs under /usr/lib/postgresql")
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an installed PostgreSQL with initdb")
}

fn as_postgres(program: &Path, args: &[&str]) -> Output {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .expect("runuser runs");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown runs");
    assert!(status.success(), "chown {}", path.display());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

impl TlsPostgres {
    /// Makes a cluster, a CA and a `localhost` certificate, and starts the server.
    pub fn start() -> TlsPostgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("a directory for the server");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("the directory open to the postgres user");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("the data directory");
        chown_postgres(&data);
        let data_arg = data.display().to_string();
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                &data_arg,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );

        let super::web::LocalhostCert { ca_pem, cert, key } =
            super::web::localhost_cert("wasya test store CA");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("the CA file");
        std::fs::write(data.join("server.crt"), cert.pem()).expect("the certificate");
        std::fs::write(data.join("server.key"), key.serialize_pem()).expect("the key");
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("the key private");
        // TLS or nothing, from this host.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .expect("pg_hba.conf");
        chown_postgres(&data);

        let port = free_port();
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data_arg} \
             -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c fsync=off"
        );
        let log = format!("{data_arg}/server.log");
        as_postgres(
            &bin.join("pg_ctl"),
            &["-D", &data_arg, "-o", &options, "-l", &log, "-w", "start"],
        );
        TlsPostgres {
            port,
            ca_file,
            data,
            bin,
            _dir: dir,
        }
    }

    /// A store URL for this server through `host`, with `params` (`sslmode=…`).
    pub fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    /// Runs `sql` on the server (over its Unix socket, as the superuser).
    pub fn query(&self, sql: &str) -> String {
        let data = self.data.display().to_string();
        let port = self.port.to_string();
        let output = as_postgres(
            &self.bin.join("psql"),
            &["-h", &data, "-p", &port, "-U", "postgres", "-qtAc", sql],
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
    }
}
