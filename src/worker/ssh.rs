//! The ssh command line and remote execution: how Maestro reaches a host and runs one thing
//! there.
//!
//! Every ssh Maestro starts has the same options, placed before the operator's own
//! `ssh_command` options because ssh keeps the first value it sees: batch mode (never a
//! prompt), no agent or X11 forwarding, no tty, no environment sent, no forwarded ports, no
//! shared master connection (a background master would be an orphan Maestro's custody kills),
//! no local command. The ssh client itself runs with an environment cut down to what it needs
//! (home, user, path, locale, the agent socket for authentication), so no secret of the
//! controller can reach a host whatever an ssh_config says. Secret values are never put on a
//! command line: nothing here takes one.
//!
//! The remote command is always the same small POSIX `sh` wrapper ([`WRAPPER`]) with every
//! argument single-quoted. It checks the lane's containment on the host with resolved paths,
//! starts the command in a session of its own, and kills that whole session when the command
//! ends or when its sshd goes away (a dropped connection, a killed controller), so nothing it
//! started outlives the connection. For the agent it reports the session's id on the first
//! stdout line. Local bounds still hold: the ssh client runs through [`crate::shell`], so its
//! timeout, output tail and process-group kill apply as to any command.
//!
//! This module does not decide what a failure means for a host (`health`) or an attempt.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::Error;
use crate::config::worker::{HostConfig, WorkerConfig};
use crate::shell::{self, ShellOutcome};
use crate::workspace::Layout;

/// Options on every ssh Maestro starts, before the operator's (ssh keeps the first value).
const FORCED_OPTIONS: [&str; 16] = [
    "-a",
    "-x",
    "-T",
    "-o",
    "BatchMode=yes",
    "-o",
    "ForwardAgent=no",
    "-o",
    "SendEnv=-*",
    "-o",
    "ClearAllForwardings=yes",
    "-o",
    "ControlMaster=no",
    "-o",
    "ControlPath=none",
    "-oPermitLocalCommand=no",
];

/// Defaults after the operator's options, so an ssh_config or `ssh_command` may change them:
/// a dead connection is noticed within a minute, an unreachable host within 10 s.
const DEFAULT_OPTIONS: [&str; 6] = [
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=4",
    "-o",
    "ConnectTimeout=10",
];

/// The only variables the ssh client keeps (when set): everything else — secrets included — is
/// removed from its environment, so nothing can send it on.
const KEPT_ENV: [&str; 8] = [
    "HOME",
    "USER",
    "LOGNAME",
    "PATH",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "SSH_AUTH_SOCK",
];

/// The name the wrapper runs under on the host (`$0`), so its processes are recognisable.
pub const WRAPPER_NAME: &str = "maestro-remote";

/// The first stdout line of an agent started through the wrapper: the session id on the host
/// and the run's `MAESTRO_REMOTE_RUN` value, which [`CLEANUP`] takes.
pub const PGID_PREFIX: &str = "maestro-remote-pgid=";

