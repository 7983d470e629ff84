//! `[worker]` in maestro.toml: the SSH hosts lanes run on, the per-host cap, the workspace root
//! on each host and the ssh command.
//!
//! This file owns the table's keys and their validation, nothing else: `config::parse` calls
//! [`read`] from its root table and keeps the result in `ServiceConfig.worker`. A host string
//! or a remote path is later put on an ssh command line and into a remote shell, so both are
//! checked strictly here: a host never starts with `-` (it would be read as an option) and a
//! remote root is an absolute path without `..`, control characters or quotes that a reader
//! could misjudge.

use super::split_command;
use crate::toml_fields::{Problem, Table};

/// The ssh program when `ssh_command` is not set.
pub const DEFAULT_SSH_COMMAND: &str = "ssh";

/// A validated `[worker]` table with at least one host. Without hosts (no table, or an empty
/// `ssh_hosts`) lanes run locally and `ServiceConfig.worker` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// The hosts, in configuration order: ssh destinations (an ssh_config alias, `host`,
    /// `user@host`).
    pub hosts: Vec<HostConfig>,
    /// At most this many lanes per host at once; `None`: only `max_concurrent_agents` bounds
    /// them.
    pub max_concurrent_agents_per_host: Option<u32>,
    /// Program and options, split on whitespace (no shell): `ssh -F /etc/maestro/ssh_config`.
    pub ssh_command: Vec<String>,
}

/// One host and where its lanes live on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The ssh destination exactly as configured.
    pub name: String,
    /// The absolute workspace root on that host (no trailing `/`).
    pub workspace_root: String,
}

impl WorkerConfig {
    /// The host called `name`, if configured.
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|host| host.name == name)
    }
}

/// Options an operator may not put in `ssh_command`, because Maestro's guarantees depend on
/// them (no agent or X11 forwarding, no environment sent, no tty, no shared master connection,
/// no commands run locally or instead of Maestro's): `-o` keys, compared case-insensitively.
const REFUSED_OPTIONS: [&str; 15] = [
    "forwardagent",
    "forwardx11",
    "forwardx11trusted",
    "sendenv",
    "setenv",
    "requesttty",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "permitlocalcommand",
    "localcommand",
    "remotecommand",
    "localforward",
    "remoteforward",
    "dynamicforward",
];

/// Single-letter ssh flags refused for the same reasons: `-A` (agent), `-X`/`-Y` (X11), `-t`
/// (tty), `-M`/`-S` (master connections), `-f`/`-N` (background, no command), `-L`/`-R`/`-D`/`-W`
/// (forwarding).
const REFUSED_FLAGS: &str = "AXYtMSfNLRDW";

/// ssh flags that take a value (`ssh(1)`), so the word after them is not a flag.
const VALUE_FLAGS: &str = "BbcEeFIiJlmOoPpQw";

