//! A private PostgreSQL cluster started from the installed server binaries, for
//! `distnet up` without `DATABASE_URL` and for tests. `initdb` and `pg_ctl` refuse
//! to run as root, so as root they run as the `postgres` system user (created by
//! the Debian package), which is given the data folder.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// What the cluster's data is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `distnet up`: kept across runs, fsync on.
    Persistent,
    /// Tests: fsync off, and the folder is removed when the owning process exits.
    Throwaway,
}

/// A running private cluster. Stopped by [`LocalPostgres::stop_server`]; a watchdog
/// also stops it when the owning process exits without doing so.
#[derive(Debug)]
pub struct LocalPostgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    as_postgres_user: bool,
    kind: Kind,
}

/// Where `initdb` and `pg_ctl` live: on `PATH`, else the newest
/// `/usr/lib/postgresql/*/bin`.
pub fn find_server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").is_file().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    candidates.sort();
    candidates.pop().map(|(_, bin)| bin).ok_or_else(|| {
        anyhow::anyhow!(
            "PostgreSQL server binaries not found (initdb, pg_ctl): install them, e.g. \
             `apt-get install postgresql`, or set DATABASE_URL"
        )
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalPostgres {
    /// Starts (initializing if needed) a cluster in `dir`.
    pub fn start(dir: &Path, kind: Kind) -> anyhow::Result<Self> {
        let bin = find_server_binaries()?;
        std::fs::create_dir_all(dir)?;
        let dir = dir.canonicalize()?;
        let as_postgres_user = running_as_root();
        let cluster = Self {
            bin,
            data: dir.join("data"),
            socket_dir: dir.clone(),
            port: free_port()?,
            as_postgres_user,
            kind,
        };
        if as_postgres_user {
            cluster.run(
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir),
                false,
            )?;
        }
        if !cluster.data.join("PG_VERSION").is_file() {
            let mut initdb = cluster.command("initdb");
            initdb.arg("-D").arg(&cluster.data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]);
            cluster.run(&mut initdb, true).context("initdb")?;
        }
        cluster.start_server()?;
        cluster.spawn_watchdog()?;
        Ok(cluster)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, command: &mut Command, quiet: bool) -> anyhow::Result<()> {
        let output = command.output().with_context(|| format!("running {command:?}"))?;
        if !output.status.success() {
            anyhow::bail!(
                "{command:?} failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if !quiet {
            tracing::debug!(stdout = %String::from_utf8_lossy(&output.stdout), "ran {command:?}");
        }
        Ok(())
    }

    /// (Re)starts the server on its port.
    pub fn start_server(&self) -> anyhow::Result<()> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port,
            self.socket_dir.display()
        );
        if self.kind == Kind::Throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.socket_dir.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        self.run(&mut pg_ctl, true).context("pg_ctl start")?;
        self.mark_owned()
    }

    /// Where this process notes the server it started, for its watchdog.
    fn owner_mark(&self) -> PathBuf {
        self.socket_dir.join(format!("owner-{}", std::process::id()))
    }

    /// Notes the running server's postmaster PID (`postmaster.pid`'s first line) as
    /// this process's, so that its watchdog stops that server and no other: a later
    /// `distnet up` on the same folder, started as soon as this one has stopped its
    /// server, runs a server of its own that this watchdog must leave alone.
    fn mark_owned(&self) -> anyhow::Result<()> {
        let pid_file =
            std::fs::read_to_string(self.data.join("postmaster.pid")).context("reading postmaster.pid")?;
        let postmaster = pid_file.lines().next().unwrap_or_default().trim();
        std::fs::write(self.owner_mark(), postmaster).context("noting the server this process started")
    }

    /// Stops the server, keeping the data. `immediate` simulates a crash.
    pub fn stop_server(&self, immediate: bool) -> anyhow::Result<()> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl.arg("-D").arg(&self.data).args([
            "-w",
            "-m",
            if immediate { "immediate" } else { "fast" },
            "stop",
        ]);
        self.run(&mut pg_ctl, true).context("pg_ctl stop")
    }

    /// Stops the server when this process dies without calling `stop_server` — the
    /// server this process started last, and only while that one still runs: the
    /// watchdog notices the death within a second, by when another process may have
    /// started a server of its own on the same folder.
    fn spawn_watchdog(&self) -> anyhow::Result<()> {
        let cleanup = match self.kind {
            Kind::Persistent => String::new(),
            Kind::Throwaway => format!("; rm -rf '{}'", self.socket_dir.display()),
        };
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; \
             if [ -s '{mark}' ] && [ \"$(cat '{mark}')\" = \"$(head -n 1 '{data}/postmaster.pid' 2>/dev/null)\" ]; \
             then {pg_ctl} -D '{data}' -m immediate stop >/dev/null 2>&1; fi; rm -f '{mark}'{cleanup}",
            pid = std::process::id(),
            mark = self.owner_mark().display(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data.display(),
        );
        let mut watchdog = if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", &script]);
            c
        };
        watchdog
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting the postgres watchdog")?;
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` as the `postgres` superuser.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}
