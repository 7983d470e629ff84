//! Checks shared by the parser harnesses: where diagnostics point and what error text may say.

use maestro::toml_fields::{self, Diagnostic};

/// Every diagnostic names a line and column inside `text`: the line exists, and the column is
/// at most one past that line's last character (where "missing value" problems point).
pub fn check_diagnostics(text: &str, diagnostics: &[Diagnostic]) {
    assert!(
        !diagnostics.is_empty(),
        "an invalid document with no problem listed"
    );
    let lines: Vec<&str> = text.split('\n').collect();
    for diagnostic in diagnostics {
        let position = diagnostic.position;
        assert!(
            position.line >= 1 && position.line <= lines.len(),
            "line {} outside a {}-line input: {diagnostic:?}",
            position.line,
            lines.len()
        );
        let width = lines[position.line - 1].chars().count();
        assert!(
            position.column >= 1 && position.column <= width + 1,
            "column {} outside line {} of width {width}: {diagnostic:?}",
            position.column,
            position.line
        );
        assert!(
            !diagnostic.message.trim().is_empty(),
            "empty message: {diagnostic:?}"
        );
    }
    let sorted = diagnostics.windows(2).all(|pair| {
        (pair[0].position.line, pair[0].position.column)
            <= (pair[1].position.line, pair[1].position.column)
    });
    assert!(sorted, "diagnostics not in file order: {diagnostics:?}");
}

/// Error text is what operators and logs see: it never repeats a literal token from the input.
pub fn check_error_text(text: &str) {
    assert!(!text.is_empty());
    if let Some(prefix) = toml_fields::secret_prefix(text) {
        panic!("error text repeats a literal `{prefix}` token:\n{text}");
    }
}
