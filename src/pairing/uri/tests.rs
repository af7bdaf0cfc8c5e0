use super::*;

const TOKEN: &str = "Secret0Secret0Secret0Secret01234";

fn ok(input: &str, insecure: bool) -> NodeUri {
    parse_node_uri(input, insecure).unwrap_or_else(|e| panic!("{input:?} must parse: {e}"))
}

fn err(input: &str, insecure: bool) -> UriError {
    match parse_node_uri(input, insecure) {
        Ok(uri) => panic!("{input:?} must be refused, parsed as {uri:?}"),
        Err(e) => e,
    }
}

fn check(input: &str, expected: Result<(u64, &str, &str), &str>) {
    match expected {
        Ok((id, base_url, name)) => {
            let uri = ok(input, false);
            assert_eq!(uri.node_id.get(), id, "{input}");
            assert_eq!(uri.base_url, base_url, "{input}");
            assert_eq!(uri.name, name, "{input}");
            assert_eq!(uri.token.as_str(), TOKEN, "{input}");
        }
        Err(code) => {
            let e = err(input, false);
            assert_eq!(e.code(), code, "{input}: {e}");
            assert!(!e.to_string().contains(TOKEN), "the token leaked into {e}");
        }
    }
}

#[test]
fn corteza_decode_vectors_8_1() {
    check(
        &format!("https://42:{TOKEN}@example.tld/federation?name=Noddy"),
        Ok((42, "https://example.tld/federation", "Noddy")),
    );
    check(
        &format!("https://42:{TOKEN}@example.tld"),
        Ok((42, "https://example.tld/", "")),
    );
    check("https://42@example.tld", Err("pairingURITokenInvalid"));
    check(
        &format!("https://:{TOKEN}@example.tld"),
        Err("pairingURISourceIDInvalid"),
    );
    check("https://this is not a valid url", Err("pairingURIInvalid"));
    // 8.1's sample token has hyphens; U5 wins: only [A-Za-z0-9], as Corteza generates.
    check(
        "https://42:secret-secret-secret-secret-1234@example.tld/federation?name=Noddy",
        Err("pairingURITokenInvalid"),
    );
}

#[test]
fn the_real_corteza_uri_parses() {
    // 002-A-generate-uri.json, with a real-shaped token.
    let uri = ok(
        &format!("https://523615093115650149:{TOKEN}@127.0.0.1:28081/federation?name=nodeA"),
        false,
    );
    assert_eq!(uri.node_id.get(), 523615093115650149);
    assert_eq!(uri.base_url, "https://127.0.0.1:28081/federation");
    assert_eq!(uri.name, "nodeA");
    assert_eq!(uri.host, "127.0.0.1:28081");
}

#[test]
fn the_documented_corteza_scheme_means_https_federation() {
    let uri = ok(&format!("corteza://42:{TOKEN}@a.example.com?name=A"), false);
    assert_eq!(uri.base_url, "https://a.example.com/federation");
    let uri = ok(
        &format!("corteza://42:{TOKEN}@a.example.com/api/federation"),
        false,
    );
    assert_eq!(uri.base_url, "https://a.example.com/api/federation");
    let uri = ok(
        &format!("corteza+federation://42:{TOKEN}@127.0.0.1:9?name=A"),
        true,
    );
    assert_eq!(uri.base_url, "http://127.0.0.1:9/federation");
}

#[test]
fn u1_schemes() {
    let http = format!("http://42:{TOKEN}@127.0.0.1:8090/federation");
    assert!(matches!(err(&http, false), UriError::Insecure(_)));
    assert_eq!(ok(&http, true).base_url, "http://127.0.0.1:8090/federation");
    let http_public = format!("http://42:{TOKEN}@b.example.com/federation");
    assert!(
        matches!(err(&http_public, true), UriError::Insecure(_)),
        "http only to loopback"
    );
    for scheme in ["ftp", "file", "gopher", "javascript"] {
        check(
            &format!("{scheme}://42:{TOKEN}@example.tld/x"),
            Err("pairingURIInvalid"),
        );
    }
    check(&format!("42:{TOKEN}@example.tld"), Err("pairingURIInvalid"));
}

#[test]
fn u3_ipv4_spellings() {
    for host in [
        "2130706433",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.1",
        "017700000001",
    ] {
        check(
            &format!("https://42:{TOKEN}@{host}/federation"),
            Err("pairingURIInvalid"),
        );
    }
    // The dotted-decimal spelling parses (the SSRF guard decides at connect time).
    assert_eq!(
        ok(&format!("https://42:{TOKEN}@93.184.216.34/f"), false).host,
        "93.184.216.34"
    );
}

