//! Unit tests of the command line: what each argv parses to, and every usage error's text.

use super::*;

fn parse_words(words: &str) -> Result<Command, UsageError> {
    parse(words.split_whitespace())
}

#[test]
fn no_arguments_prints_main_help() {
    assert_eq!(parse_words(""), Ok(Command::Help(Topic::Main)));
}

#[test]
fn version_flags() {
    assert_eq!(parse_words("--version"), Ok(Command::Version));
    assert_eq!(parse_words("-V"), Ok(Command::Version));
}

#[test]
fn help_for_each_command() {
    assert_eq!(
        parse_words("status --help"),
        Ok(Command::Help(Topic::Status))
    );
    assert_eq!(parse_words("run -h"), Ok(Command::Help(Topic::Run)));
    assert_eq!(
        parse_words("daemon --help"),
        Ok(Command::Help(Topic::Daemon))
    );
    assert_eq!(
        parse_words("protocol probe --help"),
        Ok(Command::Help(Topic::Probe))
    );
    assert_eq!(
        parse_words("protocol --help"),
        Ok(Command::Help(Topic::Protocol))
    );
    assert_eq!(parse_words("help run"), Ok(Command::Help(Topic::Run)));
}

#[test]
fn status_options() {
    assert_eq!(
        parse_words("status --json --limit 3 --config /x/maestro.toml"),
        Ok(Command::Status(StatusArgs {
            config: Some(PathBuf::from("/x/maestro.toml")),
            json: true,
            limit: 3,
        }))
    );
    assert_eq!(
        parse_words("status --limit=0"),
        Ok(Command::Status(StatusArgs {
            config: None,
            json: false,
            limit: 0
        }))
    );
}

#[test]
fn run_requires_once() {
    let error = parse_words("run --dry-run").unwrap_err();
    assert_eq!(error.topic, Topic::Run);
    assert!(error.message.contains("needs --once"), "{error}");
    assert_eq!(
        parse_words("run --once --dry-run"),
        Ok(Command::Run(RunArgs {
            dry_run: true,
            ..RunArgs::default()
        }))
    );
}

#[test]
fn daemon_targets_are_complete_or_absent() {
    let target = TargetArgs {
        issue_id: "id-1".into(),
        run_id: "r1".into(),
        attempt: 2,
        slot: Some((0, 5)),
        workflow_snapshot: None,
        repair: false,
    };
    let Ok(Command::Run(args)) = parse_words(
        "run --once --issue-id id-1 --run-id r1 --attempt 2 --slot-fd 5 --slot-index 0",
    ) else {
        panic!("targeted run parses");
    };
    assert_eq!(args.target, Some(target.clone()));
    assert_eq!(args.issue, None);
    // A daemon started before --issue-id existed passes the id as --issue.
    let Ok(Command::Run(args)) =
        parse_words("run --once --issue id-1 --run-id r1 --attempt 2 --slot-fd 5 --slot-index 0")
    else {
        panic!("the older targeted form parses");
    };
    assert_eq!((args.target, args.issue), (Some(target), None));
    let Ok(Command::Run(repair)) =
        parse_words("run --once --issue-id id-1 --run-id r1 --attempt 1 --repair")
    else {
        panic!("a repair run parses");
    };
    assert!(repair.target.is_some_and(|target| target.repair));
    let error = parse_words("run --once --repair").unwrap_err();
    assert!(error.message.contains("go together"), "{error}");
    let error = parse_words("run --once --issue-id id-1").unwrap_err();
    assert!(error.message.contains("go together"), "{error}");
    let error =
        parse_words("run --once --issue-id a --run-id r --attempt 1 --slot-fd 3").unwrap_err();
    assert!(
        error.message.contains("--slot-fd and --slot-index"),
        "{error}"
    );
    let error =
        parse_words("run --once --issue ABC-1 --issue-id a --run-id r --attempt 1").unwrap_err();
    assert!(
        error.message.contains("--issue cannot be combined"),
        "{error}"
    );
}

#[test]
fn the_public_issue_flag_names_an_identifier() {
    assert_eq!(
        parse_words("run --once --issue ABC-12"),
        Ok(Command::Run(RunArgs {
            issue: Some("ABC-12".into()),
            ..RunArgs::default()
        }))
    );
    assert_eq!(
        parse_words("run --once --dry-run --issue ABC-12 --json"),
        Ok(Command::Run(RunArgs {
            dry_run: true,
            json: true,
            issue: Some("ABC-12".into()),
            ..RunArgs::default()
        }))
    );
    let error = parse_words("run --once --issue").unwrap_err();
    assert!(error.message.contains("--issue needs a value"), "{error}");
}

#[test]
fn run_json_works_for_live_runs_too() {
    assert_eq!(
        parse_words("run --once --json"),
        Ok(Command::Run(RunArgs {
            json: true,
            ..RunArgs::default()
        }))
    );
}

#[test]
fn the_deadline_takes_a_duration_with_units() {
    let Ok(Command::Run(args)) = parse_words("run --once --deadline 1h30m") else {
        panic!("a deadline parses");
    };
    assert_eq!(args.deadline, Some(std::time::Duration::from_secs(5400)));
    let error = parse_words("run --once --deadline 45").unwrap_err();
    assert_eq!(
        error.message,
        "--deadline expects a duration such as 45m, 90s or 1h30m (whole numbers with s, m or h), got '45'"
    );
    let error = parse_words("run --once --dry-run --deadline 45m").unwrap_err();
    assert!(
        error.message.contains("--deadline bounds a live run"),
        "{error}"
    );
}