/// Reads `[worker]` from the root table. `Some(None)`: no hosts, lanes run locally; `None`: a
/// problem was reported.
pub fn read(root: &mut Table<'_, '_>, problems: &mut Vec<Problem>) -> Option<Option<WorkerConfig>> {
    let Some(mut table) = root.table("worker", problems) else {
        return (!root.contains("worker")).then_some(None);
    };
    let before = problems.len();
    let mut names: Vec<String> = Vec::new();
    if let Some(list) = table.string_list("ssh_hosts", problems) {
        for (index, host) in list.get_ref().iter().enumerate() {
            let name = host.get_ref().trim();
            let field = format!("{}[{index}]", table.field("ssh_hosts"));
            if let Err(reason) = check_host(name) {
                problems.push(Problem {
                    span: host.span(),
                    field,
                    message: reason,
                });
            } else if names.iter().any(|known| known == name) {
                problems.push(Problem {
                    span: host.span(),
                    field,
                    message: format!("host `{name}` is listed twice; list each host once"),
                });
            } else {
                names.push(name.to_string());
            }
        }
    }
    let cap = match table.integer("max_concurrent_agents_per_host", problems) {
        None => None,
        Some(value) => match u32::try_from(*value.get_ref()).ok().filter(|n| *n > 0) {
            Some(cap) => Some(cap),
            None => {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("max_concurrent_agents_per_host"),
                    message: format!(
                        "must be a positive number of lanes, got {}",
                        value.get_ref()
                    ),
                });
                None
            }
        },
    };
    let default_root = match table.string("workspace_root", problems) {
        None => None,
        Some(value) => match check_remote_root(value.get_ref()) {
            Ok(root) => Some(root),
            Err(reason) => {
                problems.push(Problem {
                    span: value.span(),
                    field: table.field("workspace_root"),
                    message: reason,
                });
                None
            }
        },
    };
    let mut roots: Vec<(String, String)> = Vec::new();
    for (host, value) in table
        .string_map("workspace_roots", problems)
        .unwrap_or_default()
    {
        let field = format!("{}.{}", table.field("workspace_roots"), host.get_ref());
        if !names.iter().any(|name| name == host.get_ref()) {
            problems.push(Problem {
                span: host.span(),
                field,
                message: format!(
                    "`{}` is not in ssh_hosts; name one of the hosts listed there",
                    host.get_ref()
                ),
            });
            continue;
        }
        match check_remote_root(value.get_ref()) {
            Ok(root) => roots.push((host.get_ref().clone(), root)),
            Err(reason) => problems.push(Problem {
                span: value.span(),
                field,
                message: reason,
            }),
        }
    }
    let ssh_command = match table.string("ssh_command", problems) {
        None => split_command(DEFAULT_SSH_COMMAND),
        Some(value) => {
            let words = split_command(value.get_ref());
            match check_ssh_command(&words) {
                Ok(()) => words,
                Err(reason) => {
                    problems.push(Problem {
                        span: value.span(),
                        field: table.field("ssh_command"),
                        message: reason,
                    });
                    Vec::new()
                }
            }
        }
    };
    let mut hosts = Vec::with_capacity(names.len());
    for name in &names {
        let root = roots
            .iter()
            .find(|(host, _)| host == name)
            .map(|(_, root)| root.clone())
            .or_else(|| default_root.clone());
        match root {
            Some(workspace_root) => hosts.push(HostConfig {
                name: name.clone(),
                workspace_root,
            }),
            None if !table.contains("workspace_root") => {
                problems.push(Problem {
                    span: table.span().start..table.span().start,
                    field: table.field("workspace_root"),
                    message: format!(
                        "missing required key `workspace_root`: the absolute directory on host `{name}` that holds its lanes, e.g. \"/srv/maestro/lanes\" (or set it for that host under [worker.workspace_roots])"
                    ),
                });
                break;
            }
            None => {}
        }
    }
    table.finish(problems);
    if problems.len() > before {
        return None;
    }
    if hosts.is_empty() {
        return Some(None);
    }
    Some(Some(WorkerConfig {
        hosts,
        max_concurrent_agents_per_host: cap,
        ssh_command,
    }))
}

/// An ssh destination Maestro can pass safely: `[user@]host[:port]`-like characters only, never
/// an option.
fn check_host(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty; give an ssh destination such as \"build-1\"".into());
    }
    if name.starts_with('-') {
        return Err(format!(
            "`{name}` starts with `-`, which ssh would read as an option; give a host name or an ssh_config alias"
        ));
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':' | '[' | ']');
    if name.len() > 255 || !name.chars().all(allowed) {
        return Err(format!(
            "`{}` is not an ssh destination; use letters, digits and . _ - @ : [ ] only (an ssh_config alias can carry everything else)",
            crate::escape::text(name)
        ));
    }
    Ok(())
}