#[test]
fn u5_tokens() {
    for token in [
        &"a".repeat(31),
        &"a".repeat(33),
        "Secret0Secret0Secret0Secret0123!",
        "%53ecret0Secret0Secret0Secret0123",
        "Secret0Secret0Secret0Secret0123%41",
        "",
    ] {
        check(
            &format!("https://42:{token}@example.tld/federation"),
            Err("pairingURITokenInvalid"),
        );
    }
    // U9: a second colon lands in the token, which then has the wrong shape.
    check(
        &format!("https://42:{TOKEN}:x@example.tld"),
        Err("pairingURITokenInvalid"),
    );
}

#[test]
fn u6_node_ids() {
    for id in [
        "0",
        "-1",
        "+42",
        "42%20",
        "0x2a",
        "18446744073709551616",
        "042",
        "%EF%BC%94%EF%BC%92",
        "４２",
    ] {
        let input = format!("https://{id}:{TOKEN}@example.tld/federation");
        match parse_node_uri(&input, false) {
            Ok(uri) => panic!("{input:?} parsed as {uri:?}"),
            Err(e) => assert!(
                matches!(e, UriError::SourceIdInvalid | UriError::Invalid(_)),
                "{input}: {e}"
            ),
        }
    }
    // A space before the id: refused either as a bad URL or a bad id.
    assert!(parse_node_uri(&format!("https:// 42:{TOKEN}@example.tld"), false).is_err());
    check(
        &format!("https://18446744073709551615:{TOKEN}@example.tld"),
        Ok((u64::MAX, "https://example.tld/", "")),
    );
}

#[test]
fn u7_paths() {
    for path in [
        "/federation/../admin",
        "/federation/./x",
        "/%2e%2e/admin",
        "/federation%2fadmin",
        "/federation%5cadmin",
        "/%252e%252e/admin",
        "/federation\\admin",
        "//federation",
        "/fed eration",
    ] {
        check(
            &format!("https://42:{TOKEN}@example.tld{path}"),
            Err("pairingURIInvalid"),
        );
    }
    check(
        &format!("https://42:{TOKEN}@example.tld/api/federation/"),
        Ok((42, "https://example.tld/api/federation", "")),
    );
}

/// Found by the node_uri fuzz target: a node URI accepted `/@x` in its base
/// path, which `parse_base_url` refuses, so the base URL it gave could not be
/// entered again by an admin.
#[test]
fn u7_base_paths_have_no_at_sign() {
    check(
        &format!("https://1:{TOKEN}@[::1]:8443/@OpQa/b/?name=x"),
        Err("pairingURIInvalid"),
    );
    check(
        &format!("https://1:{TOKEN}@example.tld/fed@eration"),
        Err("pairingURIInvalid"),
    );
    assert!(parse_base_url("https://example.tld/@x", false).is_err());
}

#[test]
fn u8_names_are_capped_and_inert() {
    let long = "n".repeat(100);
    assert_eq!(
        ok(
            &format!("https://42:{TOKEN}@example.tld?name={long}"),
            false
        )
        .name
        .len(),
        64
    );
    let tricky = ok(
        &format!("https://42:{TOKEN}@example.tld?name=%3Cscript%3Ea%E2%80%AEb%0Ac%07"),
        false,
    );
    assert_eq!(tricky.name, "<script>abc");
    let first_wins = ok(
        &format!("https://42:{TOKEN}@example.tld?x=1&name=A&name=B"),
        false,
    );
    assert_eq!(first_wins.name, "A");
    let huge = "n".repeat(10 * 1024);
    check(
        &format!("https://42:{TOKEN}@example.tld?name={huge}"),
        Err("pairingURIInvalid"),
    );
}

#[test]
fn u9_fragments_ports_and_idn() {
    check(
        &format!("https://42:{TOKEN}@example.tld/federation#frag"),
        Err("pairingURIInvalid"),
    );
    check(
        &format!("https://42:{TOKEN}@example.tld:0/federation"),
        Err("pairingURIInvalid"),
    );
    check(
        &format!("https://42:{TOKEN}@example.tld:65536/federation"),
        Err("pairingURIInvalid"),
    );
    let idn = ok(
        &format!("https://42:{TOKEN}@bücher.example/federation"),
        false,
    );
    assert_eq!(idn.host, "xn--bcher-kva.example", "shown in punycode");
    assert_eq!(idn.base_url, "https://xn--bcher-kva.example/federation");
    let v6 = ok(
        &format!("https://42:{TOKEN}@[2001:db8::1]:8443/federation"),
        false,
    );
    assert_eq!(v6.base_url, "https://[2001:db8::1]:8443/federation");
}

