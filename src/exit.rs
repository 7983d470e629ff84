//! Process exit codes: the contract shell scripts branch on.
//!
//! Every command's result is mapped to exactly one of these, in `commands` (and `main` for the
//! command line itself). The table is repeated in README.md and in `maestro --help`; a test keeps
//! the three in step. Codes are never reused for another meaning. The daemon reads its children's
//! codes back through [`Written`], so it never names a code itself.

/// One documented process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked (for `run --once`: the issue was handed off for review).
    Success,
    /// A runtime failure: tracker or git unreachable, I/O error, a probe step failed.
    Failure,
    /// Bad command line, or an invalid maestro.toml / WORKFLOW.md: fix the input and rerun.
    Usage,
    /// `run --once`: nothing to do (no eligible issue, or another process holds the issue or slot).
    NothingToDo,
    /// `run --once`: the attempt failed and a retry is scheduled (attempts remain).
    RetryScheduled,
    /// `run --once`: the issue needs a human (needs-attention path, budget exhausted, policy).
    HumanRequired,
}

impl Exit {
    /// The numeric code handed to the operating system.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::NothingToDo => 3,
            Exit::RetryScheduled => 4,
            Exit::HumanRequired => 5,
        }
    }

    /// Every code, in numeric order, for docs and tests.
    pub const ALL: [Exit; 6] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::NothingToDo,
        Exit::RetryScheduled,
        Exit::HumanRequired,
    ];

    /// The one-line meaning shown in `--help` and README.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success (run --once: issue handed off for review)",
            Exit::Failure => {
                "runtime failure (tracker, git, codex or I/O error; probe step failed)"
            }
            Exit::Usage => {
                "usage or configuration error (bad flag, invalid maestro.toml or WORKFLOW.md)"
            }
            Exit::NothingToDo => {
                "run --once: nothing to do (no eligible issue, or issue/slot held elsewhere)"
            }
            Exit::RetryScheduled => "run --once: attempt failed, retry scheduled",
            Exit::HumanRequired => "run --once: issue needs a human (needs-attention path)",
        }
    }
}

/// What a `run --once` child already wrote to the tracker, read back from its exit code: the
/// codes it exits with only after writing that outcome (0 handoff, 5 human path, 3 nothing).
/// The daemon reads a finished child through this, never through the codes themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Exit 0: the review handoff.
    Handoff,
    /// Exit 5: the needs-attention path.
    HumanRequired,
    /// Exit 3: nothing (no eligible issue, held elsewhere, or skipped after the lease).
    Nothing,
}

impl Written {
    /// The outcome `code` stands for, if it is one of those codes (`None`: killed by a
    /// signal, a failure, a scheduled retry).
    pub fn from_code(code: Option<i32>) -> Option<Written> {
        let code = u8::try_from(code?).ok()?;
        match Exit::ALL.into_iter().find(|exit| exit.code() == code)? {
            Exit::Success => Some(Written::Handoff),
            Exit::HumanRequired => Some(Written::HumanRequired),
            Exit::NothingToDo => Some(Written::Nothing),
            Exit::Failure | Exit::Usage | Exit::RetryScheduled => None,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// The exit-code table as printed in `maestro --help`.
pub fn table() -> String {
    let mut out = String::new();
    for exit in Exit::ALL {
        out.push_str(&format!("  {}  {}\n", exit.code(), exit.meaning()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_ordered() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|exit| exit.code()).collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn only_the_codes_of_a_written_outcome_read_back_as_one() {
        let read: Vec<Option<Written>> = [Some(0), Some(1), Some(2), Some(3), Some(4), Some(5)]
            .into_iter()
            .chain([None, Some(-1), Some(256)])
            .map(Written::from_code)
            .collect();
        assert_eq!(
            read,
            vec![
                Some(Written::Handoff),
                None,
                None,
                Some(Written::Nothing),
                None,
                Some(Written::HumanRequired),
                None,
                None,
                None,
            ]
        );
    }
}