/// Ends what is left of an agent's remote side (`$1` its session id, `$2` its
/// `MAESTRO_REMOTE_RUN`): every process carrying that value, and the session when its leader
/// still carries it (a session id alone may have been reused by another process by now).
pub const CLEANUP: &str = r#"g=$1 run=$2
case "$g" in ''|*[!0-9]*) exit 0 ;; esac
case "$run" in ''|*[!0-9.]*) exit 0 ;; esac
grep -qxzs "MAESTRO_REMOTE_RUN=$run" "/proc/$g/environ" && kill -9 "-$g" 2>/dev/null
for f in $(grep -lxzs "MAESTRO_REMOTE_RUN=$run" /proc/[0-9]*/environ); do
  f=${f#/proc/}; kill -9 "${f%/environ}" 2>/dev/null
done
exit 0"#;

/// Exit status of the wrapper when it refuses the lane (containment).
const REFUSED_EXIT: i32 = 97;

/// The remote wrapper, run as `sh -c WRAPPER maestro-remote MODE ROOT KEY COMMAND...`.
///
/// MODE is `run` (a bounded command: output merged, markers for its start and exit status) or
/// `agent` (stdin passed through, the session id reported first). With a KEY, the lane
/// `ROOT/KEY` must be a real directory (not a symlink) whose resolved path is exactly the
/// resolved ROOT plus KEY; the command then runs in it. The command is started with `setsid` in
/// a session of its own and with `MAESTRO_REMOTE_RUN` set to a value unique to this run (not a
/// secret), which everything it starts inherits. When the command ends, and when a watchdog
/// sees the wrapper's parent (the sshd serving the connection) gone, the wrapper kills that
/// session and every process still carrying its `MAESTRO_REMOTE_RUN` — a background job, or
/// one that left the session with `setsid` — so neither a dropped connection nor a leftover
/// leaves anything running. (A process that both leaves the session and clears its environment
/// escapes: there is no subreaper on the host.) Linux hosts with GNU tools (`/proc`, `setsid`,
/// `readlink -e`, `grep -z`).
pub const WRAPPER: &str = r#"mode=$1 root=$2 key=$3
shift 3
[ "$mode" = run ] && printf 'maestro-remote-started\n'
refuse() { printf '\nmaestro-remote-refused=%s\n' "$1"; exit 97; }
if [ -n "$key" ]; then
  lane=$root/$key
  [ -L "$lane" ] && refuse "the lane is a symlink; a lane must be a real directory inside the workspace root (policy violation), so remove the symlink"
  [ -d "$lane" ] || { printf '\nmaestro-remote-missing=%s\n' "$lane"; exit 97; }
  base=$(readlink -e -- "$root") && real=$(readlink -e -- "$lane") || refuse "the lane cannot be resolved"
  [ "$real" = "$base/$key" ] || refuse "the lane resolves outside the workspace root (policy violation)"
  cd -- "$real" || refuse "cannot enter the lane"
fi
MAESTRO_REMOTE_RUN=$$.$(date +%s%N)
export MAESTRO_REMOTE_RUN
sweep() {
  kill -9 "-$c" 2>/dev/null
  for f in $(grep -lxzs "MAESTRO_REMOTE_RUN=$MAESTRO_REMOTE_RUN" /proc/[0-9]*/environ); do
    f=${f#/proc/}; kill -9 "${f%/environ}" 2>/dev/null
  done
}
exec 3<&0
setsid "$@" <&3 3<&- &
c=$!
exec 3<&-
[ "$mode" = agent ] && printf 'maestro-remote-pgid=%s %s\n' "$c" "$MAESTRO_REMOTE_RUN"
p=$PPID
( while [ -d "/proc/$p" ]; do sleep 1; done; sweep; sweep ) </dev/null >/dev/null 2>&1 &
w=$!
wait "$c"; s=$?
kill "$w" 2>/dev/null
sweep; sweep
[ "$mode" = run ] && printf '\nmaestro-remote-exit=%s\n' "$s"
exit "$s""#;

/// One host as Maestro reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The host as configured (`[worker] ssh_hosts`).
    pub host: String,
    /// The workspace root on the host, as configured (resolved on the host when used).
    pub root: String,
    ssh_command: Vec<String>,
    /// Where the ssh client runs: the config file's directory, so a relative `-F` or `-i` in
    /// `ssh_command` means what it says in maestro.toml.
    local_cwd: PathBuf,
    /// The controller's workspace, where what each connection met is recorded as the host's
    /// health (`health`); `None` records nothing.
    health: Option<Layout>,
}

/// What one remote command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// The command ran on the host; the outcome is its own (markers removed from the output).
    Done(ShellOutcome),
    /// The wrapper refused the lane before running anything (containment); the reason.
    Refused(String),
    /// The lane does not exist on the host.
    Missing,
    /// ssh itself failed: it could not connect (`started` false) or the connection dropped
    /// while the command ran. `detail` is ssh's last line.
    Ssh { started: bool, detail: String },
}

impl Remote {
    pub fn new(worker: &WorkerConfig, host: &HostConfig, config_dir: &Path) -> Remote {
        Remote {
            host: host.name.clone(),
            root: host.workspace_root.clone(),
            ssh_command: worker.ssh_command.clone(),
            local_cwd: config_dir.to_path_buf(),
            health: None,
        }
    }

    /// Records what every connection of this remote meets in the host's health under
    /// `layout`: a connect failure takes the host down for a backoff, a connection clears it.
    pub fn with_health(mut self, layout: &Layout) -> Remote {
        self.health = Some(layout.clone());
        self
    }

