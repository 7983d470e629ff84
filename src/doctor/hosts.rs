//! The doctor's checks of each `[worker] ssh_hosts` host: `ssh` (batch mode, Maestro's own
//! ssh command line), `git`, `codex` (the one `[agent] command` names, as the host's shell finds
//! it, and its version), `workspace_root` (writable, or creatable) and `origin` (the host can
//! read the repository lanes are cloned from), one line each, per host in configuration order.
//!
//! Every step goes through [`crate::worker::ssh::Remote`], exactly as a lane's steps do: the same
//! options, the client's cut-down environment, the remote wrapper, every argument quoted, and a
//! local time limit that kills the ssh client (the wrapper then ends what it started on the
//! host). No secret value is on a command line or in the host's environment: the scripts take
//! the workspace root, a probe file name, the agent command's words and the origin URL, as the
//! lane steps do. A host ssh cannot reach fails `ssh` and skips the rest with that reason.
//!
//! It changes nothing: the connections are not recorded in the hosts' health (that is the
//! controller's view of real attempts), and the one thing written on a host is a probe file,
//! created and removed at once. With `--offline` every host line is a skip: ssh is the network.

use std::path::Path;
use std::time::Duration;

use super::Outcome;
use crate::config::ServiceConfig;
use crate::worker::ssh::{Ran, Remote};
use crate::worker::{HostConfig, WorkerConfig};

/// The checks of one host, in order.
const CHECKS: [&str; 5] = ["ssh", "git", "codex", "workspace_root", "origin"];

/// The first connection: ssh's own `ConnectTimeout` (10 s unless the operator changed it) plus
/// the login and a short command.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `git --version`, `codex --version`, the probe file: well under a second on a healthy host.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// `git ls-remote --heads` against origin: a network round trip from the host.
const ORIGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Who and where the session is: proves a command runs at all.
const WHOAMI: &str = r#"printf 'maestro-ssh=%s@%s\n' "$(id -un)" "$(uname -n)""#;

/// Where `$1` is on the session's PATH, and its version (`$@ --version`), or that it is missing
/// (with the PATH searched).
const VERSION: &str = r#"p=$(command -v -- "$1") || { printf 'maestro-missing=%s\n' "$PATH"; exit 0; }
printf 'maestro-path=%s\n' "$p"
"$@" --version 2>&1"#;

/// Whether the workspace root `$1` (or, while it does not exist, the directory that will hold
/// it) takes a new file: probe `$2` created exclusively, then removed.
const ROOT: &str = r#"root=$1 probe=$2
dir=$root
while [ ! -e "$dir" ] && [ ! -L "$dir" ] && [ "$dir" != / ]; do dir=$(dirname -- "$dir"); done
[ -d "$dir" ] || { printf 'maestro-root=notdir %s\n' "$dir"; exit 0; }
if ! err=$( (set -C; : > "$dir/$probe") 2>&1 ); then
  printf '%s\nmaestro-root=unwritable %s\n' "$err" "$dir"; exit 0
fi
rm -- "$dir/$probe" || { printf 'maestro-root=kept %s\n' "$dir"; exit 0; }
printf 'maestro-root=writable %s\n' "$dir""#;

/// The heads of origin `$1`, read the way a lane's clone reads it (no prompt), counted.
const ORIGIN: &str = r#"out=$(GIT_TERMINAL_PROMPT=0 git ls-remote --heads -- "$1" 2>&1) || { printf '%s\n' "$out"; exit 1; }
printf 'maestro-heads=%s\n' "$(printf '%s\n' "$out" | grep -c refs/heads/)""#;

/// The checks of every configured host, each reported through `report` as it completes (a
/// host that does not answer takes up to its connect timeout). Nothing without `[worker]`;
/// only skips with `offline`.
pub fn check(
    config: &ServiceConfig,
    origin: Option<&str>,
    offline: bool,
    report: &mut dyn FnMut(&str, Outcome),
) {
    let Some(worker) = &config.worker else {
        return;
    };
    let config_dir = config.path.parent().unwrap_or(Path::new("."));
    for host in &worker.hosts {
        let name = |check: &str| format!("host {} {check}", host.name);
        if offline {
            for check in CHECKS {
                report(&name(check), Outcome::Skip("--offline".into()));
            }
            continue;
        }
        let remote = Remote::new(worker, host, config_dir);
        let ssh = ssh(worker, host, &remote);
        let reached = ssh.is_ok();
        report(&name("ssh"), ssh);
        if !reached {
            let reason = format!("needs ssh to {}, which failed", host.name);
            for check in &CHECKS[1..] {
                report(&name(check), Outcome::Skip(reason.clone()));
            }
            continue;
        }
        let git = git(&remote);
        let has_git = git.is_ok();
        report(&name("git"), git);
        report(&name("codex"), codex(config, &remote));
        report(&name("workspace_root"), workspace_root(config, &remote));
        let origin = match origin {
            None => Outcome::Skip("needs repo_root's origin (see repo_root)".into()),
            Some(_) if !has_git => Outcome::Skip(format!("needs git on {}", host.name)),
            Some(origin) => origin_access(&remote, origin),
        };
        report(&name("origin"), origin);
    }
}