#[test]
fn show_takes_one_issue_or_run_id() {
    assert_eq!(
        parse_words("show ABC-12 --json"),
        Ok(Command::Show(ShowArgs {
            config: None,
            json: true,
            query: "ABC-12".into(),
        }))
    );
    assert_eq!(
        parse_words("--config /c.toml show r-1"),
        Ok(Command::Show(ShowArgs {
            config: Some(PathBuf::from("/c.toml")),
            json: false,
            query: "r-1".into(),
        }))
    );
    let error = parse_words("show").unwrap_err();
    assert_eq!(error.topic, Topic::Show);
    assert!(
        error.message.contains("needs an issue identifier"),
        "{error}"
    );
    let error = parse_words("show A B").unwrap_err();
    assert!(error.message.contains("unexpected argument 'B'"), "{error}");
    assert_eq!(parse_words("help show"), Ok(Command::Help(Topic::Show)));
}

#[test]
fn json_errors_are_wanted_only_where_scripts_read_json() {
    let args =
        |words: &str| -> Vec<OsString> { words.split_whitespace().map(Into::into).collect() };
    let run = parse_words("run --once --json --bogus").unwrap_err();
    assert!(json_wanted(&run, &args("run --once --json --bogus")));
    assert!(!json_wanted(&run, &args("run --once --bogus")));
    let status = parse_words("status --json --bogus").unwrap_err();
    assert!(!json_wanted(&status, &args("status --json --bogus")));
}

#[test]
fn daemon_poll_interval() {
    assert_eq!(
        parse_words("daemon --poll-interval-s 5"),
        Ok(Command::Daemon(DaemonArgs {
            config: None,
            poll_interval_s: 5
        }))
    );
    let error = parse_words("daemon --poll-interval-s 0").unwrap_err();
    assert_eq!(
        error.to_string(),
        "--poll-interval-s must be at least 1, got '0' (see 'maestro daemon --help')"
    );
    let error = parse_words("daemon --poll-interval-s soon").unwrap_err();
    assert_eq!(
        error.to_string(),
        "--poll-interval-s expects a whole number, got 'soon' (see 'maestro daemon --help')"
    );
}

#[test]
fn unknown_things_name_what_was_expected() {
    let error = parse_words("stauts").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown command 'stauts' (did you mean 'status'?); expected one of: init, doctor, protocol, status, show, run, daemon, demo (see 'maestro --help')"
    );
    let error = parse_words("status --jsn").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown option '--jsn' (did you mean '--json'?) for 'maestro status'; expected one of: --config, --json, --limit (see 'maestro status --help')"
    );
    let error = parse_words("help docter").unwrap_err();
    assert!(
        error.message.contains("(did you mean 'doctor'?)"),
        "{error}"
    );
    let error = parse_words("status --config").unwrap_err();
    assert_eq!(
        error.to_string(),
        "--config needs a value: a path to maestro.toml (see 'maestro status --help')"
    );
    let error = parse_words("protocol").unwrap_err();
    assert!(error.message.contains("expected: probe"));
    let error = parse_words("status --json=yes").unwrap_err();
    assert!(error.message.contains("does not take a value"), "{error}");
}

#[test]
fn demo_dir_defaults_and_overrides() {
    assert_eq!(
        parse_words("demo"),
        Ok(Command::Demo(DemoArgs {
            dir: PathBuf::from("tmp/demo")
        }))
    );
    assert_eq!(
        parse_words("demo --dir /x/world"),
        Ok(Command::Demo(DemoArgs {
            dir: PathBuf::from("/x/world")
        }))
    );
    assert_eq!(parse_words("demo --help"), Ok(Command::Help(Topic::Demo)));
    assert_eq!(parse_words("help demo"), Ok(Command::Help(Topic::Demo)));
    let error = parse_words("demo --dir").unwrap_err();
    assert!(error.message.contains("--dir needs a value"), "{error}");
}

#[test]
fn config_may_come_before_the_command() {
    let status = parse_words("--config /x.toml status --json").unwrap();
    assert_eq!(
        status,
        Command::Status(StatusArgs {
            config: Some(PathBuf::from("/x.toml")),
            json: true,
            limit: DEFAULT_STATUS_LIMIT,
        })
    );
    assert_eq!(
        parse_words("--config /x.toml doctor --offline"),
        Ok(Command::Doctor(DoctorArgs {
            config: Some(PathBuf::from("/x.toml")),
            offline: true,
        }))
    );
    let Ok(Command::Run(run)) = parse_words("--config /x.toml run --once --dry-run") else {
        panic!("run parses");
    };
    assert_eq!(run.config, Some(PathBuf::from("/x.toml")));
    assert_eq!(
        parse_words("--config /x.toml status --help"),
        Ok(Command::Help(Topic::Status))
    );
    let error = parse_words("--config /x.toml").unwrap_err();
    assert!(
        error.message.contains("needs a command after it"),
        "{error}"
    );
    let error = parse_words("--config /a.toml --config /b.toml status").unwrap_err();
    assert_eq!(error.message, "--config is given twice");
    let error = parse_words("--config /a.toml init").unwrap_err();
    assert_eq!(error.topic, Topic::Init);
}

#[test]
fn doctor_and_init() {
    assert_eq!(
        parse_words("doctor"),
        Ok(Command::Doctor(DoctorArgs::default()))
    );
    assert_eq!(parse_words("init"), Ok(Command::Init));
    assert_eq!(parse_words("init --help"), Ok(Command::Help(Topic::Init)));
    assert_eq!(parse_words("help doctor"), Ok(Command::Help(Topic::Doctor)));
    let error = parse_words("init --force").unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown option '--force' for 'maestro init' (see 'maestro init --help')"
    );
}

#[test]
fn probe_options() {
    assert_eq!(
        parse_words("protocol probe --live"),
        Ok(Command::Probe(ProbeArgs {
            config: None,
            live: true
        }))
    );
}
