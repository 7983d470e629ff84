//! HTML escaping for the dashboard: the one way text reaches the page. Knows nothing of
//! routes or the snapshot.

/// Escapes text for HTML element and attribute content. Control characters are first made
/// visible ([`crate::escape::text`]): the page is read in a browser, but it is also fetched
/// with `curl` into terminals and logs, where a raw ESC would act.
pub(super) fn escape(text: &str) -> String {
    let text = crate::escape::text(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
