//! The units settings are written in (Go-style durations, byte sizes, `host:port`), their
//! serde adapters, and the range checks that give every out-of-range value its path and bounds.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Parses Go-style durations: `250ms`, `5s`, `1m30s`, `2h`, `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let err = || format!("invalid duration {s:?}: expected e.g. \"200ms\", \"5s\", \"1m30s\"");
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    // Checked here, once for every field: a larger value overflows the clock arithmetic of
    // timers (a panic at run time), and none of sluice's settings means anything beyond it.
    match Duration::try_from_secs_f64(total) {
        Ok(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!(
            "invalid duration {s:?}: durations are at most 8760h (one year)"
        )),
    }
}

/// The longest duration any setting takes.
pub const MAX_DURATION: Duration = Duration::from_secs(8760 * 3600);

/// `d` as config text (`250ms`, `30s`, `5m`, `2h`), for range errors.
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Records an error at `path` unless `min <= d <= max`.
pub fn check_duration(
    errors: &mut Vec<ConfigError>,
    path: impl Into<String>,
    d: Duration,
    min: Duration,
    max: Duration,
) {
    if d < min || d > max {
        errors.push(ConfigError::new(
            path,
            format!(
                "must be between {} and {} (got {})",
                show_duration(min),
                show_duration(max),
                show_duration(d)
            ),
        ));
    }
}

/// Records an error at `path` unless `min <= n <= max`; `unit` names what is counted.
pub fn check_count(
    errors: &mut Vec<ConfigError>,
    path: impl Into<String>,
    n: u64,
    min: u64,
    max: u64,
    unit: &str,
) {
    if n < min || n > max {
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        errors.push(ConfigError::new(
            path,
            format!("must be between {min} and {max}{unit} (got {n})"),
        ));
    }
}

/// Serde adapter for duration strings, for `deserialize_with`.
/// An optional duration: absent (via `#[serde(default)]`) means `None`.
pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

/// Checks a `host:port` endpoint without resolving it, so `validate` works offline.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let bad = || format!("invalid socket address {endpoint:?}: expected host:port");
    if endpoint.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if host_ok { Ok(()) } else { Err(bad()) }
}

/// Byte sizes: a number of bytes or a string with a unit, `10MiB`, `512KiB`, `1GiB`, `100MB`.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(usize),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Text(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
    }
}

pub fn parse_byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..split]
        .parse()
        .map_err(|_| format!("invalid size {s:?}: expected e.g. 10MiB"))?;
    // Units in any case, as the Collector takes them (`1kb`, `16KiB`).
    let mult: usize = match t[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => return Err(format!("invalid size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go_syntax() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        let digits = "9".repeat(400);
        assert!(
            parse_duration(&format!("{digits}s"))
                .unwrap_err()
                .contains("at most 8760h")
        );
        assert!(parse_duration("10000000000000000000s").is_err());
        assert!(parse_duration("8761h").is_err());
        assert_eq!(parse_duration("8760h").unwrap(), MAX_DURATION);
    }

    #[test]
    fn range_errors_show_the_bounds_in_config_units() {
        let mut errors = Vec::new();
        check_duration(
            &mut errors,
            "x.timeout",
            Duration::from_secs(7200),
            Duration::from_millis(1),
            Duration::from_secs(3600),
        );
        check_count(&mut errors, "x.n", 0, 1, 10, "connections");
        check_count(&mut errors, "x.m", 5, 1, 10, "");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "x.timeout: must be between 1ms and 1h (got 2h)",
                "x.n: must be between 1 and 10 connections (got 0)"
            ]
        );
    }

    #[test]
    fn endpoints_need_host_and_numeric_port() {
        assert!(check_endpoint("localhost:9000").is_ok());
        assert!(check_endpoint("[::1]:9000").is_ok());
        assert!(check_endpoint("0.0.0.0:4317").is_ok());
        assert_eq!(
            check_endpoint("x:y").unwrap_err(),
            "invalid socket address \"x:y\": expected host:port"
        );
        assert!(check_endpoint("9000").is_err());
    }

    #[test]
    fn byte_sizes_accept_binary_units() {
        assert_eq!(parse_byte_size("10MiB").unwrap(), 10 << 20);
        assert_eq!(parse_byte_size("512").unwrap(), 512);
        assert!(parse_byte_size("5 parsecs").is_err());
    }
}