    /// Records that ssh could not connect (`detail`: its last line); see [`Remote::with_health`].
    pub fn record_connect_failure(&self, detail: &str) {
        if let Some(layout) = &self.health {
            super::health::record_failure(layout, &self.host, detail, crate::clock::now_ms());
        }
    }

    /// Records a connection that worked.
    pub fn record_connected(&self) {
        if let Some(layout) = &self.health {
            super::health::record_success(layout, &self.host);
        }
    }

    /// The directory the ssh client runs in.
    pub fn local_cwd(&self) -> &Path {
        &self.local_cwd
    }

    /// The full local command line: program, Maestro's options, the operator's, the defaults,
    /// `-n` when the remote command gets no input, `--`, the host and the remote command.
    pub fn argv(&self, remote_command: &str, stdin: bool) -> Vec<String> {
        let (program, operator) = match self.ssh_command.split_first() {
            Some((program, operator)) => (program.clone(), operator.to_vec()),
            None => ("ssh".to_string(), Vec::new()),
        };
        let mut argv = vec![program];
        argv.extend(FORCED_OPTIONS.iter().map(|word| word.to_string()));
        argv.extend(operator);
        argv.extend(DEFAULT_OPTIONS.iter().map(|word| word.to_string()));
        if !stdin {
            argv.push("-n".to_string());
        }
        argv.push("--".to_string());
        argv.push(destination(&self.host));
        argv.push(remote_command.to_string());
        argv
    }

    /// The remote command that runs `command` through the wrapper, in lane `key` when given.
    pub fn wrapped(&self, mode: Mode, key: Option<&str>, command: &[&str]) -> String {
        let mut words = vec![
            "exec".to_string(),
            "sh".to_string(),
            "-c".to_string(),
            quote(WRAPPER),
            WRAPPER_NAME.to_string(),
            quote(mode.as_str()),
            quote(&self.root),
            quote(key.unwrap_or("")),
        ];
        words.extend(command.iter().map(|word| quote(word)));
        words.join(" ")
    }

    /// Runs `script` with `sh -c` on the host, in lane `key` when given, for at most `timeout`
    /// (and until `stop` is raised). Fails only when ssh cannot be started at all.
    pub fn run(
        &self,
        key: Option<&str>,
        script: &str,
        timeout: Duration,
        stop: Option<&AtomicBool>,
    ) -> Result<Ran, Error> {
        self.run_args(key, script, &[], timeout, stop)
    }

    /// [`Remote::run`] with positional arguments for the script (`$1`…), each quoted.
    pub fn run_args(
        &self,
        key: Option<&str>,
        script: &str,
        args: &[&str],
        timeout: Duration,
        stop: Option<&AtomicBool>,
    ) -> Result<Ran, Error> {
        self.run_keeping(key, script, args, timeout, stop, shell::OUTPUT_TAIL_BYTES)
    }

    /// [`Remote::run_args`] whose output is the answer: up to its last `keep` bytes are kept
    /// (not only the log tail), and no stop flag (the step is short and bounded by `timeout`).
    pub fn read_args(
        &self,
        key: Option<&str>,
        script: &str,
        args: &[&str],
        timeout: Duration,
        keep: usize,
    ) -> Result<Ran, Error> {
        self.run_keeping(key, script, args, timeout, None, keep)
    }

    fn run_keeping(
        &self,
        key: Option<&str>,
        script: &str,
        args: &[&str],
        timeout: Duration,
        stop: Option<&AtomicBool>,
        keep: usize,
    ) -> Result<Ran, Error> {
        let mut command = vec!["sh", "-c", script, "maestro-step"];
        command.extend_from_slice(args);
        let remote = self.wrapped(Mode::Run, key, &command);
        let argv = self.argv(&remote, false);
        let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
        let outcome = shell::run_program_stoppable(
            &argv[0],
            &args,
            &self.local_cwd,
            &env_to_remove(),
            timeout,
            stop,
            keep,
        )
        .map_err(|source| Error::Start {
            host: self.host.clone(),
            program: argv[0].clone(),
            source,
        })?;
        let ran = judge(outcome);
        match &ran {
            Ran::Ssh {
                started: false,
                detail,
            } => self.record_connect_failure(detail),
            Ran::Ssh { started: true, .. } => {}
            Ran::Done(outcome) if outcome.timed_out || outcome.stopped => {}
            _ => self.record_connected(),
        }
        Ok(ran)
    }
}

