//! A guard run over a config's text before the YAML parser sees it: flow collections
//! (`[...]`, `{...}`) nested deeper than [`MAX_NESTING`] are refused at once.
//!
//! The parser's own recursion limit is reached only after work that grows with the square of
//! the depth: `a: [[[...]]]` 100,000 levels deep (a 200 KB file) took over 20 s to be refused.
//! Block nesting needs no guard: each level costs a further indent on every line below it, so a
//! deep block document is large before it is deep. A real config nests a dozen levels.

/// Deepest flow nesting a config may have.
pub const MAX_NESTING: usize = 64;

/// Refuses `text` if its flow collections nest deeper than [`MAX_NESTING`], naming the line.
///
/// A `[` or `{` counts as an opening only where YAML reads one: at the start of a line or value
/// (after indentation, `:`, `-`, `?`, `,` or another opening), not inside a plain scalar such
/// as `regex: a[b]`. Quoted scalars and comments are skipped. A closing lowers the depth.
pub fn check(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut line = 1usize;
    // Whether the last character that was not white space may be followed by a value: the
    // start of a line, a `:` / `-` / `?` indicator, a `,` inside a flow collection, or an
    // opening that was counted.
    let mut value_may_start = true;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next_is_blank = b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        match c {
            b'\n' => {
                line += 1;
                value_may_start = true;
            }
            b' ' | b'\t' | b'\r' => {}
            b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if value_may_start => {
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    // `\"` in a double-quoted scalar; `''` in a single-quoted one closes and
                    // reopens, which this loop reads as two scalars.
                    i += if c == b'"' && b[i] == b'\\' { 2 } else { 1 };
                }
                value_may_start = false;
            }
            b'[' | b'{' if value_may_start => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "line {line}: flow collections nested deeper than {MAX_NESTING} levels"
                    ));
                }
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                value_may_start = false;
            }
            b',' => value_may_start = depth > 0,
            b':' => {
                let flow_value = depth > 0 && matches!(b.get(i + 1), Some(b'[' | b'{'));
                value_may_start = next_is_blank || flow_value;
            }
            b'-' | b'?' => value_may_start = next_is_blank,
            _ => value_may_start = false,
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_at_once_with_its_line() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = check(&format!("# a config\n{deep}")).unwrap_err();
        assert_eq!(e, "line 2: flow collections nested deeper than 64 levels");
        let mixed = format!("a:\n  - {}", "{b: [".repeat(40));
        assert!(check(&mixed).is_err());
    }

    #[test]
    fn brackets_in_plain_or_quoted_scalars_and_comments_do_not_count() {
        let regex = "x: ^[a-z]+ [[[[[[[[[[\ny: a,[[[[[[[[\nz: b:[[[[[[[[[[\n".repeat(100);
        assert_eq!(check(&regex), Ok(()));
        let json = format!("{}1{}", "{\"a\":[".repeat(40), "]}".repeat(40));
        assert!(check(&json).is_err(), "JSON-style flow nesting counts too");
        let quoted = format!("a: '{}'\nb: \"\\\"{}\"\n", "[".repeat(200), "{".repeat(200));
        assert_eq!(check(&quoted), Ok(()));
        let comment = format!("a: 1 # {}\n", "[".repeat(200));
        assert_eq!(check(&comment), Ok(()));
        let fine = format!(
            "a: {}1{}\n",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        );
        assert_eq!(check(&fine), Ok(()));
        assert!(serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&fine).is_ok());
    }
}
