//! `maestro doctor`'s checks of each `[worker] ssh_hosts` host (#17): the real binary, real
//! sshd hosts on loopback, real git. Five lines per host — ssh, git, codex, workspace_root,
//! origin — each failure with what to do, a host that is down with the rest skipped, and
//! `--offline` contacting no host.

use std::path::Path;

use crate::doctor::{Project, TOKEN, assert_status, check, doctor, plain};
use crate::sshd_or_skip;
use crate::support::fake_linear::API_KEY;
use crate::support::git::git;
use crate::support::sshd::{HostSpec, SshWorld};

/// Points the project's origin at its bare repository (a path every loopback host can read)
/// and appends `[worker]` with `hosts` (alias, workspace root) to maestro.toml.
fn with_hosts(project: &Project, ssh: &SshWorld, hosts: &[(&str, &Path)]) {
    let origin = project.dir.join("origin.git");
    git(
        &project.source,
        &["remote", "set-url", "origin", origin.to_str().unwrap()],
    );
    let names: Vec<String> = hosts
        .iter()
        .map(|(alias, _)| format!("\"{alias}\""))
        .collect();
    let mut worker = format!(
        "\n[worker]\nssh_hosts = [{}]\nworkspace_root = \"{}\"\nssh_command = \"{}\"\n\n[worker.workspace_roots]\n",
        names.join(", "),
        hosts[0].1.display(),
        ssh.ssh_command(),
    );
    for (alias, root) in &hosts[1..] {
        worker.push_str(&format!("\"{alias}\" = \"{}\"\n", root.display()));
    }
    let mut config = std::fs::read_to_string(&project.config).unwrap();
    config.push_str(&worker);
    std::fs::write(&project.config, config).unwrap();
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn each_host_gets_five_checks_and_a_host_that_is_down_says_what_to_do() {
    let sshd = sshd_or_skip!();
    let project = plain("doctor-hosts");
    let ssh = SshWorld::start(
        &sshd,
        project.dir.path(),
        &[HostSpec::new("good"), HostSpec::new("down").refusing()],
    );
    let good = ssh.host("good").root.clone();
    let down = ssh.host("down").root.clone();
    with_hosts(&project, &ssh, &[("good", &good), ("down", &down)]);

    let output = doctor(&project, &[], Some(API_KEY), Some(TOKEN));
    let text = crate::support::stdout(&output);
    let errors = crate::support::stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}\n{errors}");

    // The reachable host: every step ran there, through Maestro's ssh command line.
    let (line, _) = check(&text, "host good ssh");
    assert!(
        line.starts_with("ok    host good ssh: connects in batch mode; commands run as "),
        "{text}"
    );
    assert!(
        line.ends_with(&format!("(workspace root {})", good.display())),
        "{line}"
    );
    assert!(
        check(&text, "host good git").0.contains("git version"),
        "{text}"
    );
    let (line, _) = check(&text, "host good codex");
    assert!(line.starts_with("ok    host good codex: `"), "{line}");
    assert!(
        line.contains("is codex-cli 0.0.0-fake")
            && line.ends_with("Maestro is built and tested for codex-cli 0.169.0"),
        "a codex other than the pinned one is named and noted: {line}"
    );
    assert_eq!(
        check(&text, "host good workspace_root").0,
        format!(
            "ok    host good workspace_root: {} on good is writable",
            good.display()
        )
    );
    assert_eq!(
        check(&text, "host good origin").0,
        format!(
            "ok    host good origin: good can read {} (1 branches)",
            project.dir.join("origin.git").display()
        )
    );
    assert!(
        entries(&good).is_empty(),
        "the probe file is removed at once: {:?}",
        entries(&good)
    );

    // The host nobody listens for: what failed, what to do, and the rest skipped with why.
    let (line, fix) = check(&text, "host down ssh");
    assert!(
        line.starts_with("FAIL  host down ssh: cannot reach down over ssh: ")
            && line.contains("Connection refused"),
        "{text}"
    );
    let fix = fix.unwrap_or_else(|| panic!("a fix under the failure:\n{text}"));
    assert!(
        fix.starts_with("nothing accepts ssh connections at down's address")
            && fix.contains("-o BatchMode=yes -- down true"),
        "{fix}"
    );
    for name in ["git", "codex", "workspace_root", "origin"] {
        assert_eq!(
            check(&text, &format!("host down {name}")).0,
            format!("skip  host down {name}: needs ssh to down, which failed")
        );
    }

    // No codex runs on the controller, and the host lines sit between the tracker and GitHub.
    assert!(
        check(&text, "codex")
            .0
            .starts_with("skip  codex: lanes run on the [worker] ssh_hosts, never here"),
        "{text}"
    );
    let at = |name: &str| text.find(check(&text, name).0).unwrap();
    assert!(at("labels") < at("host good ssh"));
    assert!(at("host good origin") < at("host down ssh"));
    assert!(at("host down origin") < at("github"));
    assert!(!text.contains(TOKEN) && !errors.contains(TOKEN));
    assert!(!text.contains(API_KEY) && !errors.contains(API_KEY));
}