/// Runs one check's script on the host: its output when it exited 0, otherwise the failed
/// outcome to report.
fn step(
    remote: &Remote,
    script: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<String, Outcome> {
    judge(
        remote,
        remote.run_args(None, script, args, timeout, None),
        timeout,
    )
}

/// What a remote step came to, for the cases a check does not read itself.
fn judge(
    remote: &Remote,
    ran: Result<Ran, crate::worker::Error>,
    timeout: Duration,
) -> Result<String, Outcome> {
    let host = &remote.host;
    match ran {
        Ok(Ran::Done(outcome)) if outcome.success() => Ok(outcome.output_tail),
        Ok(Ran::Done(outcome)) if outcome.timed_out => Err(Outcome::fail(
            format!("no answer from {host} within {} s", timeout.as_secs()),
            format!(
                "find what stalls commands on {host} (a shell startup file that waits, a hung filesystem) and run doctor again"
            ),
        )),
        Ok(Ran::Done(outcome)) => Err(Outcome::fail(
            format!(
                "the step failed on {host} ({}): {}",
                exit_text(outcome.exit_code),
                summary(&outcome.output_tail)
            ),
            format!(
                "a host needs a POSIX sh and GNU coreutils (docs/spec/worker.md, What a host needs); fix {host} as the message says"
            ),
        )),
        Ok(Ran::Refused(reason)) => Err(Outcome::Fail {
            problem: format!("the remote wrapper refused on {host}: {reason}"),
            fix: None,
        }),
        Ok(Ran::Missing) => Err(Outcome::Fail {
            problem: format!("the remote wrapper found no lane on {host}"),
            fix: None,
        }),
        Ok(Ran::Ssh {
            started: false,
            detail,
        }) => Err(Outcome::fail(
            format!("cannot reach {host} over ssh: {detail}"),
            connect_fix(host, &detail),
        )),
        Ok(Ran::Ssh { detail, .. }) => Err(Outcome::fail(
            format!("the ssh connection to {host} dropped: {detail}"),
            format!("check the network to {host} and its sshd's log, then run doctor again"),
        )),
        Err(error) => Err(Outcome::fail(
            error.to_string(),
            "set [worker] ssh_command to an ssh client installed here (such as \"ssh\")",
        )),
    }
}

/// Batch mode, Maestro's options, the cut-down environment: a command runs on the host.
fn ssh(worker: &WorkerConfig, host: &HostConfig, remote: &Remote) -> Outcome {
    let try_it = format!(
        "check with `{} -o BatchMode=yes -- {} true` from this account: it must succeed without a prompt",
        ssh_command(worker),
        crate::worker::ssh::destination(&host.name)
    );
    let ran = remote.run_args(None, WHOAMI, &[], CONNECT_TIMEOUT, None);
    let output = match judge(remote, ran, CONNECT_TIMEOUT) {
        Ok(output) => output,
        Err(Outcome::Fail {
            problem,
            fix: Some(fix),
        }) => {
            return Outcome::Fail {
                problem,
                fix: Some(format!("{fix}; {try_it}")),
            };
        }
        Err(failed) => return failed,
    };
    match marker(&output, "maestro-ssh=") {
        Some(who) => Outcome::Ok(format!(
            "connects in batch mode; commands run as {who} (workspace root {})",
            host.workspace_root
        )),
        None => Outcome::fail(
            format!(
                "{} answered, but not as a POSIX shell does: {}",
                host.name,
                summary(&output)
            ),
            format!(
                "give the ssh account on {} a POSIX login shell (sh, bash, dash, zsh, ksh)",
                host.name
            ),
        ),
    }
}

/// The operator's `ssh_command`, for the line to try by hand.
fn ssh_command(worker: &WorkerConfig) -> String {
    if worker.ssh_command.is_empty() {
        crate::config::worker::DEFAULT_SSH_COMMAND.to_string()
    } else {
        worker.ssh_command.join(" ")
    }
}

/// What to do about a connection that failed, from ssh's last line.
fn connect_fix(host: &str, detail: &str) -> String {
    let detail = detail.to_ascii_lowercase();
    if detail.contains("connection refused") {
        format!(
            "nothing accepts ssh connections at {host}'s address: start its sshd, or correct its HostName and Port in the ssh_config [worker] ssh_command reads"
        )
    } else if detail.contains("could not resolve") {
        format!(
            "{host} does not resolve: add a Host entry for it to the ssh_config [worker] ssh_command reads, or list a resolvable name in [worker] ssh_hosts"
        )
    } else if detail.contains("host key verification failed")
        || detail.contains("no ") && detail.contains("host key is known")
    {
        format!(
            "{host}'s host key is not in known_hosts and batch mode never asks: connect once by hand with the same ssh_command and check the fingerprint"
        )
    } else if detail.contains("permission denied") || detail.contains("too many authentication") {
        format!(
            "{host} accepts no key of this account, and batch mode never asks for a password: add this account's public key to ~/.ssh/authorized_keys there, or name the key with IdentityFile"
        )
    } else if detail.contains("timed out")
        || detail.contains("no route")
        || detail.contains("unreachable")
    {
        format!(
            "{host} did not answer: check that it is up and reachable from here (address, firewall, VPN)"
        )
    } else {
        format!("make ssh reach {host} from this account")
    }
}

/// `git` is on the PATH the host's ssh commands get: lanes are cloned and checked there.
fn git(remote: &Remote) -> Outcome {
    let host = &remote.host;
    let output = match step(remote, VERSION, &["git"], STEP_TIMEOUT) {
        Ok(output) => output,
        Err(failed) => return failed,
    };
    if let Some(path) = marker(&output, "maestro-missing=") {
        return Outcome::fail(
            format!("git is not on {host}'s PATH for ssh commands ({path})"),
            format!("install git on {host}: lanes there are git clones"),
        );
    }
    let found = marker(&output, "maestro-path=").unwrap_or_default();
    Outcome::Ok(format!("{} ({found})", version_line(&output)))
}

/// The codex `[agent] command` names runs on the host: `<its codex> --version`, found as the
/// host's shell finds it (a bare name on the host's PATH). With `MAESTRO_CODEX_BIN` set here,
/// a bare `codex` was already replaced by that path when the config loaded, and lanes on the
/// host run that path too, so that is what is asked.
fn codex(config: &ServiceConfig, remote: &Remote) -> Outcome {
    let host = &remote.host;
    let prefix = crate::app_server::codex_prefix(&config.agent.command);
    let Some(program) = prefix.first() else {
        return Outcome::Skip("[agent] command is empty (see config)".into());
    };
    let words: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let shown = words.join(" ");
    let install = format!(
        "install codex on {host} (npm install --prefix \"$HOME/.cache/maestro-codex\" @openai/codex@{}) and put it on the PATH ssh commands get there, or set [agent] command in {} to a path that is valid on every host",
        crate::demo::PINNED_CODEX,
        config.path.display()
    );
    let output = match step(remote, VERSION, &words, STEP_TIMEOUT) {
        Ok(output) => output,
        Err(Outcome::Fail { problem, .. }) => {
            return Outcome::fail(format!("`{shown} --version` on {host}: {problem}"), install);
        }
        Err(other) => return other,
    };
    if let Some(path) = marker(&output, "maestro-missing=") {
        return Outcome::fail(
            format!("`{program}` is not found on {host} (PATH there for ssh commands: {path})"),
            install,
        );
    }
    let found = marker(&output, "maestro-path=").unwrap_or_default();
    let version = version_line(&output);
    let pinned = crate::demo::PINNED_CODEX;
    let note = if version.contains(pinned) {
        String::new()
    } else {
        format!("; Maestro is built and tested for codex-cli {pinned}")
    };
    Outcome::Ok(format!("`{shown}` is {version} ({found}){note}"))
}

/// The host's workspace root takes a new file (a probe, removed at once), or does not exist
/// yet and the directory that will hold it does (the first lane creates it).
fn workspace_root(config: &ServiceConfig, remote: &Remote) -> Outcome {
    let host = &remote.host;
    let root = &remote.root;
    let probe = format!(
        ".maestro-doctor-{}-{}",
        std::process::id(),
        crate::clock::now_ms()
    );
    let output = match step(remote, ROOT, &[root, &probe], STEP_TIMEOUT) {
        Ok(output) => output,
        Err(failed) => return failed,
    };
    let elsewhere = format!(
        "or set its root elsewhere ([worker] workspace_root, or workspace_roots.\"{host}\" in {})",
        config.path.display()
    );
    let report = marker(&output, "maestro-root=").unwrap_or_default();
    let (state, dir) = report.split_once(' ').unwrap_or((report.as_str(), ""));
    match state {
        "writable" if dir == root => Outcome::Ok(format!("{root} on {host} is writable")),
        "writable" => Outcome::Ok(format!(
            "{root} does not exist on {host} yet; {dir} is writable, so the first lane creates it"
        )),
        "notdir" => Outcome::fail(
            format!("{dir} on {host} is not a directory, so {root} cannot hold lanes"),
            format!("remove it on {host}, {elsewhere}"),
        ),
        "unwritable" => {
            let why = output
                .lines()
                .find(|line| !line.trim().is_empty() && !line.contains("maestro-root="))
                .unwrap_or("permission denied")
                .trim();
            Outcome::fail(
                format!("cannot create a file in {dir} on {host}: {why}"),
                format!("give the ssh account write access to {dir} on {host}, {elsewhere}"),
            )
        }
        "kept" => Outcome::fail(
            format!("created probe file {dir}/{probe} on {host} but could not remove it"),
            format!("remove {dir}/{probe} on {host} and check who may delete files in {dir}"),
        ),
        _ => Outcome::Fail {
            problem: format!(
                "unexpected answer from {host} about {root}: {}",
                summary(&output)
            ),
            fix: None,
        },
    }
}

/// The host can read origin, which every lane there is cloned from: `git ls-remote --heads`,
/// run there the way the clone runs (no terminal prompt), bounded.
fn origin_access(remote: &Remote, origin: &str) -> Outcome {
    let host = &remote.host;
    // A remote URL may carry a user name and token; no line shows either.
    let shown = crate::github::without_userinfo(origin);
    let fix = format!(
        "give {host} read access to {shown} with its own credentials (a deploy key in ~/.ssh with the origin's host key in known_hosts, or a git credential helper): lanes there are cloned from it"
    );
    match remote.run_args(None, ORIGIN, &[origin], ORIGIN_TIMEOUT, None) {
        Ok(Ran::Done(outcome)) if outcome.success() => {
            let heads = marker(&outcome.output_tail, "maestro-heads=").unwrap_or_default();
            Outcome::Ok(format!("{host} can read {shown} ({heads} branches)"))
        }
        Ok(Ran::Done(outcome)) if outcome.timed_out => Outcome::fail(
            format!(
                "`git ls-remote` of {shown} on {host} did not finish within {} s",
                ORIGIN_TIMEOUT.as_secs()
            ),
            fix,
        ),
        Ok(Ran::Done(outcome)) if outcome.exit_code == Some(1) => Outcome::fail(
            format!(
                "{host} cannot read {shown}: {}",
                git_error(&outcome.output_tail).replace(origin, &shown)
            ),
            fix,
        ),
        other => match judge(remote, other, ORIGIN_TIMEOUT) {
            Ok(_) => Outcome::Ok(format!("{host} can read {shown}")),
            Err(failed) => failed,
        },
    }
}

/// The value after the last line starting with `prefix`.
fn marker(output: &str, prefix: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(prefix).map(str::to_string))
}

