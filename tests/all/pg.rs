//! A throwaway PostgreSQL server for the tests of the PostgreSQL store, from the
//! machine's own server binaries: `initdb` and `pg_ctl` into a temporary dir (as the
//! `postgres` user when the tests run as root), on a free loopback port. No mock.
//!
//! Where no server binaries are found the tests say so and skip — unless
//! `SEMEL_REQUIRE_POSTGRES` is set (as `.ci/run` sets it), where that is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

/// One server, stopped (immediately) and removed when dropped.
pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The URL of its `postgres` database, as the superuser `semel`.
    pub url: String,
    /// Run the server's commands as this user (`postgres` when we are root).
    user: Option<&'static str>,
}

/// The folder of the server binaries: `$SEMEL_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin` with `initdb` in it.
fn server_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SEMEL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Pg {
    /// A new server, or `None` (after saying why) where there are no server binaries
    /// and they are not required.
    pub fn start() -> Option<Pg> {
        let Some(bin) = server_bin() else {
            assert!(
                std::env::var_os("SEMEL_REQUIRE_POSTGRES").is_none(),
                "SEMEL_REQUIRE_POSTGRES is set but no PostgreSQL server binaries were found \
                 (/usr/lib/postgresql/*/bin, or $SEMEL_PG_BIN)"
            );
            eprintln!(
                "SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin or \
                 $SEMEL_PG_BIN); install Debian's postgresql to run the PostgreSQL store tests"
            );
            return None;
        };
        // SAFETY: geteuid(2) has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("semel-pg")
            .tempdir()
            .unwrap();
        let user = root.then_some("postgres");
        if root {
            // initdb refuses root: the postgres user owns the cluster's dir.
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let port = free_port();
        let pg = Pg {
            url: format!("postgres://semel@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            port,
            user,
        };
        let data = pg.data();
        pg.run_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "semel",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        pg.start_server();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(program);
        let mut c = match self.user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        c.args(args).current_dir(self.dir.path());
        c
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self.command(program, args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run_ok("pg_ctl", &all)
    }

    /// Starts the server (after a stop), waiting until it takes connections.
    pub fn start_server(&self) {
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=300 -c fsync=off \
             -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&[
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "60",
            "start",
        ]);
    }

    /// `pg_ctl stop -m MODE` (`fast`, `immediate`).
    pub fn stop_server(&self, mode: &str) {
        self.pg_ctl(&["-m", mode, "-w", "-t", "60", "stop"]);
    }

    /// `pg_ctl restart -m MODE`.
    pub fn restart_server(&self, mode: &str) {
        self.stop_server(mode);
        self.start_server();
    }

    /// Runs `sql` with psql, stopping at the first error.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run_ok(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "semel",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A new, empty database on this server and its URL: one store per test.
    pub fn database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE {name}"));
        format!("postgres://semel@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            )
            .output();
    }
}

/// The uid and gid of the `postgres` user.
fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "running as root needs a postgres user for initdb (id {flag} postgres failed)"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}
