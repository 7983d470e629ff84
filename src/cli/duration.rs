//! Durations as the operator types them (`--deadline 45m`): whole numbers with `s`, `m` or `h`.
//! Parsing only; what a deadline means is `run::deadline`'s.

use std::time::Duration;

/// Parses a duration as the command line gives it: whole numbers with a unit, `s`, `m` or `h`,
/// one or more (`45m`, `90s`, `1h30m`). At least one second.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut digits = String::new();
    let mut parts = 0;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return None,
        };
        let value: u64 = digits.parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
        digits.clear();
        parts += 1;
    }
    if !digits.is_empty() || parts == 0 || total == 0 {
        return None;
    }
    Some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("45m"), Some(Duration::from_secs(2700)));
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "45", "m", "0s", "1.5h", "-5m", "5 m", "5d", "1h30"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
