//! Real OpenSSH servers on loopback for the SSH worker tests: one `sshd -D` per "host", each on
//! 127.0.0.1 at an ephemeral port, with generated host and user keys, a temporary
//! `sshd_config` (no PAM, only the generated user key, `StrictModes no` for temp dirs, the
//! current user) and one temporary `ssh_config` naming every host by alias with its port, the
//! user key and a known_hosts file holding the generated host key (`StrictHostKeyChecking yes`).
//! Each host has its own remote workspace root, its own `HOME` and its own session environment
//! (`SetEnv`), which is how a test gives the "host's own" codex its `CODEX_HOME`. Every server is killed on drop.
//!
//! Tests find sshd through `MAESTRO_SSHD_BIN`, else `/usr/sbin/sshd`, else `sshd` on PATH.
//! Without it a test prints `skipped: sshd not found` and passes, unless
//! `MAESTRO_REQUIRE_SSHD=1` (CI), when it fails, like the codex tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{DeadPort, free_port};

/// The sshd binary to test against, if there is one (and ssh and ssh-keygen beside it).
pub fn sshd_bin() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MAESTRO_SSHD_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "MAESTRO_SSHD_BIN={} does not name a file",
            path.display()
        );
        return Some(path);
    }
    let mut candidates = vec![PathBuf::from("/usr/sbin/sshd")];
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("sshd")));
    }
    let sshd = candidates.into_iter().find(|path| path.is_file())?;
    let tools_present = ["ssh", "ssh-keygen"]
        .iter()
        .all(|tool| Command::new(tool).arg("-V").output().is_ok());
    tools_present.then_some(sshd)
}

/// sshd, or `None` after printing the skip line. Panics when sshd is required.
pub fn require_sshd() -> Option<PathBuf> {
    match sshd_bin() {
        Some(path) => Some(path),
        None if std::env::var("MAESTRO_REQUIRE_SSHD").as_deref() == Ok("1") => {
            panic!("sshd not found and MAESTRO_REQUIRE_SSHD=1; install openssh-server")
        }
        None => {
            println!("skipped: sshd not found");
            None
        }
    }
}

/// Evaluates to the sshd path, or returns from the test after printing the skip line.
#[macro_export]
macro_rules! sshd_or_skip {
    () => {
        match $crate::support::sshd::require_sshd() {
            Some(path) => path,
            None => return,
        }
    };
}

/// One host a test wants.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// The alias in the generated ssh_config (what `[worker] ssh_hosts` names).
    pub alias: String,
    /// Variables every session on this host gets (`SetEnv`), e.g. `CODEX_HOME`.
    pub env: Vec<(String, String)>,
    /// A host whose port nobody listens on: connections are refused.
    pub refusing: bool,
}

impl HostSpec {
    pub fn new(alias: &str) -> HostSpec {
        HostSpec {
            alias: alias.to_string(),
            env: Vec::new(),
            refusing: false,
        }
    }

    pub fn env(mut self, name: &str, value: &str) -> HostSpec {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// The alias resolves to a loopback port nothing listens on.
    pub fn refusing(mut self) -> HostSpec {
        self.refusing = true;
        self
    }
}

/// One running (or refusing) host.
#[derive(Debug)]
pub struct Host {
    pub alias: String,
    pub port: u16,
    /// The remote workspace root a test configures for this host (created, empty).
    pub root: PathBuf,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    server: Option<Child>,
    /// A refusing host's port, kept bound (not listening) so no other test's server gets it.
    _refusing: Option<DeadPort>,
}

impl Host {
    /// The pid of the listening sshd, while it runs.
    pub fn listener_pid(&self) -> Option<u32> {
        self.server.as_ref().map(Child::id)
    }

    /// sshd's own log (its stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Several hosts sharing one generated ssh_config, keys and known_hosts.
#[derive(Debug)]
pub struct SshWorld {
    dir: PathBuf,
    sshd: PathBuf,
    pub ssh_config: PathBuf,
    pub hosts: Vec<Host>,
}

/// How long a server gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

impl SshWorld {
    /// Generates keys and configs under `dir/ssh` and starts one sshd per host.
    pub fn start(sshd: &Path, dir: &Path, hosts: &[HostSpec]) -> SshWorld {
        let ssh_dir = dir.join("ssh");
        std::fs::create_dir_all(&ssh_dir).expect("create ssh dir");
        ensure_privsep_dir();
        keygen(&ssh_dir.join("host_key"));
        keygen(&ssh_dir.join("user_key"));
        std::fs::copy(
            ssh_dir.join("user_key.pub"),
            ssh_dir.join("authorized_keys"),
        )
        .expect("write authorized_keys");
        let host_key = std::fs::read_to_string(ssh_dir.join("host_key.pub")).expect("host key");
        // One alias for the host key of every server: the servers share it, and each alias is
        // checked strictly against it.
        std::fs::write(
            ssh_dir.join("known_hosts"),
            format!("maestro-test-sshd {}", host_key.trim()),
        )
        .expect("write known_hosts");
        let mut world = SshWorld {
            dir: ssh_dir.clone(),
            sshd: sshd.to_path_buf(),
            ssh_config: ssh_dir.join("ssh_config"),
            hosts: Vec::new(),
        };
        for spec in hosts {
            let root = dir.join(format!("remote-{}", spec.alias));
            std::fs::create_dir_all(&root).expect("create remote root");
            let refusing = spec.refusing.then(DeadPort::new);
            let mut host = Host {
                alias: spec.alias.clone(),
                port: refusing.as_ref().map_or_else(free_port, DeadPort::port),
                root,
                config: ssh_dir.join(format!("sshd_config-{}", spec.alias)),
                log: ssh_dir.join(format!("sshd-{}.log", spec.alias)),
                env: spec.env.clone(),
                server: None,
                _refusing: refusing,
            };
            if !spec.refusing {
                world.launch(&mut host);
            }
            world.hosts.push(host);
        }
        world.write_ssh_config();
        world
    }

