//! Deploying a PowerMTA configuration over SSH, safely: the running file backed up, the
//! new one uploaded beside it and validated before it replaces anything, then installed,
//! reloaded and checked; any failure after the swap restores the backup and reloads it.

use serde::Serialize;
use similar::TextDiff;

use crate::ssh::{self, Output, SshTarget, quote};

/// Where things live on the PowerMTA host and how it is driven.
#[derive(Debug, Clone)]
pub struct RemotePlan {
    pub config_path: String,
    /// DKIM private keys, written with mode 0600.
    pub dkim_dir: String,
    /// Checks a candidate file; `{config}` stands for its (quoted) path.
    pub validate_command: String,
    pub reload_command: String,
    /// Must succeed once the new configuration is loaded.
    pub status_command: String,
}

impl Default for RemotePlan {
    fn default() -> Self {
        Self {
            config_path: "/etc/pmta/config".into(),
            dkim_dir: "/etc/pmta/dkim".into(),
            validate_command: "pmta check-config {config}".into(),
            reload_command: "pmta reload".into(),
            status_command: "pmta show status".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Installed, reloaded, and the status check passed.
    Deployed,
    /// The validation refused the new file: nothing on the host changed.
    Rejected,
    /// Reload or status failed after the swap: the backup was restored and reloaded.
    RolledBack,
    /// Could not get that far (connection, upload), or the rollback itself failed.
    Failed,
}

impl Outcome {
    /// The name it has in reports and messages (`rolled_back`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Rejected => "rejected",
            Outcome::RolledBack => "rolled_back",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DeployStep)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    /// What the command said (stderr, else stdout), when anything.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = DeployReport)]
pub struct Report {
    pub target: String,
    pub outcome: Outcome,
    /// Why it did not deploy.
    pub reason: Option<String>,
    pub steps: Vec<Step>,
    /// The running file before, when there was one.
    pub backup: Option<String>,
    /// Unified diff of the running file to the new one, passwords redacted.
    pub diff: String,
}

/// A file to write on the host: a name inside the DKIM directory and its content.
pub struct KeyUpload<'a> {
    pub file_name: &'a str,
    pub content: &'a str,
}

/// `password …` lines (the smtp-user's) as `password [redacted]`: diffs are audited.
pub fn redact(config: &str) -> String {
    config
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("password ") {
                let indent = &line[..line.len() - trimmed.len()];
                format!("{indent}password [redacted]")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The audited diff: running file → new one, both redacted.
pub fn diff(path: &str, before: Option<&str>, after: &str) -> String {
    let (before, after) = (redact(before.unwrap_or("")), redact(after));
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

struct Run<'a> {
    target: &'a SshTarget,
    steps: Vec<Step>,
}

impl Run<'_> {
    /// Runs one step; `Err` carries the reason, already recorded.
    async fn step(
        &mut self,
        name: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, String> {
        match ssh::run(self.target, command, stdin).await {
            Ok(out) => {
                self.steps.push(Step {
                    name: name.to_owned(),
                    ok: out.ok(),
                    detail: out.message(),
                });
                if out.ok() {
                    Ok(out)
                } else {
                    Err(format!(
                        "{name} failed (exit {}): {}",
                        out.status,
                        out.message()
                    ))
                }
            }
            Err(e) => {
                self.steps.push(Step {
                    name: name.to_owned(),
                    ok: false,
                    detail: e.to_string(),
                });
                Err(format!("{name} failed: {e}"))
            }
        }
    }
}

/// Deploys `config` (and `keys`) to the host. `stamp` names the backup (a time stamp).
pub async fn deploy(
    target: &SshTarget,
    plan: &RemotePlan,
    config: &str,
    keys: &[KeyUpload<'_>],
    stamp: &str,
) -> Report {
    let path = plan.config_path.as_str();
    let candidate = format!("{path}.ee-new");
    let backup_path = format!("{path}.ee-backup-{stamp}");
    let mut run = Run {
        target,
        steps: Vec::new(),
    };
    let mut report = Report {
        target: target.describe(),
        outcome: Outcome::Failed,
        reason: None,
        steps: Vec::new(),
        backup: None,
        diff: String::new(),
    };
    let finish = |mut report: Report, run: Run<'_>, outcome: Outcome, reason: Option<String>| {
        report.outcome = outcome;
        report.reason = reason;
        report.steps = run.steps;
        report
    };

    // 1. The running file (exit 3: there is none yet).
    let read = format!(
        "if [ -f {p} ]; then cat -- {p}; else exit 3; fi",
        p = quote(path)
    );
    let before = match ssh::run(target, &read, None).await {
        Ok(out) if out.ok() => {
            run.steps.push(step_ok("read", ""));
            Some(out.stdout)
        }
        Ok(out) if out.status == 3 => {
            run.steps.push(step_ok("read", "no configuration yet"));
            None
        }
        Ok(out) => {
            let reason = format!("read failed (exit {}): {}", out.status, out.message());
            run.steps.push(Step {
                name: "read".into(),
                ok: false,
                detail: out.message(),
            });
            return finish(report, run, Outcome::Failed, Some(reason));
        }
        Err(e) => {
            run.steps.push(Step {
                name: "read".into(),
                ok: false,
                detail: e.to_string(),
            });
            return finish(report, run, Outcome::Failed, Some(e.to_string()));
        }
    };
    report.diff = diff(path, before.as_deref(), config);

    // 2. Backup.
    if before.is_some() {
        let cp = format!("cp -p -- {} {}", quote(path), quote(&backup_path));
        if let Err(reason) = run.step("backup", &cp, None).await {
            return finish(report, run, Outcome::Failed, Some(reason));
        }
        report.backup = Some(backup_path.clone());
    }

    // 3. Upload: keys in place (0600), the configuration beside the running one.
    for key in keys {
        let dir = plan.dkim_dir.trim_end_matches('/');
        let file = format!("{dir}/{}", key.file_name);
        let write = format!(
            "umask 077 && mkdir -p -- {d} && cat > {tmp} && chmod 600 -- {tmp} && mv -f -- {tmp} {f}",
            d = quote(dir),
            tmp = quote(&format!("{file}.ee-new")),
            f = quote(&file)
        );
        if let Err(reason) = run
            .step(
                &format!("upload {}", key.file_name),
                &write,
                Some(key.content.as_bytes()),
            )
            .await
        {
            return finish(report, run, Outcome::Failed, Some(reason));
        }
    }
    let upload = format!("umask 027 && cat > {}", quote(&candidate));
    if let Err(reason) = run
        .step("upload config", &upload, Some(config.as_bytes()))
        .await
    {
        return finish(report, run, Outcome::Failed, Some(reason));
    }

    // 4. Validate the candidate before it replaces anything.
    let validate = plan
        .validate_command
        .replace("{config}", &quote(&candidate));
    if let Err(reason) = run.step("validate", &validate, None).await {
        let _ = run
            .step("discard", &format!("rm -f -- {}", quote(&candidate)), None)
            .await;
        return finish(report, run, Outcome::Rejected, Some(reason));
    }

    // 5–7. Install, reload, check.
    let install = format!("mv -f -- {} {}", quote(&candidate), quote(path));
    if let Err(reason) = run.step("install", &install, None).await {
        return finish(report, run, Outcome::Failed, Some(reason));
    }
    let failure = match run.step("reload", &plan.reload_command, None).await {
        Ok(_) => run.step("status", &plan.status_command, None).await.err(),
        Err(reason) => Some(reason),
    };
    let Some(reason) = failure else {
        return finish(report, run, Outcome::Deployed, None);
    };

    // Rollback: the backup back in place (or no file, as before), reloaded.
    let restore = match &report.backup {
        Some(backup) => format!("cp -p -- {} {}", quote(backup), quote(path)),
        None => format!("rm -f -- {}", quote(path)),
    };
    let restored = run.step("rollback", &restore, None).await.is_ok()
        && (report.backup.is_none()
            || run
                .step("reload backup", &plan.reload_command, None)
                .await
                .is_ok());
    if restored {
        finish(report, run, Outcome::RolledBack, Some(reason))
    } else {
        let reason = format!("{reason}; the rollback failed too: the host needs a look");
        finish(report, run, Outcome::Failed, Some(reason))
    }
}

fn step_ok(name: &str, detail: &str) -> Step {
    Step {
        name: name.to_owned(),
        ok: true,
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_the_serialised_ones() {
        for o in [
            Outcome::Deployed,
            Outcome::Rejected,
            Outcome::RolledBack,
            Outcome::Failed,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn passwords_never_reach_the_diff() {
        let before = "<smtp-user ee>\n    password old-secret\n</smtp-user>\n";
        let after = "<smtp-user ee>\n    password new-secret\n</smtp-user>\nhost-name mta\n";
        let d = diff("/etc/pmta/config", Some(before), after);
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("+host-name mta"), "{d}");
        assert!(
            d.starts_with("--- a/etc/pmta/config\n+++ b/etc/pmta/config"),
            "{d}"
        );
    }
}
