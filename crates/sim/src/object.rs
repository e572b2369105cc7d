//! Small helpers on objects as the simulator holds them (JSON): metadata fields, the
//! timestamps and random name suffixes Kubernetes writes.

use serde_json::Value;

/// A string field of `metadata` (`name`, `namespace`, `uid`), empty when absent.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or_default()
}

/// RFC 3339 timestamp with second precision, as Kubernetes writes them.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Five random characters as used by generateName and pod names of Jobs.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}