#[test]
fn a_root_under_a_file_a_missing_codex_and_an_unreadable_origin_each_fail_with_the_fix() {
    let sshd = sshd_or_skip!();
    let project = plain("doctor-hosts-bad");
    let ssh = SshWorld::start(&sshd, project.dir.path(), &[HostSpec::new("bad")]);
    let root = ssh.host("bad").root.clone();
    std::fs::write(root.join("a-file"), "not a directory\n").unwrap();
    let under_file = root.join("a-file").join("lanes");
    with_hosts(&project, &ssh, &[("bad", &under_file)]);
    let config = std::fs::read_to_string(&project.config).unwrap();
    let agent = config
        .lines()
        .find(|line| line.starts_with("command = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &project.config,
        config.replace(&agent, "command = \"/nonexistent/codex app-server\""),
    )
    .unwrap();
    let nowhere = project.dir.join("nowhere.git");
    git(
        &project.source,
        &["remote", "set-url", "origin", nowhere.to_str().unwrap()],
    );

    let output = doctor(&project, &["--offline"], Some(API_KEY), Some(TOKEN));
    let text = crate::support::stdout(&output);
    // `--offline` contacts no host: every host line is a skip.
    for name in ["ssh", "git", "codex", "workspace_root", "origin"] {
        assert_eq!(
            check(&text, &format!("host bad {name}")).0,
            format!("skip  host bad {name}: --offline")
        );
    }

    let output = doctor(&project, &[], Some(API_KEY), Some(TOKEN));
    let text = crate::support::stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert_status(&text, "host bad ssh", "ok");
    assert_status(&text, "host bad git", "ok");

    let (line, fix) = check(&text, "host bad codex");
    assert!(
        line.starts_with("FAIL  host bad codex: `/nonexistent/codex` is not found on bad (PATH there for ssh commands: "),
        "{text}"
    );
    assert!(
        fix.unwrap()
            .starts_with("install codex on bad (npm install --prefix"),
        "{text}"
    );

    let (line, fix) = check(&text, "host bad workspace_root");
    assert_eq!(
        line,
        format!(
            "FAIL  host bad workspace_root: {} on bad is not a directory, so {} cannot hold lanes",
            root.join("a-file").display(),
            under_file.display()
        )
    );
    assert!(fix.unwrap().contains("workspace_roots.\"bad\""), "{text}");

    let (line, fix) = check(&text, "host bad origin");
    assert!(
        line.starts_with(&format!(
            "FAIL  host bad origin: bad cannot read {}: fatal:",
            nowhere.display()
        )),
        "{text}"
    );
    assert!(
        fix.unwrap().starts_with("give bad read access to"),
        "{text}"
    );
    assert_eq!(
        entries(&root),
        vec!["a-file".to_string()],
        "doctor leaves the host as it found it"
    );

    // A root that does not exist yet is fine when the directory that will hold it takes files;
    // doctor does not create it.
    let config = std::fs::read_to_string(&project.config).unwrap();
    let later = root.join("later").join("lanes");
    std::fs::create_dir(root.join("later")).unwrap();
    std::fs::write(
        &project.config,
        config.replace(
            &under_file.display().to_string(),
            &later.display().to_string(),
        ),
    )
    .unwrap();
    let text = crate::support::stdout(&doctor(&project, &[], Some(API_KEY), Some(TOKEN)));
    assert_eq!(
        check(&text, "host bad workspace_root").0,
        format!(
            "ok    host bad workspace_root: {} does not exist on bad yet; {} is writable, so the first lane creates it",
            later.display(),
            root.join("later").display()
        )
    );
    assert!(!later.exists());
    assert!(entries(&root.join("later")).is_empty());
}
