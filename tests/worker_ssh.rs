//! The SSH worker's plumbing against real OpenSSH servers on loopback (`support::sshd`): the
//! test servers themselves, the ssh command line, remote execution, host health and slots.

use crate::sshd_or_skip;
use crate::support::dir::TestDir;
use crate::support::sshd::{HostSpec, SshWorld};

/// The test servers are what the worker tests rely on: two hosts answer as the current user
/// with their own session environment, a refusing host refuses, and a killed host stops
/// answering.
#[test]
fn test_sshd_serves_two_hosts_and_a_refusing_one() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("sshd-world");
    let mut world = SshWorld::start(
        &sshd,
        dir.path(),
        &[
            HostSpec::new("host-a").env("MAESTRO_TEST_HOST", "a"),
            HostSpec::new("host-b").env("MAESTRO_TEST_HOST", "b"),
            HostSpec::new("host-down").refusing(),
        ],
    );
    for alias in ["host-a", "host-b"] {
        let (code, stdout, stderr) = world.ssh(alias, "echo \"host=$MAESTRO_TEST_HOST\"");
        assert_eq!(
            code,
            Some(0),
            "{alias}: {stderr}\n{}",
            world.host(alias).log()
        );
        assert_eq!(stdout.trim(), format!("host={}", &alias[5..]));
    }
    assert_ne!(world.host("host-a").root, world.host("host-b").root);
    let (code, _, stderr) = world.ssh("host-down", "true");
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    world.kill_host("host-a");
    let (code, _, _) = world.ssh("host-a", "true");
    assert_eq!(code, Some(255));
    world.restart_host("host-a");
    let (code, _, stderr) = world.ssh("host-a", "true");
    assert_eq!(code, Some(0), "{stderr}");
}

/// The host key is checked strictly: a server presenting another key is refused.
#[test]
fn test_sshd_host_key_is_checked_strictly() {
    let sshd = sshd_or_skip!();
    let dir = TestDir::new("sshd-hostkey");
    let world = SshWorld::start(&sshd, dir.path(), &[HostSpec::new("host-a")]);
    let known_hosts = dir.join("ssh/known_hosts");
    let other = dir.join("ssh/other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(status.success());
    let other_key = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    std::fs::write(
        &known_hosts,
        format!("maestro-test-sshd {}", other_key.trim()),
    )
    .unwrap();
    let (code, _, stderr) = world.ssh("host-a", "true");
    assert_eq!(code, Some(255), "{stderr}");
    assert!(
        stderr.contains("HOST IDENTIFICATION HAS CHANGED"),
        "{stderr}"
    );
}
