//! The node URI parser and the base URL parser: never panic; what parses is
//! canonical (its base URL parses to itself, and the URI we would format
//! from it parses back to the same value).
#![no_main]

use fedsync::pairing::{format_node_uri, parse_base_url, parse_node_uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let allow_insecure = flags & 1 == 1;

    if let Ok(uri) = parse_node_uri(input, allow_insecure) {
        assert_eq!(uri.token.len(), 32);
        assert!(uri.token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(uri.name.chars().count() <= 64);
        assert!(!uri.name.chars().any(char::is_control));
        // `Debug` hides the token (unless the input repeated it where it
        // is shown, in the host, the path or the name).
        let shown = format!("{}{}{}", uri.host, uri.base_url, uri.name);
        if !shown.contains(uri.token.as_str()) {
            assert!(!format!("{uri:?}").contains(uri.token.as_str()));
        }
        // The base URL is one an admin could give: it parses to itself.
        assert_eq!(
            parse_base_url(&uri.base_url, allow_insecure).as_deref(),
            Ok(uri.base_url.as_str()),
            "base URL of {input:?}"
        );
        // The URI we would hand out for the same values parses back to them.
        let public = url::Url::parse(&uri.base_url).expect("a base URL is a URL");
        let again = format_node_uri(&public, uri.node_id, &uri.token, &uri.name, allow_insecure);
        let reparsed = parse_node_uri(&again, allow_insecure)
            .unwrap_or_else(|e| panic!("{again:?} (from {input:?}) does not parse: {e}"));
        assert_eq!(reparsed, uri, "{again:?} from {input:?}");
    }

    if let Ok(base) = parse_base_url(input, allow_insecure) {
        assert_eq!(
            parse_base_url(&base, allow_insecure).as_deref(),
            Ok(base.as_str()),
            "base URL {input:?}"
        );
    }
});
