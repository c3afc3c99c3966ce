//! A PostgreSQL server of the test's own, on a free port, from the machine's
//! PostgreSQL binaries, run as the `postgres` user.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(bin: &std::path::Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"])
        .arg(bin.join(program))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's binaries (Debian package postgresql)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .expect("a PostgreSQL version with pg_ctl");
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = super::free_port();
        let pg = Self { dir, bin, port };
        let data = pg.data();
        let made = as_postgres(
            &pg.bin,
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )
        .status()
        .unwrap();
        assert!(made.success(), "initdb");
        pg.ctl(&["start"]).await;
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn ctl(&self, action: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args = vec![
            "-D",
            data.as_str(),
            "-l",
            log.as_str(),
            "-o",
            options.as_str(),
            "-w",
        ];
        args.extend_from_slice(action);
        let status = as_postgres(&self.bin, "pg_ctl", &args).status().unwrap();
        assert!(status.success(), "pg_ctl {action:?}");
    }

    /// Stops the server (fast: open sessions are cut), waits, starts it again.
    pub async fn restart(&self, away: Duration) {
        self.ctl(&["-m", "fast", "stop"]).await;
        tokio::time::sleep(away).await;
        self.ctl(&["start"]).await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        )
        .status();
    }
}
