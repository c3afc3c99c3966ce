//! Remote commands over SSH with the system's OpenSSH client.
//!
//! The OpenSSH client rather than an SSH library: it is what operators already configure and
//! trust (known_hosts, keys, agents, jump hosts), it is audited far beyond any Rust SSH
//! stack, and it keeps a second crypto stack out of the binary. Host keys are always
//! checked (`StrictHostKeyChecking yes`) and no prompt can block (`BatchMode yes`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The private key (`-i`); the client's defaults and agent when absent.
    pub identity_file: Option<PathBuf>,
    /// The known_hosts file holding the server's key; the user's own when absent.
    pub known_hosts: Option<PathBuf>,
    /// The `ssh` program.
    pub program: String,
    /// Per command, connection included.
    pub timeout: Duration,
}

impl SshTarget {
    pub fn new(host: &str, port: u16, user: &str) -> Self {
        Self {
            host: host.to_owned(),
            port,
            user: user.to_owned(),
            identity_file: None,
            known_hosts: None,
            program: "ssh".into(),
            timeout: Duration::from_secs(60),
        }
    }

    /// `user@host:port`, for logs and audit.
    pub fn describe(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("cannot run {program}: {reason}")]
    Spawn { program: String, reason: String },
    #[error("no answer from {0} in time")]
    Timeout(String),
}

/// What a remote command came to.
#[derive(Debug, Clone)]
pub struct Output {
    /// The remote command's exit status; 255 is ssh's own failure (connection, auth,
    /// host key).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == 0
    }

    /// stderr, else stdout, trimmed and cut to a readable length.
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let text = text.trim();
        match text.char_indices().nth(2000) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// Quotes a value for the remote POSIX shell.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Runs `command` (a POSIX shell line) on the target, `stdin` fed to it.
pub async fn run(
    target: &SshTarget,
    command: &str,
    stdin: Option<&[u8]>,
) -> Result<Output, SshError> {
    let mut cmd = Command::new(&target.program);
    cmd.arg("-p")
        .arg(target.port.to_string())
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "ConnectTimeout=10"])
        .args(["-o", "LogLevel=ERROR"]);
    if let Some(key) = &target.identity_file {
        cmd.arg("-i").arg(key).args(["-o", "IdentitiesOnly=yes"]);
    }
    if let Some(known) = &target.known_hosts {
        cmd.arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()));
    }
    cmd.arg(format!("{}@{}", target.user, target.host))
        .arg("--")
        .arg(command)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawn_error = |e: std::io::Error| SshError::Spawn {
        program: target.program.clone(),
        reason: e.to_string(),
    };
    let mut child = cmd.spawn().map_err(spawn_error)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A closed pipe shows in the exit status; the write error says less.
        let _ = pipe.write_all(data).await;
        drop(pipe);
    }
    let output = tokio::time::timeout(target.timeout, child.wait_with_output())
        .await
        .map_err(|_| SshError::Timeout(target.describe()))?
        .map_err(spawn_error)?;
    Ok(Output {
        status: output.status.code().unwrap_or(255),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(quote("/etc/pmta/config"), "'/etc/pmta/config'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