    /// The account every test host logs in as (the current user).
    pub fn user(&self) -> String {
        current_user()
    }

    /// `ssh -F <generated ssh_config>`: what `[worker] ssh_command` says in tests.
    pub fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.ssh_config.display())
    }

    pub fn host(&self, alias: &str) -> &Host {
        self.hosts
            .iter()
            .find(|host| host.alias == alias)
            .unwrap_or_else(|| panic!("no test host {alias}"))
    }

    /// Runs `ssh -F config alias command` and returns (exit code, stdout, stderr).
    pub fn ssh(&self, alias: &str, command: &str) -> (Option<i32>, String, String) {
        let output = Command::new("ssh")
            .arg("-F")
            .arg(&self.ssh_config)
            .args(["-o", "BatchMode=yes", "-T", "--", alias, command])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Kills host `alias`'s sshd and every session it serves (SIGKILL), as a crashed server or
    /// a dropped network would: the clients' connections close at once.
    pub fn kill_host(&mut self, alias: &str) {
        let host = self
            .hosts
            .iter_mut()
            .find(|host| host.alias == alias)
            .unwrap_or_else(|| panic!("no test host {alias}"));
        kill_sshd_only(host);
    }

    /// Starts host `alias`'s sshd again on its port (after [`SshWorld::kill_host`]).
    pub fn restart_host(&mut self, alias: &str) {
        let position = self
            .hosts
            .iter()
            .position(|host| host.alias == alias)
            .unwrap_or_else(|| panic!("no test host {alias}"));
        let mut host = self.hosts.remove(position);
        kill_server(&mut host);
        self.launch(&mut host);
        self.hosts.insert(position, host);
        self.write_ssh_config();
    }

    /// Every process that descends from host `alias`'s sshd: the sessions and what runs in
    /// them — "the remote processes" of that host.
    pub fn remote_processes(&self, alias: &str) -> Vec<u32> {
        match self.host(alias).listener_pid() {
            Some(pid) => descendants(pid),
            None => Vec::new(),
        }
    }

    fn launch(&self, host: &mut Host) {
        let user = current_user();
        for _ in 0..5 {
            let mut config = String::new();
            let _ = writeln!(config, "ListenAddress 127.0.0.1:{}", host.port);
            let _ = writeln!(config, "HostKey {}", self.dir.join("host_key").display());
            let _ = writeln!(
                config,
                "AuthorizedKeysFile {}",
                self.dir.join("authorized_keys").display()
            );
            for line in [
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PidFile none",
                "PermitRootLogin prohibit-password",
                "PermitUserEnvironment no",
                "AllowAgentForwarding no",
                "AllowTcpForwarding no",
                "X11Forwarding no",
                "PrintMotd no",
                "LogLevel VERBOSE",
            ] {
                let _ = writeln!(config, "{line}");
            }
            let _ = writeln!(config, "AllowUsers {user}");
            // Whatever the client sends, nothing is accepted: a host's environment is its own.
            let _ = writeln!(config, "AcceptEnv MAESTRO_NEVER_SENT");
            // Each host's sessions get a home of their own, so the login shell reads the test's
            // (absent) startup files and not those of the machine's user: a `~/.bashrc` that
            // runs `pyenv init` takes a lock, and sessions the tests kill leave it behind,
            // stalling every later login for a minute.
            let home = self.dir.join(format!("home-{}", host.alias));
            std::fs::create_dir_all(&home).expect("create host home");
            let mut vars = vec![format!("HOME={}", home.display())];
            vars.extend(
                host.env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            );
            let _ = writeln!(config, "SetEnv {}", vars.join(" "));
            std::fs::write(&host.config, config).expect("write sshd_config");
            let log = std::fs::File::create(&host.log).expect("create sshd log");
            // A clean environment: the server must not pass the test's variables (secrets
            // included) to anything, so the secret checks on the host mean something.
            let server = Command::new(&self.sshd)
                .args(["-D", "-e", "-f"])
                .arg(&host.config)
                .env_clear()
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                )
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            host.server = Some(server);
            if wait_listening(host) {
                return;
            }
            // The port was taken between choosing and binding: try another.
            kill_server(host);
            host.port = free_port();
        }
        panic!("sshd for {} did not start: {}", host.alias, host.log());
    }

