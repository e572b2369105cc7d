//! Parsing of `key=value` flags (`--label severity=critical`).

use std::collections::BTreeMap;

/// Parses one `key=value` pair; the key must be non-empty, the value may be empty.
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        Some(_) => Err(format!("`{s}`: the key before `=` is empty")),
        None => Err(format!("`{s}`: expected key=value")),
    }
}

/// Collects pairs into a map (a later pair wins over an earlier one with the same key).
pub fn to_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        assert_eq!(
            parse_pair("severity=critical"),
            Ok(("severity".into(), "critical".into()))
        );
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_pair("empty="), Ok(("empty".into(), String::new())));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=x").is_err());
    }
}
