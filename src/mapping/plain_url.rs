//! A quick yes for the plainest http(s) URLs. A pull checks every URL value
//! of every record it maps, and `url::Url::parse` (which builds the parsed
//! URL) was a twentieth of the destination's CPU in the initial sync's
//! profile (issue 30). What this accepts, `url::Url::parse` accepts as an
//! http(s) URL (a property test holds it to that); anything else is left to
//! `url::Url::parse`.

/// `http://` or `https://`, a host name of plain labels whose last one
/// starts with a letter (never an IPv4 address, never punycode), an optional
/// port, and a rest of characters a URL takes as they are.
pub(super) fn plain_http_url(value: &str) -> bool {
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    plain_host(host) && port.is_none_or(plain_port) && tail.bytes().all(plain_tail_byte)
}

fn plain_host(host: &str) -> bool {
    let mut labels = host.split('.');
    host.len() <= 253
        && labels.clone().all(plain_label)
        && labels
            .next_back()
            .is_some_and(|last| last.as_bytes()[0].is_ascii_alphabetic())
}

/// 1-63 letters, digits and inner hyphens, never two hyphens in a row (no
/// `xn--` label, which IDNA would decode).
fn plain_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
        && !label.contains("--")
}

fn plain_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65_535)
}

/// Unreserved and sub-delimiter characters, and `:@/?#`; no `%`, no space,
/// no backslash, nothing beyond ASCII.
fn plain_tail_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?#".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::plain_http_url;
    use proptest::prelude::*;

    fn parses_as_http(value: &str) -> bool {
        url::Url::parse(value).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    }

    #[test]
    fn plain_urls_are_taken_and_the_rest_left_to_the_parser() {
        for yes in [
            "https://example.org/people/12",
            "http://example.org",
            "https://a-b.example.org:8443/x?y=1&z=2#top",
            "https://EXAMPLE.org/~me/(1)",
            "https://linkedin.com/in/alice",
        ] {
            assert!(plain_http_url(yes), "{yes}");
            assert!(parses_as_http(yes), "{yes}");
        }
        for no in [
            "",
            "ftp://example.org",
            "https://",
            "https://1.2.3.4/",
            "https://example.123/",
            "https://xn--nxasmq6b.com/",
            "https://-a.example.org/",
            "https://example.org:99999/",
            "https://example.org:/",
            "https://ex ample.org/",
            "https://example.org/a b",
            "https://example.org/%zz",
            "https://example.org./",
            "https://a..b.org/",
            "https://exämple.org/",
            "javascript:alert(1)",
            "https:example.org",
            "https://user@example.org/",
        ] {
            assert!(!plain_http_url(no), "{no}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever the quick check takes, the URL parser takes too.
        #[test]
        fn what_is_taken_parses(
            scheme in prop::sample::select(vec!["http://", "https://", "HTTP://", "http:/", "https:///"]),
            labels in prop::collection::vec("[a-zA-Z0-9-]{0,7}", 0..4),
            port in prop::option::of("[0-9]{0,6}"),
            tail in "[a-zA-Z0-9/?#:@!$&'()*+,;=._~% \\\\-]{0,20}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let value = format!("{scheme}{}{port}{tail}", labels.join("."));
            if plain_http_url(&value) {
                prop_assert!(parses_as_http(&value), "{} was taken but does not parse", value);
            }
        }
    }
}