    fn write_ssh_config(&self) {
        let user = self.user();
        let mut config = String::new();
        for host in &self.hosts {
            let _ = writeln!(config, "Host {}", host.alias);
            let _ = writeln!(config, "  HostName 127.0.0.1");
            let _ = writeln!(config, "  Port {}", host.port);
            let _ = writeln!(config, "  User {user}");
            let _ = writeln!(
                config,
                "  IdentityFile {}",
                self.dir.join("user_key").display()
            );
            let _ = writeln!(config, "  IdentitiesOnly yes");
            let _ = writeln!(config, "  IdentityAgent none");
            let _ = writeln!(config, "  HostKeyAlias maestro-test-sshd");
            let _ = writeln!(
                config,
                "  UserKnownHostsFile {}",
                self.dir.join("known_hosts").display()
            );
            let _ = writeln!(config, "  GlobalKnownHostsFile /dev/null");
            let _ = writeln!(config, "  StrictHostKeyChecking yes");
            let _ = writeln!(config, "  CheckHostIP no");
            let _ = writeln!(config, "  ConnectTimeout 10");
            let _ = writeln!(config, "  LogLevel ERROR");
        }
        // A destination given as `user@127.0.0.1:port` (no alias): the same keys and checks.
        let _ = writeln!(config, "Host 127.0.0.1");
        for line in [
            format!("IdentityFile {}", self.dir.join("user_key").display()),
            "IdentitiesOnly yes".to_string(),
            "IdentityAgent none".to_string(),
            "HostKeyAlias maestro-test-sshd".to_string(),
            format!(
                "UserKnownHostsFile {}",
                self.dir.join("known_hosts").display()
            ),
            "GlobalKnownHostsFile /dev/null".to_string(),
            "StrictHostKeyChecking yes".to_string(),
            "CheckHostIP no".to_string(),
            "LogLevel ERROR".to_string(),
        ] {
            let _ = writeln!(config, "  {line}");
        }
        std::fs::write(&self.ssh_config, config).expect("write ssh_config");
    }
}

impl Drop for SshWorld {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            kill_server(host);
        }
    }
}

/// Kills a host's sshd processes only (the listener and its per-connection servers), leaving
/// what runs in the sessions to fend for itself, as after a crash of the server.
fn kill_sshd_only(host: &mut Host) {
    let Some(mut server) = host.server.take() else {
        return;
    };
    let pid = server.id();
    let servers: Vec<u32> = descendants(pid)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim().starts_with("sshd"))
        })
        .collect();
    signal(pid, libc::SIGKILL);
    for pid in servers.iter().rev() {
        signal(*pid, libc::SIGKILL);
    }
    let _ = server.wait();
}

/// Kills a host's listener and every process below it, and reaps the listener.
fn kill_server(host: &mut Host) {
    let Some(mut server) = host.server.take() else {
        return;
    };
    let pid = server.id();
    // Sessions first (children re-parent to init once the listener is gone and could no longer
    // be found through it).
    let below = descendants(pid);
    signal(pid, libc::SIGKILL);
    for pid in below.iter().rev() {
        signal(*pid, libc::SIGKILL);
    }
    let _ = server.wait();
}

fn signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a pid read from /proc a moment ago; the worst case of a reused pid
    // is a signal to a process of this same test user.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Every live process below `root` in the process tree (children before grandchildren).
pub fn descendants(root: u32) -> Vec<u32> {
    let parents = parent_table();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        for (pid, ppid) in &parents {
            if *ppid == parent && !found.contains(pid) {
                found.push(*pid);
            }
        }
        index += 1;
    }
    found.remove(0);
    found
}

/// (pid, ppid) of every live process.
fn parent_table() -> Vec<(u32, u32)> {
    super::procs::live()
        .into_iter()
        .map(|proc| (proc.pid, proc.ppid))
        .collect()
}

/// Waits (bounded) until the host's port accepts a connection, or its server died.
fn wait_listening(host: &mut Host) -> bool {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(server) = host.server.as_mut() {
            if let Ok(Some(_)) = server.try_wait() {
                return false;
            }
        }
        if host.log().contains("Server listening on") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn keygen(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "maestro-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen");
    assert!(
        output.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn current_user() -> String {
    let output = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// sshd run as root refuses to start without its privilege separation directory, which a
/// container that never ran the service lacks.
fn ensure_privsep_dir() {
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
}