/// A remote workspace root: absolute, normalized without a trailing `/`, not `/` itself, no
/// `.` or `..` component, printable characters without quotes or backslashes.
pub fn check_remote_root(value: &str) -> Result<String, String> {
    let value = value.trim();
    let shown = crate::escape::text(value);
    if !value.starts_with('/') {
        return Err(format!(
            "`{shown}` is not an absolute path; the workspace root on a host is interpreted there, so give it in full (\"/srv/maestro/lanes\")"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() || matches!(c, '\'' | '"' | '\\' | '`' | '$'))
    {
        return Err(format!(
            "`{shown}` holds control characters, quotes, `\\`, `` ` `` or `$`; choose a plain directory path"
        ));
    }
    let components: Vec<&str> = value.split('/').filter(|part| !part.is_empty()).collect();
    if components.is_empty() {
        return Err("`/` cannot be a workspace root: lanes are removed under it".into());
    }
    if components.iter().any(|part| matches!(*part, "." | "..")) {
        return Err(format!(
            "`{shown}` has a `.` or `..` component; give the directory's plain absolute path"
        ));
    }
    Ok(format!("/{}", components.join("/")))
}

/// The ssh command: a program, then options that do not undo what Maestro relies on.
fn check_ssh_command(words: &[String]) -> Result<(), String> {
    if words.is_empty() {
        return Err(format!(
            "must name a program; omit it to use \"{DEFAULT_SSH_COMMAND}\""
        ));
    }
    let refused = |what: &str| {
        Err(format!(
            "`{what}` is not allowed in ssh_command: maestro runs ssh without agent or X11 forwarding, tty, sent environment, shared connections or forwarded ports; remove it"
        ))
    };
    let mut words = words.iter().skip(1);
    while let Some(word) = words.next() {
        let Some(flags) = word.strip_prefix('-') else {
            return Err(format!(
                "`{word}` is not an option; ssh_command is the program and its options only, maestro adds the host and the command"
            ));
        };
        if flags.is_empty() || flags.starts_with('-') {
            return Err(format!(
                "`{word}` is not an ssh option; the destination and command are maestro's to add"
            ));
        }
        // getopt rules: flags cluster until one that takes a value, whose value is the rest
        // of the word or else the next word (`-vF cfg`, `-Fcfg`, `-oKey=value`, `-i key`).
        for (index, flag) in flags.char_indices() {
            if REFUSED_FLAGS.contains(flag) {
                return refused(word);
            }
            if VALUE_FLAGS.contains(flag) {
                let rest = &flags[index + flag.len_utf8()..];
                let value = if rest.is_empty() {
                    words.next().map_or("", String::as_str)
                } else {
                    rest
                };
                if flag == 'o' {
                    let key = value
                        .split(['=', ' '])
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if REFUSED_OPTIONS.contains(&key.as_str()) {
                        return refused(value);
                    }
                }
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        split_command(text)
    }

    #[test]
    fn hosts_are_destinations_never_options() {
        assert!(check_host("build-1").is_ok());
        assert!(check_host("ci@build-1.example.com").is_ok());
        assert!(check_host("[::1]:2222").is_ok());
        assert!(check_host("-oProxyCommand=sh").is_err());
        assert!(check_host("a b").is_err());
        assert!(check_host("a;b").is_err());
        assert!(check_host("").is_err());
    }

    #[test]
    fn remote_roots_are_plain_absolute_paths() {
        assert_eq!(check_remote_root("/srv/lanes/").unwrap(), "/srv/lanes");
        assert_eq!(check_remote_root("//srv//lanes").unwrap(), "/srv/lanes");
        assert!(check_remote_root("lanes").is_err());
        assert!(check_remote_root("~/lanes").is_err());
        assert!(check_remote_root("/").is_err());
        assert!(check_remote_root("/srv/../etc").is_err());
        assert!(check_remote_root("/srv/$HOME").is_err());
        assert!(check_remote_root("/srv/it's").is_err());
        assert!(check_remote_root("/srv/a\nb").is_err());
    }

    #[test]
    fn ssh_command_refuses_what_would_undo_maestros_options() {
        assert!(check_ssh_command(&words("ssh -F /etc/maestro/ssh_config -i key")).is_ok());
        assert!(check_ssh_command(&words("ssh -o ServerAliveInterval=5 -p 22")).is_ok());
        assert!(check_ssh_command(&words("ssh -A")).is_err());
        assert!(check_ssh_command(&words("ssh -vA")).is_err());
        assert!(check_ssh_command(&words("ssh -o ForwardAgent=yes")).is_err());
        assert!(check_ssh_command(&words("ssh -oSendEnv=LINEAR_API_KEY")).is_err());
        assert!(check_ssh_command(&words("ssh -o SetEnv=X=1")).is_err());
        assert!(check_ssh_command(&words("ssh -o controlmaster=auto")).is_err());
        assert!(check_ssh_command(&words("ssh -t")).is_err());
        assert!(check_ssh_command(&words("ssh -vF cfg -Fcfg -i key -4")).is_ok());
        assert!(check_ssh_command(&words("ssh -4A")).is_err());
        assert!(check_ssh_command(&words("ssh -vo ForwardAgent=yes")).is_err());
        assert!(check_ssh_command(&words("ssh build-1")).is_err());
        assert!(check_ssh_command(&words("ssh -F cfg -- build-1")).is_err());
        assert!(check_ssh_command(&[]).is_err());
    }
}