/// A tool's version: the last line that is not one of the scripts' markers.
fn version_line(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with("maestro-"))
        .unwrap_or("(no version printed)")
        .to_string()
}

/// git's reason: its first `fatal:` or `error:` line (the lines after it are advice), else the
/// last line.
fn git_error(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("fatal:") || line.starts_with("error:"))
        .map_or_else(|| summary(output), str::to_string)
}

/// The last non-empty line of a step's output.
fn summary(output: &str) -> String {
    let line = crate::worker::last_line(output);
    if line.is_empty() {
        "no output".to_string()
    } else {
        line.to_string()
    }
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(
        || "killed by a signal".to_string(),
        |code| format!("exit code {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connect_failure_gets_its_own_fix() {
        let fix = |detail: &str| connect_fix("build-1", detail);
        assert!(
            fix("ssh: connect to host 10.0.0.5 port 22: Connection refused")
                .starts_with("nothing accepts ssh connections at build-1's address")
        );
        assert!(
            fix("ssh: Could not resolve hostname build-1: Name or service not known")
                .starts_with("build-1 does not resolve")
        );
        assert!(fix("Host key verification failed.").contains("known_hosts"));
        assert!(
            fix("No ED25519 host key is known for build-1 and you have requested strict checking.")
                .contains("known_hosts")
        );
        assert!(fix("root@build-1: Permission denied (publickey).").contains("authorized_keys"));
        assert!(
            fix("ssh: connect to host 10.0.0.5 port 22: Connection timed out").contains("is up")
        );
        assert_eq!(
            fix("something else"),
            "make ssh reach build-1 from this account"
        );
    }

    #[test]
    fn git_errors_keep_the_reason_not_the_advice() {
        let output = "fatal: '/srv/x.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(
            git_error(output),
            "fatal: '/srv/x.git' does not appear to be a git repository"
        );
        assert_eq!(git_error("odd\nlast\n"), "last");
    }

    #[test]
    fn versions_skip_the_markers() {
        assert_eq!(
            version_line("maestro-path=/usr/bin/codex\ncodex-cli 0.169.0\n"),
            "codex-cli 0.169.0"
        );
        assert_eq!(version_line("maestro-path=/x\n"), "(no version printed)");
        assert_eq!(
            marker("a\nmaestro-root=writable /srv\n", "maestro-root="),
            Some("writable /srv".into())
        );
    }
}