#[test]
fn u10_length() {
    let padding = "a".repeat(MAX_URI_LEN);
    check(
        &format!("https://42:{TOKEN}@example.tld/{padding}"),
        Err("pairingURIInvalid"),
    );
}

#[test]
fn debug_never_shows_the_token() {
    let uri = ok(&format!("https://42:{TOKEN}@example.tld"), false);
    assert!(!format!("{uri:?}").contains(TOKEN));
}

/// Corteza's own parser rules (reference 2.3), re-implemented: what a
/// Corteza invitee will make of the URIs we hand out (federation-security 4.8 W1).
fn corteza_parse(uri: &str) -> (u64, String, String, String) {
    let url = Url::parse(uri).expect("Corteza: URL parses");
    let token = url.password().unwrap_or("").to_owned();
    assert_eq!(token.len(), 32, "Corteza: 32-byte token");
    let id: u64 = url
        .username()
        .parse()
        .expect("Corteza: base-10 uint64 user");
    assert_ne!(id, 0);
    let name = url
        .query_pairs()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap()),
        None => url.host_str().unwrap().to_owned(),
    };
    let base = format!(
        "{}://{}/{}",
        url.scheme(),
        host,
        url.path().trim_matches('/')
    );
    (id, token, name, base)
}

#[test]
fn corteza_encode_vector_8_2_and_round_trips() {
    let public = Url::parse("https://example.tld/federation").unwrap();
    let node = NodeId::from_u64(42).unwrap();
    assert_eq!(
        format_node_uri(&public, node, "secret", "Noddy", false).as_str(),
        "https://42:secret@example.tld/federation?name=Noddy"
    );
    for (public, label, insecure, base) in [
        (
            "https://a.example.com/federation",
            "Server A",
            false,
            "https://a.example.com/federation",
        ),
        (
            "https://a.example.com:8443/api/federation/",
            "",
            false,
            "https://a.example.com:8443/api/federation",
        ),
        (
            "http://127.0.0.1:8090/federation",
            "dev & test",
            true,
            "http://127.0.0.1:8090/federation",
        ),
        // Without the insecure flag an http public URL still yields https.
        (
            "http://a.example.com/federation",
            "x",
            false,
            "https://a.example.com/federation",
        ),
    ] {
        let uri = format_node_uri(&Url::parse(public).unwrap(), node, TOKEN, label, insecure);
        let ours = ok(&uri, insecure);
        assert_eq!(ours.node_id, node);
        assert_eq!(ours.token.as_str(), TOKEN);
        assert_eq!(ours.name, label);
        assert_eq!(ours.base_url, base);
        let (id, token, name, corteza_base) = corteza_parse(&uri);
        assert_eq!((id, token.as_str(), name.as_str()), (42, TOKEN, label));
        assert_eq!(corteza_base, base, "Corteza reads the same base URL");
    }
}

