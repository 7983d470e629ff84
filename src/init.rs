//! `maestro init`: a first `tmp/maestro.toml` for the git checkout the operator stands in.
//!
//! It copies `maestro.example.toml` (compiled in, so an installed binary has it) with `id` and
//! `repo_root` filled from the checkout, `workspace_root` and `project_slug` left to their
//! defaults (commented out), and keeps Maestro's directories out of `git status` by adding
//! `/tmp/` and `/.workspaces/` to `.git/info/exclude` when git does not ignore them already.
//! It never overwrites a file, never edits a tracked file (`.git/info/exclude` is local to the
//! clone), and needs no config: it is how the first one is made.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Lookup};

/// The commented example every key is documented in.
const EXAMPLE: &str = include_str!("../maestro.example.toml");

/// Where the config goes, relative to the checkout's top: the first place `maestro` looks.
const CONFIG_PATH: &str = "tmp/maestro.toml";

/// The directories kept out of `git status`: the config's and the default `workspace_root`.
const IGNORED: [&str; 2] = ["tmp", config::DEFAULT_WORKSPACE_DIR];

const GIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why init stopped.
#[derive(Debug)]
pub enum Error {
    /// Not run where it can work (no checkout, a config already there): the operator moves.
    Refused(String),
    /// Git or the filesystem failed.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(message) | Error::Failed(message) => write!(f, "init: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Runs `maestro init` in `lookup.cwd`: what it did, for stdout.
pub fn run(lookup: &Lookup) -> Result<String, Error> {
    init(&lookup.cwd)
}

fn init(cwd: &Path) -> Result<String, Error> {
    let top = git(cwd, &["rev-parse", "--show-toplevel"]).map_err(|output| {
        Error::Refused(format!(
            "{} is not in a git checkout ({output}); run it inside a clone of the repository Maestro will serve",
            cwd.display()
        ))
    })?;
    let top = PathBuf::from(top);
    let path = top.join(CONFIG_PATH);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Err(Error::Refused(format!(
            "{} already exists and is left as it is; edit it, or move it away and run init again",
            path.display()
        )));
    }
    let Some(top_text) = top.to_str() else {
        return Err(Error::Refused(format!(
            "the checkout's path {} is not UTF-8, which maestro.toml cannot hold; write the config by hand",
            top.display()
        )));
    };
    let id = project_id(&top);
    let text = render(&id, top_text);
    // What init writes must load: the example and this rendering are kept in step by a test,
    // and a broken file here would be a poor first contact.
    if let Err(error) = config::parse(&path, &text, None) {
        return Err(Error::Failed(format!(
            "the config it would write is invalid, a bug in maestro: {error}"
        )));
    }
    let excluded = exclude(&top)?;
    write_new(&path, &text)?;
    Ok(report(cwd, &top, &path, &id, &excluded))
}

/// A project id from the checkout's directory name: lowercase, `[a-z0-9-]`, no dashes at the
/// ends; `project` when nothing usable is left.
fn project_id(top: &Path) -> String {
    let name = top
        .file_name()
        .map(|name| name.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut id = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (id.is_empty() || id.ends_with('-'))) {
            id.push(c);
        }
    }
    let id = id.trim_end_matches('-').to_string();
    if id.is_empty() { "project".into() } else { id }
}

/// The example with `id` and `repo_root` filled in and the keys that must stay at their
/// defaults commented out: `workspace_root` (the example's is another machine's path) and
/// `project_slug` (a made-up slug would look configured; the operator sets the real one, here
/// or in WORKFLOW.md).
fn render(id: &str, repo_root: &str) -> String {
    let mut out = format!(
        "# Written by `maestro init` for {}: id and repo_root are filled in.\n\
         # Next: set [tracker] project_slug (unless WORKFLOW.md sets it), export the variables\n\
         # named below, then run `maestro doctor`.\n",
        crate::escape::text(repo_root)
    );
    for line in EXAMPLE.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        let replaced = match key {
            "id" if !line.starts_with('#') => format!("id = {}", toml_string(id)),
            "repo_root" if !line.starts_with('#') => {
                format!("repo_root = {}", toml_string(repo_root))
            }
            "workspace_root" | "project_slug" if !line.starts_with('#') => format!("# {line}"),
            _ => line.to_string(),
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Adds `/tmp/` and `/.workspaces/` to the clone's `info/exclude` when git does not ignore
/// them yet; returns the patterns added (empty when both were ignored already).
fn exclude(top: &Path) -> Result<Vec<String>, Error> {
    let mut missing = Vec::new();
    for dir in IGNORED {
        match git_status(top, &["check-ignore", "--quiet", "--", &format!("{dir}/")]) {
            Ok(0) => {}
            Ok(1) => missing.push(format!("/{dir}/")),
            Ok(_) | Err(_) => {
                return Err(Error::Failed(format!(
                    "git check-ignore failed in {}; is the checkout intact?",
                    top.display()
                )));
            }
        }
    }
    if missing.is_empty() {
        return Ok(missing);
    }
    let exclude = git(top, &["rev-parse", "--git-path", "info/exclude"])
        .map(|path| top.join(path))
        .map_err(|output| {
            Error::Failed(format!("cannot find the clone's info/exclude: {output}"))
        })?;
    let io_failure = |error: std::io::Error| {
        Error::Failed(format!("cannot update {}: {error}", exclude.display()))
    };
    if let Some(parent) = exclude.parent() {
        std::fs::create_dir_all(parent).map_err(io_failure)?;
    }
    let existing = match std::fs::read_to_string(&exclude) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(io_failure(error)),
    };
    let mut addition = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        addition.push('\n');
    }
    addition.push_str("# Maestro's config and lanes (added by maestro init)\n");
    for pattern in &missing {
        addition.push_str(pattern);
        addition.push('\n');
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&exclude)
        .and_then(|mut file| file.write_all(addition.as_bytes()))
        .map_err(io_failure)?;
    Ok(missing)
}

