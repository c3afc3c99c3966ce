//! PowerMTA deploys over SSH to a real OpenSSH server on loopback (`testing::PmtaHost`),
//! whose `pmta` is a script standing in for PowerMTA's command.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ee_connectors::pmta_deploy::{KeyUpload, Outcome, deploy};
use ee_connectors::powermta::{Input, VirtualMta, render};
use ee_connectors::testing::PmtaHost;

fn config_with(ips: &[&str]) -> String {
    render(&Input {
        postmaster: "postmaster@brand-a.test".into(),
        smtp_user: Some(("ee-relay".into(), "relay-secret".into())),
        virtual_mtas: ips
            .iter()
            .map(|ip| VirtualMta {
                ip: (*ip).into(),
                hostname: Some(format!("mta-{ip}.brand-a.test")),
                tenant_slug: "brand-a".into(),
                daily_quota: Some(50),
            })
            .collect(),
        ..Default::default()
    })
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn a_deploy_backs_up_validates_reloads_and_rolls_back() {
    let Some(h) = PmtaHost::start() else { return };
    let target = h.sshd.target();
    let first = config_with(&["46.62.168.55"]);
    let key = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

    // First deploy: no file yet, nothing to back up; the key lands with mode 0600.
    let report = deploy(
        &target,
        &h.plan,
        &first,
        &[KeyUpload {
            file_name: "brand-a.test.s1.pem",
            content: key,
        }],
        "20261121T100000",
    )
    .await;
    assert_eq!(report.outcome, Outcome::Deployed, "{report:#?}");
    assert_eq!(report.backup, None);
    assert_eq!(read(&h.plan.config_path), first);
    let key_path = format!("{}/brand-a.test.s1.pem", h.plan.dkim_dir);
    assert_eq!(read(&key_path), key);
    let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(h.reloads(), 1);
    assert!(
        report.diff.contains("+<virtual-mta vmta-46-62-168-55>"),
        "{}",
        report.diff
    );
    assert!(
        !report.diff.contains("relay-secret"),
        "passwords stay out of the diff"
    );

    // Second: a new IP. The running file is backed up, the diff names only the change.
    let second = config_with(&["46.62.168.55", "46.62.168.56"]);
    let report = deploy(&target, &h.plan, &second, &[], "20261121T110000").await;
    assert_eq!(report.outcome, Outcome::Deployed, "{report:#?}");
    let backup = report.backup.clone().unwrap();
    assert_eq!(read(&backup), first);
    assert_eq!(read(&h.plan.config_path), second);
    assert!(
        report.diff.contains("+<virtual-mta vmta-46-62-168-56>"),
        "{}",
        report.diff
    );
    assert!(
        !report.diff.contains("+<virtual-mta vmta-46-62-168-55>"),
        "{}",
        report.diff
    );
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "read",
            "backup",
            "upload config",
            "validate",
            "install",
            "reload",
            "status"
        ]
    );

    // Refused by the validation: the running file is untouched, no reload, no candidate left.
    std::fs::write(h.state.join("refuse-config"), "line 12: unknown directive").unwrap();
    let third = config_with(&["46.62.168.57"]);
    let report = deploy(&target, &h.plan, &third, &[], "20261121T120000").await;
    assert_eq!(report.outcome, Outcome::Rejected, "{report:#?}");
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("unknown directive")
    );
    assert_eq!(read(&h.plan.config_path), second);
    assert!(!Path::new(&format!("{}.ee-new", h.plan.config_path)).exists());
    assert_eq!(h.reloads(), 2);
    std::fs::remove_file(h.state.join("refuse-config")).unwrap();

    // Reload fails after the swap: the backup comes back and is reloaded.
    std::fs::write(h.state.join("fail-reload"), "").unwrap();
    let report = deploy(&target, &h.plan, &third, &[], "20261121T130000").await;
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:#?}");
    assert!(report.reason.as_deref().unwrap().contains("cannot bind"));
    assert_eq!(
        read(&h.plan.config_path),
        second,
        "the previous file is back"
    );
    assert_eq!(read(&h.state.join("loaded").display().to_string()), second);
    assert_eq!(h.reloads(), 4, "the failed reload and the rollback's");
    let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"reload backup"));
}

#[tokio::test]
async fn an_unknown_host_key_stops_the_deploy_before_anything() {
    let Some(h) = PmtaHost::start() else { return };
    let mut target = h.sshd.target();
    // A known_hosts that names another key for this server.
    let other = h.sshd.dir.path().join("other_known_hosts");
    std::fs::write(
        &other,
        format!(
            "[127.0.0.1]:{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
            h.sshd.port
        ),
    )
    .unwrap();
    target.known_hosts = Some(other);
    let report = deploy(&target, &h.plan, &config_with(&[]), &[], "x").await;
    assert_eq!(report.outcome, Outcome::Failed, "{report:#?}");
    assert_eq!(report.steps.len(), 1);
    assert!(!Path::new(&h.plan.config_path).exists());
    assert_eq!(h.reloads(), 0);
}