#[test]
fn admin_base_urls() {
    let check_base = |input: &str, insecure: bool, expected: Result<&str, ()>| {
        let got = parse_base_url(input, insecure);
        match expected {
            Ok(base) => assert_eq!(got.as_deref(), Ok(base), "{input}"),
            Err(()) => assert!(got.is_err(), "{input} must be refused: {got:?}"),
        }
    };
    check_base(
        "https://b.example.com/federation",
        false,
        Ok("https://b.example.com/federation"),
    );
    check_base(
        "https://b.example.com/api/federation/",
        false,
        Ok("https://b.example.com/api/federation"),
    );
    check_base("https://b.example.com", false, Ok("https://b.example.com/"));
    check_base(
        "https://[::1]:8443/federation",
        false,
        Ok("https://[::1]:8443/federation"),
    );
    check_base(
        "http://127.0.0.1:8090/federation",
        true,
        Ok("http://127.0.0.1:8090/federation"),
    );
    check_base("http://127.0.0.1:8090/federation", false, Err(()));
    check_base("http://b.example.com/federation", true, Err(()));
    check_base("https://u:p@b.example.com/federation", false, Err(()));
    check_base("https://b.example.com/federation?x=1", false, Err(()));
    check_base("https://b.example.com/federation/../admin", false, Err(()));
    check_base("https://2130706433/federation", false, Err(()));
    check_base("ftp://b.example.com/x", false, Err(()));
    check_base("b.example.com/federation", false, Err(()));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9]{0,10}(\\.[a-z][a-z0-9]{0,6}){0,2}",
            (1u8..=223, any::<u8>(), any::<u8>(), 1u8..=254)
                .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
            Just("[::1]".to_owned()),
            Just("[2001:db8::7]".to_owned()),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        proptest::collection::vec("[a-zA-Z0-9_~-][a-zA-Z0-9._~-]{0,7}", 0..4)
            .prop_map(|segments| segments.join("/"))
    }

    /// Strings that are not a canonical node id (digits only, no leading
    /// zero, non-zero, within u64), spelled with characters a URL's user
    /// part keeps as they are.
    fn non_canonical_id() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("0".to_owned()),
            "0[0-9]{1,18}",
            "[+-][1-9][0-9]{0,17}",
            "0x[0-9a-f]{1,8}",
            "[1-9][0-9]{0,8}[a-z_.~-][0-9]{0,3}",
            (u64::MAX as u128 + 1..=u128::MAX).prop_map(|n| n.to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The URI we hand out parses back to what we put in it.
        #[test]
        fn formatted_uris_parse_back(
            id in 1u64..,
            token in "[A-Za-z0-9]{32}",
            host in host(),
            port in proptest::option::of(1u16..),
            path in path(),
            label in "\\PC{0,80}",
        ) {
            let port_text = port.map(|p| format!(":{p}")).unwrap_or_default();
            let public = Url::parse(&format!("https://{host}{port_text}/{path}")).unwrap();
            let node_id = NodeId(Id::new(id).unwrap());
            let text = format_node_uri(&public, node_id, &token, &label, false);
            let uri = parse_node_uri(&text, false)
                .unwrap_or_else(|e| panic!("{:?} must parse: {e}", text.as_str()));
            prop_assert_eq!(uri.node_id, node_id);
            prop_assert_eq!(uri.token.as_str(), token.as_str());
            prop_assert_eq!(uri.name, sanitize_name(&label));
            let port_text = public.port().map(|p| format!(":{p}")).unwrap_or_default();
            let expected = format!(
                "https://{}{port_text}/{}",
                public.host_str().unwrap(),
                path.trim_matches('/')
            );
            prop_assert_eq!(&uri.base_url, &expected);
            // The base URL is canonical: it parses to itself.
            prop_assert_eq!(parse_base_url(&uri.base_url, false), Ok(expected));
        }

        /// A user part that is not a canonical node id is refused as such.
        #[test]
        fn non_canonical_ids_are_refused(user in non_canonical_id()) {
            let input = format!("https://{user}:{TOKEN}@b.example.com/federation");
            prop_assert_eq!(
                parse_node_uri(&input, false).map(|u| u.node_id),
                Err(UriError::SourceIdInvalid)
            );
        }

        /// A password that is not 32 letters and digits is refused as a token.
        #[test]
        fn non_canonical_tokens_are_refused(
            token in prop_oneof!["[A-Za-z0-9]{0,31}", "[A-Za-z0-9]{33,40}", "[A-Za-z0-9]{31}[-_.~!$]"],
        ) {
            let input = format!("https://5:{token}@b.example.com/federation");
            prop_assert_eq!(
                parse_node_uri(&input, false).map(|u| u.node_id),
                Err(UriError::TokenInvalid)
            );
        }

        /// Any input is parsed or refused (never a panic); what parses has a
        /// canonical base URL, a token-shaped token and a clean name, and
        /// the token is never in an error.
        #[test]
        fn any_input_is_parsed_or_refused(
            input in prop_oneof![
                "\\PC{0,120}",
                "(https|http|corteza)://[0-9]{1,4}:[A-Za-z0-9]{32}@[a-z0-9.:\\[\\]%@/?#=&-]{0,40}",
            ],
            insecure in any::<bool>(),
        ) {
            match parse_node_uri(&input, insecure) {
                Ok(uri) => {
                    prop_assert!(crate::crypto::is_ott_shaped(&uri.token));
                    prop_assert!(uri.name.chars().count() <= MAX_NAME_CHARS);
                    let base = parse_base_url(&uri.base_url, insecure);
                    prop_assert_eq!(base.as_deref(), Ok(uri.base_url.as_str()));
                }
                Err(e) => {
                    if let Some((_, rest)) = input.split_once(':').and_then(|(_, r)| r.split_once(':')) {
                        let token: String = rest.chars().take(32).collect();
                        if token.len() == 32 {
                            prop_assert!(!e.to_string().contains(&token));
                        }
                    }
                }
            }
            if let Ok(base) = parse_base_url(&input, insecure) {
                prop_assert_eq!(parse_base_url(&base, insecure), Ok(base.clone()));
            }
        }
    }
}
