//! The request head: reading it up to its blank line within a size limit, and deciding whether
//! it is HTTP/1.x at all.
//!
//! Knows nothing of sockets, deadlines or routes: [`read_head`] takes any reader (the server
//! hands it one that enforces the head deadline; `fuzz/` one that hands out chunks), and
//! [`parse_head`] turns the head into a method and a target or rejects it.

use std::io::Read;

/// Longest request head accepted (request line plus headers).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Why no head came out of a reader.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// More than [`MAX_HEAD_BYTES`] without a blank line.
    TooLarge,
    /// The reader timed out (the server's head deadline passed) before the blank line.
    TimedOut,
    /// Reset, or closed before a full head arrived: nothing to answer.
    Closed,
}

/// Reads up to the blank line that ends the request head.
pub(crate) fn read_head(stream: &mut dyn Read) -> Result<String, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buffer) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(HeadError::TimedOut);
            }
            Err(_) => return Err(HeadError::Closed),
        };
        // Only the new bytes, and the three before them where a blank line may have begun, can
        // end the head. Rescanning the whole head on every read costs time quadratic in its
        // size when a client sends one byte per packet (found by fuzz/: about a minute of
        // instrumented CPU for one 16 KiB head).
        let scan_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buffer[..n]);
        if let Some(end) = find_head_end(&head[scan_from..]) {
            head.truncate(scan_from + end);
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Whether `bytes` hold a whole head (a blank line within the size limit).
pub(crate) fn is_complete(bytes: &[u8]) -> bool {
    find_head_end(&bytes[..bytes.len().min(MAX_HEAD_BYTES + 4)]).is_some()
}

/// Where the head ends: the first blank line, whichever line ending the client uses (a bare
/// `\n\n` earlier in the stream wins over a later `\r\n\r\n`, which would be body bytes).
fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let crlf = bytes.windows(4).position(|window| window == b"\r\n\r\n");
    let lf = bytes.windows(2).position(|window| window == b"\n\n");
    match (crlf, lf) {
        (Some(crlf), Some(lf)) => Some(crlf.min(lf)),
        (crlf, lf) => crlf.or(lf),
    }
}

/// A request head → (method, target), or `None` when it is not HTTP/1.x: the request line
/// must be `METHOD TARGET HTTP/1.0|1.1` with an origin-form target of visible ASCII, and every
/// other line a `name: value` field (RFC 9112 sections 3 and 5). A client speaking something
/// else (TLS, a port scanner, a mangled proxy) gets a 400 rather than a page.
pub(crate) fn parse_head(head: &str) -> Option<(&str, &str)> {
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request = parse_request_line(lines.next()?)?;
    lines.all(is_field_line).then_some(request)
}

fn parse_request_line(line: &str) -> Option<(&str, &str)> {
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    let valid = !method.is_empty()
        && method.chars().all(|c| c.is_ascii_uppercase())
        && target.starts_with('/')
        && target.bytes().all(|byte| byte.is_ascii_graphic())
        && matches!(version, "HTTP/1.1" | "HTTP/1.0")
        && parts.next().is_none();
    valid.then_some((method, target))
}

/// `name: value` with a token name (no whitespace before the colon, no folded continuation
/// line) and no control characters but tab in the value.
fn is_field_line(line: &str) -> bool {
    let Some((name, value)) = line.split_once(':') else {
        return false;
    };
    let token = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    !name.is_empty()
        && name.bytes().all(token)
        && value
            .bytes()
            .all(|byte| byte == b'\t' || (byte >= 0x20 && byte != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_head("GET /state HTTP/1.1\r\nHost: x"),
            Some(("GET", "/state"))
        );
        assert_eq!(parse_head("GET /state HTTP/1.0"), Some(("GET", "/state")));
        assert_eq!(parse_head("HEAD / HTTP/1.1"), Some(("HEAD", "/")));
        assert_eq!(parse_head("GET /state"), None);
        assert_eq!(parse_head("get /state HTTP/1.1"), None);
        assert_eq!(parse_head("GET state HTTP/1.1"), None);
        assert_eq!(parse_head("\u{0}\u{1}garbage"), None);
    }

    /// Found by `fuzz/` (operator_http_request): binary bytes in a header line were served the
    /// page, because only the request line was checked.
    #[test]
    fn garbage_header_lines_are_not_a_head() {
        assert_eq!(
            parse_head(
                "GET /api/v1/abc-1?x=1 HTTP/1.1\r\nHost: x\r\nAc\x02\0\0\0\0\0\0\0cept: */*"
            ),
            None
        );
        for head in [
            "GET /state HTTP/1.1\r\nno colon here",
            "GET /state HTTP/1.1\r\n folded: continuation",
            "GET /state HTTP/1.1\r\nName : space before the colon",
            "GET /state HTTP/1.1\r\n: no name",
            "GET /state HTTP/1.1\r\nX: bare\rCR",
            "GET /state HTTP/1.1\r\nX: nul\0",
        ] {
            assert_eq!(parse_head(head), None, "{head:?}");
        }
        assert_eq!(
            parse_head("GET /state HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nUser-Agent: a\tb é"),
            Some(("GET", "/state"))
        );
    }

    #[test]
    fn only_http_1_0_and_1_1_with_an_ascii_target_are_requests() {
        for head in [
            "GET /state HTTP/1.zzz",
            "GET /state HTTP/1.",
            "GET /state HTTP/2.0",
            "GET /st\u{e9}te HTTP/1.1",
            "GET /state\u{7f} HTTP/1.1",
        ] {
            assert_eq!(parse_head(head), None, "{head:?}");
        }
    }

    /// Hands out one byte per read, as a client sending one byte per packet does.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let Some((&first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buffer[0] = first;
            self.0 = rest;
            Ok(1)
        }
    }

    /// Found by `fuzz/` (operator_http_request ran at a few hundred inputs per second): the
    /// whole head was rescanned after every read. Only new bytes are scanned now; a blank line
    /// split across reads must still end the head, at its first occurrence.
    #[test]
    fn a_head_dribbled_one_byte_per_read_ends_at_its_first_blank_line() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"GET /state HTTP/1.1\r\nHost: x\r\n\r\nbody",
                "GET /state HTTP/1.1\r\nHost: x",
            ),
            (b"GET / HTTP/1.1\n\nbody\r\n\r\n", "GET / HTTP/1.1"),
            (
                b"GET / HTTP/1.1\r\nA: b\n\nrest\r\n\r\n",
                "GET / HTTP/1.1\r\nA: b",
            ),
        ];
        for (request, head) in cases {
            let got = read_head(&mut Dribble(request)).ok();
            assert_eq!(got.as_deref(), Some(head), "{request:?}");
        }
        let endless = [b'a'; MAX_HEAD_BYTES + 2];
        assert_eq!(read_head(&mut Dribble(&endless)), Err(HeadError::TooLarge));
    }

    /// A reader that times out, as a socket does once the head deadline has passed.
    struct Expired;

    impl Read for Expired {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::TimedOut.into())
        }
    }

    #[test]
    fn a_timeout_is_told_apart_from_a_closed_connection() {
        assert_eq!(read_head(&mut Expired), Err(HeadError::TimedOut));
        assert_eq!(read_head(&mut Dribble(b"GET /")), Err(HeadError::Closed));
    }

    #[test]
    fn head_end_detection() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x"), None);
        // The first blank line ends the head, whichever line ending it uses.
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nbody\r\n\r\n"), Some(14));
    }
}
