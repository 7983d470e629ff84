//! The real codex the suite runs against (issue #16, item 7): found, installed once with npm,
//! or a failure that says so where a person sees it, so skipped tests never pass unnoticed.

use crate::support::codex::{PINNED, codex_lookup};

/// Fails the run when the real-codex tests would be skipped, naming why and what to do;
/// `MAESTRO_ALLOW_SKIP=1` accepts the skips (they print `skipped: codex not found`).
#[test]
fn the_real_codex_is_here() {
    match codex_lookup() {
        Ok(path) => {
            let version = std::process::Command::new(path)
                .arg("--version")
                .output()
                .expect("the codex found runs");
            let version = String::from_utf8_lossy(&version.stdout);
            println!("codex: {} ({})", path.display(), version.trim());
            assert!(
                version.contains("codex-cli"),
                "{} --version printed {version:?}",
                path.display()
            );
        }
        Err(_) if std::env::var("MAESTRO_ALLOW_SKIP").as_deref() == Ok("1") => {
            println!(
                "skipped: codex not found; MAESTRO_ALLOW_SKIP=1 accepts skipping the real-codex tests"
            );
        }
        Err(why) => panic!(
            "the real-codex tests cannot run, so they would pass without testing anything: {why}.\n\
             Install npm (the suite then installs @openai/codex@{PINNED} itself, once), or install \
             that codex and set MAESTRO_CODEX_BIN to it, or set MAESTRO_ALLOW_SKIP=1 to accept the skips."
        ),
    }
}
