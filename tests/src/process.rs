//! Function binaries run as real processes, as Lambda runs them.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;

use tokio::process::{Child, Command};

/// The path of a workspace binary (`history`, `migrate`, ...). Every
/// binary is built (or found up to date) once per test process: the test
/// runner builds test targets, not other packages' binaries, which could
/// otherwise be stale. The build is the workspace's, as `cargo xtask test`
/// runs it first: building one package alone would resolve its
/// dependencies' features differently and make the next `cargo test`
/// rebuild them.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let status = devdb::cargo()
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(crate::workspace_root())
            .status()
            .unwrap_or_else(|e| panic!("could not run cargo build for {name}: {e}"));
        assert!(status.success(), "cargo build of the binaries failed");
        *built = true;
    }
    // Tests run from target/<profile>/deps/; binaries sit in target/<profile>/.
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(PathBuf::from))
        .unwrap_or_else(|| crate::workspace_root().join("target/debug"))
        .join(name)
}

/// Starts the binary `name` with exactly `env` (plus `PATH` and
/// `RUST_LOG`), its output captured.
pub fn spawn(name: &str, env: &[(String, String)]) -> Child {
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {name}: {e}"))
}

/// Everything an exited (or killed) process printed: its standard output,
/// then its standard error.
pub async fn output(child: &mut Child) -> String {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut text).await;
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text).await;
    }
    text
}