/// A configured host as ssh takes it as a destination: `[user@]host:port` (and
/// `[user@][v6]:port`) become an `ssh://` URI, since ssh reads a colon in a plain destination as
/// part of the host name; anything else (an alias, `host`, `user@host`) is passed as configured.
pub fn destination(host: &str) -> String {
    let (user, rest) = match host.rsplit_once('@') {
        Some((user, rest)) => (Some(user), rest),
        None => (None, host),
    };
    let split = match rest.strip_prefix('[') {
        Some(inner) => inner
            .split_once("]:")
            .map(|(address, port)| (format!("[{address}]"), port)),
        None => rest
            .split_once(':')
            .map(|(name, port)| (name.to_string(), port)),
    };
    match split {
        Some((name, port))
            if !name.is_empty()
                && !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            let user = user.map(|user| format!("{user}@")).unwrap_or_default();
            format!("ssh://{user}{name}:{port}")
        }
        _ => host.to_string(),
    }
}

/// How the wrapper runs its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A bounded command: no input, merged output, markers for its start and exit status.
    Run,
    /// The app-server: stdin passed through, the session id on the first stdout line.
    Agent,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Agent => "agent",
        }
    }
}

/// What a finished ssh run means: the markers tell a command's own exit 255 from ssh's, and a
/// refusal from a failure.
fn judge(mut outcome: ShellOutcome) -> Ran {
    let text = std::mem::take(&mut outcome.output_tail);
    let mut started = false;
    let mut exit_marker = None;
    let mut refused = None;
    let mut missing = false;
    let mut kept = Vec::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "maestro-remote-started" {
            started = true;
        } else if let Some(code) = bare.strip_prefix("maestro-remote-exit=") {
            exit_marker = code.parse::<i32>().ok();
        } else if let Some(reason) = bare.strip_prefix("maestro-remote-refused=") {
            refused = Some(reason.to_string());
        } else if bare.starts_with("maestro-remote-missing=") {
            missing = true;
        } else {
            kept.push(line);
        }
    }
    // The wrapper prints a newline before each closing marker; it is not the command's.
    let mut output = kept.concat();
    if exit_marker.is_some() && output.ends_with('\n') {
        output.pop();
    }
    if outcome.timed_out || outcome.stopped {
        outcome.output_tail = output;
        return Ran::Done(outcome);
    }
    if outcome.exit_code == Some(REFUSED_EXIT) && exit_marker.is_none() {
        if let Some(reason) = refused {
            return Ran::Refused(reason);
        }
        if missing {
            return Ran::Missing;
        }
    }
    if outcome.exit_code == Some(255) && exit_marker != Some(255) {
        let detail = output
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("ssh exited 255")
            .trim()
            .to_string();
        return Ran::Ssh { started, detail };
    }
    outcome.output_tail = output;
    Ran::Done(outcome)
}

/// Every variable of this process's environment except the few the ssh client needs: the
/// names to remove from the environment of an ssh Maestro starts.
pub fn env_to_remove() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| !KEPT_ENV.contains(&name.as_str()))
        .collect()
}

