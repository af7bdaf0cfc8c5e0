//! Record values as the JSON text of the `values` column, written by hand:
//! every page's insert serialises each record's values, and serde's
//! map serialiser was a tenth of the destination's runtime in the initial
//! sync's profile (issue 30). The text is byte for byte what
//! `serde_json::to_string` writes for the same map.

use crate::domain::RecordValues;

/// `{"field":["value",...],...}` in the map's (sorted) order.
pub fn values_to_json(values: &RecordValues) -> String {
    let size: usize = values
        .iter()
        .map(|(name, list)| name.len() + 6 + list.iter().map(|v| v.len() + 3).sum::<usize>())
        .sum();
    let mut out = String::with_capacity(size + 2);
    out.push('{');
    for (i, (name, list)) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, name);
        out.push_str(":[");
        for (j, value) in list.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_str(&mut out, value);
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// One JSON string: as is when nothing in it needs escaping (checked
/// without branching per byte), else escaped as serde_json escapes.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push_str(s);
    } else {
        push_escaped(out, s);
    }
    out.push('"');
}

fn push_escaped(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        // Only ASCII bytes are escaped: `start..i` ends on a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[&str])]) -> RecordValues {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn the_text_is_what_serde_json_writes() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        let cases = [
            map(&[]),
            map(&[("name", &["Person 1"])]),
            map(&[("tags", &["red", "green"]), ("empty", &[]), ("z", &[""])]),
            map(&[("quote\"d", &["a\"b", "back\\slash", "tab\tnew\nline\r"])]),
            map(&[("ctl", &[controls.as_str(), "\u{7f}", "\u{8}\u{c}"])]),
            map(&[("čšž", &["ünïcödé ✓", "日本語", "emoji 🦀 \"x\""])]),
        ];
        for values in &cases {
            assert_eq!(
                values_to_json(values),
                serde_json::to_string(values).unwrap(),
                "{values:?}"
            );
        }
    }

    #[test]
    fn the_text_reads_back_as_the_same_values() {
        let values = map(&[("a\u{1}b", &["x\u{1f}y", "\\\"", "plain"])]);
        let back: RecordValues = serde_json::from_str(&values_to_json(&values)).unwrap();
        assert_eq!(back, values);
    }
}
