//! PgBouncer in transaction mode in front of a PostgreSQL server, for testing
//! the functions the way they run behind a transaction-mode pooler (PgBouncer
//! or RDS Proxy) in production.
//!
//! [`PgBouncer::start`] writes a configuration to a fresh directory under the
//! temp dir, starts the machine's `pgbouncer` (Debian's package) in the
//! foreground on a free port, and waits until it accepts connections. Every
//! database of the upstream server is served (`* =`), clients are trusted
//! (the upstream is a local test server), and protocol-level prepared
//! statements are not tracked (`max_prepared_statements = 0`, which is also
//! all that versions before 1.21 can do): a client that leaves named
//! statements on a server connection finds out at once. Dropping the handle
//! stops the process and removes the directory.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::run_as::RunAs;
use crate::server::free_port;

/// Where and as whom the pooler reaches the server.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Host name or address of the server.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The role clients log in as (it must exist on the server).
    pub user: String,
    /// The role's password, if the server asks for one.
    pub password: Option<String>,
}

impl Upstream {
    /// The server a `postgres://user:password@host:port/...` URL names.
    pub fn from_url(url: &str) -> Result<Upstream> {
        let url = url::Url::parse(url).context("The database URL does not parse")?;
        Ok(Upstream {
            host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: url.port().unwrap_or(5432),
            user: match url.username() {
                "" => "postgres".to_owned(),
                user => user.to_owned(),
            },
            password: url.password().map(str::to_owned),
        })
    }
}

/// A running PgBouncer (see the module docs); stopped when dropped.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
    user: String,
}

impl PgBouncer {
    /// Starts PgBouncer in transaction mode in front of `upstream`, with at
    /// most `pool_size` server connections per database and user.
    pub fn start(upstream: &Upstream, pool_size: u32) -> Result<PgBouncer> {
        let program = find_program()?;
        let run_as = RunAs::detect()?;
        let dir = std::env::temp_dir().join(format!(
            "devdb-pgbouncer-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
        run_as.give(&dir)?;
        let port = free_port()?;
        let ini = dir.join("pgbouncer.ini");
        let tracks_statements = version(&program).is_some_and(|v| v >= (1, 21));
        std::fs::write(
            &ini,
            config(upstream, port, pool_size, &dir, tracks_statements),
        )
        .context("Failed to write pgbouncer.ini")?;
        let users = dir.join("users.txt");
        std::fs::write(
            &users,
            format!(
                "{} {}\n",
                quote(&upstream.user),
                quote(upstream.password.as_deref().unwrap_or(""))
            ),
        )
        .context("Failed to write PgBouncer's auth file")?;
        for file in [&ini, &users] {
            run_as.give(file)?;
        }
        let child = run_as
            .command(&program, &dir)
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.log"))?)
            .spawn()
            .with_context(|| format!("Failed to start {}", program.display()))?;
        let mut bouncer = PgBouncer {
            child,
            port,
            dir,
            user: upstream.user.clone(),
        };
        bouncer.wait_ready()?;
        Ok(bouncer)
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` through the pooler.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{database}",
            self.user, self.port
        )
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "PgBouncer exited at start ({status}):\n{}",
                    std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("PgBouncer did not listen on port {} within 10 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `pgbouncer --version`'s first line: `PgBouncer 1.18.0`.
fn version(program: &Path) -> Option<(u32, u32)> {
    let output = std::process::Command::new(program)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let number = text.lines().next()?.strip_prefix("PgBouncer ")?;
    let mut parts = number
        .split('.')
        .map(|part| part.trim().parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

fn config(
    upstream: &Upstream,
    port: u16,
    pool_size: u32,
    dir: &Path,
    tracks_statements: bool,
) -> String {
    let mut ini = String::new();
    let _ = writeln!(ini, "[databases]");
    let _ = writeln!(ini, "* = host={} port={}", upstream.host, upstream.port);
    let _ = writeln!(ini, "[pgbouncer]");
    let _ = writeln!(ini, "listen_addr = 127.0.0.1");
    let _ = writeln!(ini, "listen_port = {port}");
    let _ = writeln!(ini, "unix_socket_dir =");
    let _ = writeln!(ini, "auth_type = trust");
    let _ = writeln!(ini, "auth_file = {}", dir.join("users.txt").display());
    let _ = writeln!(ini, "pool_mode = transaction");
    let _ = writeln!(ini, "default_pool_size = {pool_size}");
    let _ = writeln!(ini, "max_client_conn = 1000");
    if tracks_statements {
        // 1.21 and later can track named statements; like RDS Proxy, and
        // like older versions, this one must not.
        let _ = writeln!(ini, "max_prepared_statements = 0");
    }
    let _ = writeln!(ini, "logfile = {}", dir.join("pgbouncer.log").display());
    let _ = writeln!(ini, "pidfile = {}", dir.join("pgbouncer.pid").display());
    // Test databases come and go by the hundred: let go of their server
    // connections soon, so that dropping a database is not held up.
    let _ = writeln!(ini, "server_idle_timeout = 5");
    ini
}

/// PgBouncer's auth file quotes names and passwords in double quotes,
/// doubling any inside.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

fn find_program() -> Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbouncer"));
    on_path
        .chain([PathBuf::from("/usr/sbin/pgbouncer")])
        .find(|candidate| candidate.is_file())
        .context("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_serves_every_database_in_transaction_mode() {
        let upstream = Upstream {
            host: "127.0.0.1".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
        };
        let ini = config(&upstream, 6432, 3, Path::new("/tmp/x"), true);
        assert!(ini.contains("* = host=127.0.0.1 port=5432\n"));
        assert!(ini.contains("pool_mode = transaction\n"));
        assert!(ini.contains("default_pool_size = 3\n"));
        assert!(ini.contains("listen_port = 6432\n"));
        assert!(ini.contains("max_prepared_statements = 0\n"));
        let old = config(&upstream, 6432, 3, Path::new("/tmp/x"), false);
        assert!(!old.contains("max_prepared_statements"));
    }

    #[test]
    fn auth_file_values_are_quoted() {
        assert_eq!(quote(r#"a"b"#), r#""a""b""#);
    }
}