/// Creates `path` (and `tmp/`) with `text`; an existing file is never replaced, even one that
/// appeared since the check.
fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    let failure =
        |error: std::io::Error| Error::Failed(format!("cannot write {}: {error}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failure)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Refused(format!(
                "{} already exists and is left as it is",
                path.display()
            )),
            _ => failure(error),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(failure)
}

fn report(cwd: &Path, top: &Path, path: &Path, id: &str, excluded: &[String]) -> String {
    let at_top = same_dir(cwd, top);
    let shown = if at_top {
        PathBuf::from(CONFIG_PATH)
    } else {
        path.to_path_buf()
    };
    let mut out = format!(
        "maestro init: wrote {} (id {id}, repo_root {})\n",
        crate::escape::text(&shown.display().to_string()),
        crate::escape::text(&top.display().to_string())
    );
    if excluded.is_empty() {
        out.push_str("maestro init: git already ignores tmp/ and .workspaces/\n");
    } else {
        out.push_str(&format!(
            "maestro init: added {} to .git/info/exclude, so git status stays clean\n",
            excluded.join(" and ")
        ));
    }
    let doctor = if at_top {
        "maestro doctor".to_string()
    } else {
        format!(
            "maestro doctor --config {}",
            crate::escape::text(&path.display().to_string())
        )
    };
    out.push_str(&format!(
        "\nNext:\n  \
         \"${{EDITOR:-vi}}\" {}   # set [tracker] project_slug; check the variable names\n  \
         export LINEAR_API_KEY=... GITHUB_TOKEN=...   # the variables it names\n  \
         {doctor}   # checks everything a live run needs, one line per check\n",
        crate::escape::text(&shown.display().to_string())
    ));
    out
}

fn same_dir(left: &Path, right: &Path) -> bool {
    match (left.canonicalize(), right.canonicalize()) {
        (Ok(left), Ok(right)) => left == right,
        _ => false,
    }
}

/// `git args` in `dir`: its last output line, or why not.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let outcome = crate::shell::run_program(
        "git",
        args,
        dir,
        &[],
        &[("GIT_TERMINAL_PROMPT", "0")],
        GIT_TIMEOUT,
    )
    .map_err(|error| format!("cannot run git: {error}"))?;
    let last = outcome
        .output_tail
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    if outcome.success() {
        Ok(last)
    } else {
        Err(if last.is_empty() {
            "git failed".to_string()
        } else {
            last
        })
    }
}

/// `git args` in `dir`: its exit code.
fn git_status(dir: &Path, args: &[&str]) -> Result<i32, String> {
    let outcome = crate::shell::run_program(
        "git",
        args,
        dir,
        &[],
        &[("GIT_TERMINAL_PROMPT", "0")],
        GIT_TIMEOUT,
    )
    .map_err(|error| format!("cannot run git: {error}"))?;
    outcome
        .exit_code
        .ok_or_else(|| "git did not finish".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_directory_name() {
        assert_eq!(project_id(Path::new("/src/My_App.v2")), "my-app-v2");
        assert_eq!(project_id(Path::new("/src/--x--")), "x");
        assert_eq!(project_id(Path::new("/src/Ünï")), "n");
        assert_eq!(project_id(Path::new("/")), "project");
    }

    #[test]
    fn the_rendered_example_loads_with_the_filled_values() {
        let text = render("my-app", "/srv/src/my \"app\"");
        let config = config::parse(
            Path::new("/srv/src/my \"app\"/tmp/maestro.toml"),
            &text,
            None,
        )
        .unwrap();
        assert_eq!(config.id, "my-app");
        assert_eq!(config.repo_root, PathBuf::from("/srv/src/my \"app\""));
        assert_eq!(
            config.workspace_root,
            PathBuf::from("/srv/src/my \"app\"/.workspaces")
        );
        assert_eq!(config.tracker.project_slug, None);
    }
}
