//! Maestro's integration tests, built into one binary (as cargo's and ripgrep's are) so they
//! link once. Each module covers one feature; shared fakes and helpers live in `support/`.

mod support;

/// The app-server client against the fake app-server: faults, policy, leaks.
mod app_server_fake;
/// The app-server client against the real codex binary and the scripted mock model.
mod app_server_real;
/// Attacks through what the agent hands in: read_first swaps, secret echoes, label floods,
/// oversized arguments, forged comment blocks (docs/spec/faults.md).
mod attacks_agent;
/// Issue #19's bounds on time, memory and disk: escaped commands, output floods, tool-call
/// floods, retention of logs, journals and bytes.
mod attacks_bounds;
/// Attacks on lanes and containment (#11): overlapping roots, unproven removals, symlinked
/// lanes, hostile identifiers, abandoned clones, absurd concurrency caps.
mod attacks_lanes;
/// Attacks on what the operator reads: control characters in titles, identifiers, errors and
/// records escaped in every text view (terminal, logs, dashboard), JSON left exact.
mod attacks_output;
/// Hostile peers: an agent turning its tools on the project, untrusted PR URLs and GitHub answers.
mod attacks_peers;
/// Attacks on exactly-once and nothing-lost: full disk, deleted leases, stale writers,
/// attempt budgets, changed identifiers (docs/spec/faults.md).
mod attacks_state;
/// Branch handoff (`[handoff] mode = "branch"`): any git remote, no GitHub; refusals and a
/// rewritten lane origin.
mod branch_handoff;
/// The command line as an operator meets it: help, version, usage errors, exit codes.
mod cli;
/// The real codex the suite runs against: found, installed once, or a loud failure (#16).
mod codex;
/// maestro.toml: resolution order, defaults, every validation rule.
mod config;
/// Turns that run out are a continuation (#13 item 2): `continuation_pending`, the thread
/// resumed by `run --once` and by the daemon's 1 s continuation, the budget's last attempt paged.
mod continuation;
/// `maestro daemon` with the fake app-server and fake Linear: dispatch, reconcile, retries.
mod daemon;
/// `maestro demo`: the throwaway world, the real daemon and codex with the scripted agent, the
/// three promised outcomes; missing codex and foreign directories.
mod demo;
/// `maestro doctor` (#16): every check against a real checkout, the fake Linear and GitHub.
mod doctor;
/// `maestro doctor`'s five checks of each ssh host (#17), against real sshd hosts.
mod doctor_hosts;
/// `run --once --dry-run`: demo output (text, JSON), zero mutations, exit codes.
mod dry_run;
/// Fault matrix rows that need whole processes (docs/spec/faults.md).
mod faults;
/// The GitHub PR check against the fake GitHub.
mod github;
/// `maestro init` (#16): the first tmp/maestro.toml for a checkout, never an overwrite, a clean
/// `git status`.
mod init;
/// The post-review lifecycle end to end (#14): handoff, repair, merge, closeout, cleanup, the
/// human path and cancellation, with the real daemon, codex and the scripted model.
mod landing;
/// The post-review lifecycle under `kill -9` of the daemon and faults on each route (#14).
mod landing_crash;
/// Lanes against real git: clone, branch, origin, hooks, reuse, unsafe metadata.
mod lane;
/// Lane lifecycle gaps of the first week (#13 items 3, 4, 7): the wall-clock turn timeout,
/// timeouts that name codex's cause and stop retrying it, peer WORKFLOW.md files.
mod lifecycle;
/// The daemon's intake within Linear's API budget: detection latency, pacing, costs (#15).
mod linear_budget;
/// The operator HTTP endpoint over loopback: routes, shapes, metrics, slow clients.
mod operator_http;
/// The operator runbook (docs/guide/pilot.md) end to end against real processes.
mod pilot;
/// `maestro protocol probe`: the real codex passes; each failing step is named.
mod probe;
/// Every `maestro` command in README.md, run in a fresh copy: `git status` stays clean (#16).
mod readme;
/// The post-review lifecycle's GitHub side and phase machine against the fake GitHub (#14):
/// reviews, threads, checks, merge, branch deletion, ETags, faults on every route.
mod review;
/// `run --once` end to end: real codex, scripted model, fake Linear and GitHub, bare origin.
mod run_once;
/// `run --once` beyond one clean attempt: retries, guards, held slots and leases, the daemon's
/// target flags, recovery, continuation, issues changing underneath.
mod run_once_attempts;
/// `run --once` for scripts and terminals (#18): `--json`, `--issue`, `--deadline`, progress.
mod scripting;
/// Eligibility rules and dispatch order, table-driven.
mod selection;
/// The rules for issues already worked on (recovery, due retries, claims) and the budget.
mod selection_resume;
/// `maestro show ISSUE|RUN_ID` (#18): record, timeline, agent actions, validation, files.
mod show;
/// `maestro status` from fixture state: phases, retries, limit, golden JSON, text view.
mod status;
/// Terminal lanes are cleaned as they go (#13 item 1): the daemon's tick and `run --once`
/// remove the lanes of issues now Done or Canceled; a held lane waits, shown pending removal.
mod terminal_lanes;
/// The tidy tests: docs/index.md's rules about the source tree checked against it as text
/// (exit codes, state paths, fs2, signals, spawns, prints, unwraps, sleeps, headers, sizes,
/// import cycles, the code map).
mod tidy;
/// The Linear adapter against the fake Linear: paging, normalization, mutations, faults.
mod tracker_linear;
/// The local file tracker: reading, write-backs, comments, format errors.
mod tracker_local;
/// codex app-server on an ssh host over ssh stdio (real sshd, codex and scripted model): tools
/// stay in the controller, a dropped connection is a disconnect and leaves nothing behind.
mod worker_agent;
/// Lanes on ssh hosts against real sshd and git: clone from origin, reuse, hooks on the host,
/// containment with resolved paths, removal guarded by the creation marker.
mod worker_lane;
/// The SSH worker end to end (real maestro, sshd hosts, codex, scripted model): per-host caps,
/// a refusing host, a killed sshd mid-turn, a retry back on its last host, containment and
/// secrets on the host, `status`.
mod worker_remote;
/// The SSH worker's plumbing against real sshd on loopback: the test servers, the ssh command
/// line, bounded remote execution, host health and per-host slots.
mod worker_ssh;
/// WORKFLOW.md: front matter, every validation rule, last-known-good reload.
mod workflow;
