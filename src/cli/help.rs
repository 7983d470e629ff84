//! Help and version text. Each page: a one-line purpose, the options, an example.

use super::{DEFAULT_DEMO_DIR, DEFAULT_POLL_INTERVAL_S, DEFAULT_STATUS_LIMIT, Topic};

/// `maestro --version`: the crate version plus the git commit when built from a checkout.
pub fn version_text() -> String {
    match option_env!("MAESTRO_GIT_COMMIT") {
        Some(commit) => format!("maestro {} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => format!("maestro {}", env!("CARGO_PKG_VERSION")),
    }
}

/// The help page for one topic.
pub fn help_text(topic: Topic) -> String {
    match topic {
        Topic::Main => main_help(),
        Topic::Protocol => PROTOCOL_HELP.to_string(),
        Topic::Probe => PROBE_HELP.to_string(),
        Topic::Status => STATUS_HELP.replace("{limit}", &DEFAULT_STATUS_LIMIT.to_string()),
        Topic::Show => SHOW_HELP.to_string(),
        Topic::Run => RUN_HELP.to_string(),
        Topic::Daemon => DAEMON_HELP.replace("{poll}", &DEFAULT_POLL_INTERVAL_S.to_string()),
        Topic::Demo => DEMO_HELP.replace("{dir}", DEFAULT_DEMO_DIR),
        Topic::Doctor => DOCTOR_HELP.to_string(),
        Topic::Init => INIT_HELP.to_string(),
    }
}

fn main_help() -> String {
    format!(
        "\
maestro - run autonomous coding agents on a Linear project, one isolated lane per issue

Usage: maestro [--config PATH] <COMMAND> [OPTIONS]
       maestro --help | --version

Commands (the recommended operator order):
  init             Write tmp/maestro.toml for the git checkout you are in
  doctor           Check the config, repository, codex, secrets, Linear and GitHub
  protocol probe   Check that the configured codex app-server works, offline
  status           Show lanes, retries and recent runs from local state
  show ISSUE       Show one run: record, timeline, agent actions, validation, files
  run --once       Take one eligible issue through a lane (--dry-run explains the choice)
  daemon           Poll the tracker and supervise 'run --once' lanes continuously
  demo             Run the daemon over a throwaway offline world with a scripted agent
  help COMMAND     Same as 'maestro COMMAND --help'

Options:
      --config PATH   maestro.toml for the command (also accepted after the command)
  -h, --help          Print this help
  -V, --version       Print the version (and git commit when built from a checkout)

Config: --config PATH, else ./tmp/maestro.toml, else $XDG_CONFIG_HOME/maestro/maestro.toml
        (~/.config/maestro/maestro.toml when XDG_CONFIG_HOME is unset).
Codex: [agent] command (default 'codex app-server'); when its program is the bare word
       'codex', MAESTRO_CODEX_BIN (if set) names the codex to run instead of PATH's.
Logging: stderr, level from RUST_LOG (default info), e.g. RUST_LOG=debug.

Exit codes:
{}
Example:
  maestro run --once --dry-run --config fixtures/demo/maestro.toml
",
        crate::exit::table()
    )
}

const DOCTOR_HELP: &str = "\
maestro doctor - check everything a live run needs, one line per check

Checks, each printed as ok, FAIL (with the fix) or skip:
  config           maestro.toml found and valid
  repo_root        exists, is a git checkout, has an origin remote
  workflow         WORKFLOW.md is valid and agrees with maestro.toml
  workspace_root   writable, and not inside the repository's tracked tree
  codex            the [agent] command runs (its version)
  secret VAR       each variable maestro.toml names is set (values are never printed)
  operator_http    the listen address can be bound (or a maestro daemon answers on it)
  linear key       the API key is valid (Linear's viewer)             [network]
  project          the project slug resolves                            [network for linear]
  states, labels   every state and label WORKFLOW.md names exists, with did-you-mean
  github           the token can read the origin repository (skipped in branch handoff)

Usage: maestro doctor [OPTIONS]

Options:
      --config PATH   maestro.toml to check (default: ./tmp/maestro.toml, then the XDG path)
      --offline       Skip the checks that need the network (Linear and GitHub)
  -h, --help          Print this help

Exit: 0 when no check failed (skips are not failures), 1 otherwise, 2 on a usage error.

Example:
  maestro doctor --config ./tmp/maestro.toml
";

const INIT_HELP: &str = "\
maestro init - write tmp/maestro.toml for the git checkout you are in

Writes <checkout>/tmp/maestro.toml from maestro.example.toml with id and repo_root filled in
from the current git checkout, and adds tmp/ and .workspaces/ to .git/info/exclude when git
does not ignore them already. Never overwrites an existing file. Prints the next commands.

Usage: maestro init

Options:
  -h, --help    Print this help

Exit: 0 when the file was written, 1 on an I/O or git failure, 2 when the current directory
      is not in a git checkout or tmp/maestro.toml already exists.

Example:
  cd ~/src/my-app && maestro init
";

const PROTOCOL_HELP: &str = "\
maestro protocol - inspect the codex app-server boundary

Usage: maestro protocol probe [OPTIONS]

Subcommands:
  probe   Check the configured codex command end to end (see 'maestro protocol probe --help')

Example:
  maestro protocol probe
";

const PROBE_HELP: &str = "\
maestro protocol probe - check that the configured codex app-server works

Runs three steps and prints one line per step, then PROBE_OK:
  1. the codex command is invocable (prints its version)
  2. its JSON schema bundle defines the methods Maestro uses
  3. a live round trip against a built-in loopback mock model (offline, free)

Usage: maestro protocol probe [OPTIONS]

Options:
      --config PATH   maestro.toml to read [agent] command from (optional; defaults apply)
      --live          Do step 3 against your real Codex configuration and model (costs tokens)
  -h, --help          Print this help

Exit: 0 when every step passed, 1 naming the failed step, 2 on a usage or config error.

Example:
  maestro protocol probe --config ./tmp/maestro.toml
";

const STATUS_HELP: &str = "\
maestro status - show what every lane is doing, from local state only (no network)

Usage: maestro status [OPTIONS]

Options:
      --config PATH   maestro.toml to use (default: ./tmp/maestro.toml, then the XDG path)
      --json          Print the status snapshot as JSON (the same document as GET /state)
      --limit N       Keep the N newest finished runs in the recent section [default: {limit}]
  -h, --help          Print this help

Example:
  maestro status --json --limit 5
";

const RUN_HELP: &str = "\
maestro run --once - take one eligible issue through lease, lane, codex, validation and writeback

Usage: maestro run --once [OPTIONS]

Options:
      --once                Required: process at most one issue, then exit
      --issue IDENT         Take exactly this issue (ABC-12) if it is eligible; else exit 3
                            with the reason (with --dry-run: explain this one issue)
      --deadline DURATION   Bound the whole run (45m, 90s, 1h30m): the work stops in time for
                            the writeback, the attempt fails as deadline_exceeded, exit 4
      --dry-run             Explain the selection (every candidate and its verdict); change nothing
      --json                Print one JSON object on stdout instead of the summary line (with
                            --dry-run: the explanation); errors too are JSON
      --config PATH         maestro.toml to use (default: ./tmp/maestro.toml, then the XDG path)
  -h, --help                Print this help

Output: stdout is the summary line (or the JSON); stderr the progress (one live line in a
        terminal when RUST_LOG is unset, else one line per step) and the logs.
Exit codes: 0 handed off for review, 1 runtime failure, 2 usage/config error,
            3 nothing to do, 4 retry scheduled, 5 human required.

Example:
  maestro run --once --dry-run --config fixtures/demo/maestro.toml
  maestro run --once --issue ABC-12 --deadline 45m --json | jq -r .outcome
";

const SHOW_HELP: &str = "\
maestro show - everything about one run, from local state only (no network)

Prints the run's record, the timeline of its steps with times, what the agent did (commands
with exit codes, tool calls, messages; from the journal), Maestro's tool calls, the
validation output, the writeback and where the files are. Works while the run is live.

Usage: maestro show ISSUE|RUN_ID [OPTIONS]

Arguments:
  ISSUE|RUN_ID        An issue identifier (its latest run) or a run id (as status lists them)

Options:
      --config PATH   maestro.toml to use (default: ./tmp/maestro.toml, then the XDG path)
      --json          Print the same as JSON
  -h, --help          Print this help

Exit: 0 when the run was found, 1 when no run matches, 2 on a usage or config error.

Example:
  maestro show ABC-12
";

const DAEMON_HELP: &str = "\
maestro daemon - poll the tracker and supervise 'run --once' lanes until stopped

Usage: maestro daemon [OPTIONS]

Options:
      --poll-interval-s N   Seconds between polls; the first poll is immediate [default: {poll}]
      --config PATH         maestro.toml to use (default: ./tmp/maestro.toml, then the XDG path)
  -h, --help                Print this help

Stops cleanly on SIGTERM or SIGINT (exit 0). Unix only.

Example:
  maestro daemon --poll-interval-s 30 --config ./tmp/maestro.toml
";

const DEMO_HELP: &str = "\
maestro demo - watch the daemon take three issues end to end, offline, in a throwaway world

Builds a world in DIR (a bare git origin, a source clone of a tiny project, a local-tracker
project with three issues, a WORKFLOW.md with branch handoff and a validation command), then
runs the real 'maestro daemon' over it with the real codex driven by a scripted model built
into maestro. One issue is handed off, one needs a human, one fails validation once and is
handed off on its retry. Prints one line per decision, then the status table and where to look.

Usage: maestro demo [OPTIONS]

Options:
      --dir DIR   Where to build the world; maestro owns it [default: {dir}]
                  (a non-empty DIR it did not create is refused; its own is rebuilt)
  -h, --help      Print this help

Codex: MAESTRO_CODEX_BIN if set, else 'codex' on PATH. Install the pinned version with
  npm install --prefix \"$HOME/.cache/maestro-codex\" @openai/codex@0.169.0
  and put $HOME/.cache/maestro-codex/node_modules/.bin on PATH.
Exit: 0 when all three issues reached their expected outcome, 1 otherwise (what went wrong is
      printed), 2 on a usage error or a DIR it will not use.

Example:
  maestro demo --dir tmp/demo
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_usage_and_example() {
        for topic in [
            Topic::Main,
            Topic::Protocol,
            Topic::Probe,
            Topic::Status,
            Topic::Show,
            Topic::Run,
            Topic::Daemon,
            Topic::Demo,
            Topic::Doctor,
            Topic::Init,
        ] {
            let text = help_text(topic);
            assert!(text.contains("Usage: maestro"), "{topic:?}");
            assert!(text.contains("Example:"), "{topic:?}");
            assert!(!text.contains('{'), "unfilled placeholder in {topic:?}");
        }
    }

    #[test]
    fn main_help_lists_every_exit_code() {
        let text = help_text(Topic::Main);
        for exit in crate::exit::Exit::ALL {
            assert!(text.contains(exit.meaning()), "{exit:?}");
        }
    }

    #[test]
    fn version_names_the_crate_version() {
        assert!(version_text().starts_with(&format!("maestro {}", env!("CARGO_PKG_VERSION"))));
    }
}