/// `word` single-quoted for a POSIX shell: `it's` → `'it'\''s'`. Every character but `'` is
/// literal inside single quotes, so nothing in `word` is ever interpreted by the remote shell.
pub fn quote(word: &str) -> String {
    let mut quoted = String::with_capacity(word.len() + 2);
    quoted.push('\'');
    for c in word.chars() {
        if c == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(c);
        }
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_the_host_becomes_an_ssh_uri() {
        assert_eq!(
            destination("maestro@build2:2222"),
            "ssh://maestro@build2:2222"
        );
        assert_eq!(destination("build2:22"), "ssh://build2:22");
        assert_eq!(destination("[::1]:2222"), "ssh://[::1]:2222");
        assert_eq!(destination("me@[fe80::1]:22"), "ssh://me@[fe80::1]:22");
        for verbatim in [
            "build1",
            "maestro@build2",
            "::1",
            "[::1]",
            "host:",
            "host:x22",
            ":22",
        ] {
            assert_eq!(destination(verbatim), verbatim);
        }
    }

    fn remote() -> Remote {
        Remote {
            host: "build-1".into(),
            root: "/srv/lanes".into(),
            ssh_command: vec!["ssh".into(), "-F".into(), "cfg".into()],
            local_cwd: PathBuf::from("/"),
            health: None,
        }
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        for word in [
            "plain",
            "it's",
            "$(touch /tmp/x)",
            "a\nb",
            "`id`",
            "\"q\" \\ ;|&",
            "",
        ] {
            let output = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(word))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&output.stdout), word, "{word:?}");
        }
    }

    #[test]
    fn maestros_options_come_first_and_the_host_after_a_double_dash() {
        let argv = remote().argv("true", false);
        let position = |word: &str| argv.iter().position(|w| w == word).unwrap();
        assert_eq!(argv[0], "ssh");
        assert!(position("BatchMode=yes") < position("-F"));
        assert!(position("ForwardAgent=no") < position("-F"));
        assert!(position("SendEnv=-*") < position("-F"));
        assert!(position("-a") < position("-F"));
        assert!(position("-T") < position("-F"));
        assert!(position("-F") < position("ServerAliveInterval=15"));
        assert!(argv.iter().all(|word| word != "-A"));
        assert_eq!(&argv[argv.len() - 4..], ["-n", "--", "build-1", "true"]);
        assert!(!remote().argv("true", true).contains(&"-n".to_string()));
    }

    #[test]
    fn the_environment_of_ssh_keeps_only_what_it_needs() {
        let removed = env_to_remove();
        assert!(!removed.iter().any(|name| name == "PATH"));
        assert!(!removed.iter().any(|name| name == "HOME"));
        if std::env::var_os("CARGO").is_some() {
            assert!(removed.iter().any(|name| name == "CARGO"));
        }
    }

    fn outcome(exit_code: Option<i32>, output: &str) -> ShellOutcome {
        ShellOutcome {
            exit_code,
            timed_out: false,
            stopped: false,
            escaped: false,
            escapees_killed: 0,
            duration: Duration::ZERO,
            output_tail: output.to_string(),
        }
    }

    #[test]
    fn markers_tell_the_commands_exit_from_sshs() {
        match judge(outcome(
            Some(3),
            "maestro-remote-started\nboom\n\nmaestro-remote-exit=3\n",
        )) {
            Ran::Done(done) => {
                assert_eq!(done.exit_code, Some(3));
                assert_eq!(done.output_tail, "boom\n");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            judge(outcome(Some(255), "maestro-remote-started\n\nmaestro-remote-exit=255\n")),
            Ran::Done(done) if done.exit_code == Some(255)
        ));
        assert!(matches!(
            judge(outcome(Some(255), "ssh: connect to host x port 22: Connection refused\n")),
            Ran::Ssh { started: false, detail } if detail.contains("Connection refused")
        ));
        assert!(matches!(
            judge(outcome(
                Some(255),
                "maestro-remote-started\nwork\nConnection closed\n"
            )),
            Ran::Ssh { started: true, .. }
        ));
        assert!(matches!(
            judge(outcome(Some(97), "maestro-remote-started\n\nmaestro-remote-refused=the lane is a symlink\n")),
            Ran::Refused(reason) if reason.contains("symlink")
        ));
        // A command that prints a refusal and exits 97 on its own is not a refusal.
        assert!(matches!(
            judge(outcome(
                Some(97),
                "maestro-remote-started\nmaestro-remote-refused=x\n\nmaestro-remote-exit=97\n"
            )),
            Ran::Done(_)
        ));
    }

    #[test]
    fn the_wrapper_quotes_every_argument() {
        let command = remote().wrapped(Mode::Run, Some("ABC-1"), &["sh", "-c", "echo 'hi'"]);
        assert!(command.starts_with("exec sh -c '"));
        assert!(
            command.ends_with(" 'sh' '-c' 'echo '\\''hi'\\'''"),
            "{command}"
        );
        assert!(command.contains(" 'run' '/srv/lanes' 'ABC-1' "));
    }
}
