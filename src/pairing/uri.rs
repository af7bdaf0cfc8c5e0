//! Node URIs: `https://<nodeID>:<32-char OTT>@<host>[:port]<base path>?name=<label>`
//! as Corteza generates and reads them, plus the documented
//! `corteza://<nodeID>:<OTT>@<domain>?name=<name>` form.
//!
//! Parsing is strict (federation-security 3.3 and U1-U10): a URI is either
//! fully understood or refused with a reason; the token never appears in an
//! error. Corteza's own checks (8.1) keep their order and their codes:
//! `pairingURIInvalid`, then `pairingURITokenInvalid`, then
//! `pairingURISourceIDInvalid`.

use std::fmt;

use url::{Host, Url};
use zeroize::Zeroizing;

use super::addr::is_loopback_host;
use crate::crypto::is_ott_shaped;
use crate::domain::{Id, NodeId};

/// Longest URI accepted, checked before parsing (U10).
pub const MAX_URI_LEN: usize = 2048;
/// Longest `name` kept (U8).
pub const MAX_NAME_CHARS: usize = 64;

/// A parsed node URI. `Debug` never shows the token.
#[derive(Clone, PartialEq)]
pub struct NodeUri {
    /// The inviter's node id: the pair's shared node id.
    pub node_id: NodeId,
    /// The one-time pairing token.
    pub token: Zeroizing<String>,
    /// The inviter's federation base URL, by Corteza's rule
    /// (`<scheme>://<host>/<path without surrounding slashes>`).
    pub base_url: String,
    /// The host as it will be contacted (IDNs in punycode), with its port.
    pub host: String,
    /// The inviter's label, sanitised: at most 64 printable characters.
    pub name: String,
}

impl fmt::Debug for NodeUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeUri")
            .field("node_id", &self.node_id)
            .field("token", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("name", &self.name)
            .finish()
    }
}

/// Why a node URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("pairing URI invalid: {0}")]
    Invalid(String),
    #[error(
        "pairing URI with invalid pairing token: the token must be exactly 32 letters and digits"
    )]
    TokenInvalid,
    #[error(
        "pairing URI without source node ID: the user part must be the inviter's node id (a non-zero decimal number)"
    )]
    SourceIdInvalid,
    #[error("pairing URI refused: {0}")]
    Insecure(String),
}

impl UriError {
    /// Corteza's error key for the same refusal.
    pub fn code(&self) -> &'static str {
        match self {
            UriError::Invalid(_) | UriError::Insecure(_) => "pairingURIInvalid",
            UriError::TokenInvalid => "pairingURITokenInvalid",
            UriError::SourceIdInvalid => "pairingURISourceIDInvalid",
        }
    }
}

fn invalid(reason: impl Into<String>) -> UriError {
    UriError::Invalid(reason.into())
}

/// Parses a node URI. `allow_insecure` permits `http://` to a loopback host
/// (development and tests only).
pub fn parse_node_uri(input: &str, allow_insecure: bool) -> Result<NodeUri, UriError> {
    if input.len() > MAX_URI_LEN {
        return Err(invalid(format!("longer than {MAX_URI_LEN} characters")));
    }
    let input = input.trim();
    let (scheme, rest) = input
        .split_once("://")
        .ok_or_else(|| invalid("not a URI (expected https://<node id>:<token>@<host>/<path>)"))?;
    let scheme = scheme.to_ascii_lowercase();
    let documented_form = matches!(scheme.as_str(), "corteza" | "corteza+federation");
    let wire_scheme = match scheme.as_str() {
        "https" => "https",
        "http" => "http",
        // The documented form names no transport: https, or http only where
        // insecure peers are allowed.
        "corteza" | "corteza+federation" if allow_insecure => "http",
        "corteza" | "corteza+federation" => "https",
        other => return Err(invalid(format!("scheme `{other}` is not https"))),
    };
    if rest.contains('#') {
        return Err(invalid("a node URI has no fragment"));
    }
    let url = Url::parse(&format!("{wire_scheme}://{rest}")).map_err(|e| invalid(e.to_string()))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let raw_path = &after[..after.find('?').unwrap_or(after.len())];
    let (userinfo, raw_host) = authority.rsplit_once('@').ok_or(UriError::TokenInvalid)?;
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));

    if !is_ott_shaped(password) {
        return Err(UriError::TokenInvalid);
    }
    let node_id = user
        .parse::<Id>()
        .map(NodeId)
        .map_err(|_| UriError::SourceIdInvalid)?;

    let host_port = checked_host(&url, raw_host)?;
    check_path(raw_path)?;
    check_transport(wire_scheme, &url, allow_insecure)?;

    let path = raw_path.trim_matches('/');
    let path = if documented_form && path.is_empty() {
        "federation"
    } else {
        path
    };
    let name = url
        .query_pairs()
        .find(|(key, _)| key == "name")
        .map(|(_, value)| sanitize_name(&value))
        .unwrap_or_default();
    Ok(NodeUri {
        node_id,
        token: Zeroizing::new(password.to_owned()),
        base_url: format!("{wire_scheme}://{host_port}/{path}"),
        host: host_port,
        name,
    })
}

/// The host (punycode, bracketed IPv6) with its port, after U3 and U9.
fn checked_host(url: &Url, raw_host: &str) -> Result<String, UriError> {
    let host = match url.host() {
        Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
        Some(Host::Ipv4(ip)) => {
            // U3: 2130706433, 0177.0.0.1, 0x7f.1, 127.1 all mean 127.0.0.1;
            // only the dotted-decimal spelling is accepted.
            let raw = raw_host
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(raw_host);
            if raw != ip.to_string() {
                return Err(invalid(format!(
                    "IPv4 address `{raw}` must be written as four decimal numbers"
                )));
            }
            ip.to_string()
        }
        Some(Host::Ipv6(ip)) => format!("[{ip}]"),
        _ => return Err(invalid("no host")),
    };
    match url.port() {
        Some(0) => Err(invalid("port 0")),
        Some(port) => Ok(format!("{host}:{port}")),
        None => Ok(host),
    }
}

/// U1: https, or http only to a loopback peer with insecure peers allowed.
fn check_transport(scheme: &str, url: &Url, allow_insecure: bool) -> Result<(), UriError> {
    let host = url.host_str().unwrap_or_default();
    if scheme == "http" && !(allow_insecure && is_loopback_host(host)) {
        return Err(UriError::Insecure(
            "http:// is refused: use https:// (http is allowed only to a loopback test peer with --allow-insecure-peers)".into(),
        ));
    }
    Ok(())
}

/// Validates a peer's federation base URL given by an admin (`https://host[:port]/path`)
/// with the node URI's rules, and returns it normalised as Corteza stores it.
pub fn parse_base_url(input: &str, allow_insecure: bool) -> Result<String, UriError> {
    if input.len() > MAX_URI_LEN {
        return Err(invalid(format!("longer than {MAX_URI_LEN} characters")));
    }
    let input = input.trim();
    let (scheme, rest) = input
        .split_once("://")
        .ok_or_else(|| invalid("not a URL (expected https://<host>/<path>)"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return Err(invalid(format!("scheme `{scheme}` is not https")));
    }
    if rest.contains(['#', '?', '@']) {
        return Err(invalid("a base URL has no user, query or fragment"));
    }
    let url = Url::parse(&format!("{scheme}://{rest}")).map_err(|e| invalid(e.to_string()))?;
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (raw_host, raw_path) = rest.split_at(authority_end);
    let host_port = checked_host(&url, raw_host)?;
    check_path(raw_path)?;
    check_transport(&scheme, &url, allow_insecure)?;
    Ok(format!(
        "{scheme}://{host_port}/{}",
        raw_path.trim_matches('/')
    ))
}

/// U7: no dot segments, no encoded separators, nothing percent-encoded, no
/// backslashes, no empty segments, no `@` (a base URL has no user part, and
/// `https://host/@other` reads like one; a node URI and an admin's base URL
/// must agree on what a base path is).
fn check_path(raw: &str) -> Result<(), UriError> {
    if raw.is_empty() || raw == "/" {
        return Ok(());
    }
    if raw.contains(['%', '\\']) {
        return Err(invalid(
            "the path must not be percent-encoded or contain backslashes",
        ));
    }
    let inner = raw.strip_prefix('/').unwrap_or(raw);
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for segment in inner.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(invalid(
                "the path must not have empty, `.` or `..` segments",
            ));
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:".contains(c))
        {
            return Err(invalid("the path has characters a base path does not use"));
        }
    }
    Ok(())
}

/// U8: at most 64 characters, without control or bidirectional-override
/// characters (it is displayed, never interpreted).
fn sanitize_name(value: &str) -> String {
    value
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(MAX_NAME_CHARS)
        .collect()
}

/// The node URI we hand out for `node_id` with `token`, in Corteza's form,
/// from our public federation URL. The scheme is https unless insecure peers
/// are allowed and the public URL says http.
pub fn format_node_uri(
    public_url: &Url,
    node_id: NodeId,
    token: &str,
    label: &str,
    allow_insecure: bool,
) -> Zeroizing<String> {
    let scheme = if allow_insecure && public_url.scheme() == "http" {
        "http"
    } else {
        "https"
    };
    let host = match public_url.host() {
        Some(Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    let port = public_url
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = public_url.path().trim_end_matches('/');
    let query = if label.is_empty() {
        String::new()
    } else {
        let encoded: String = url::form_urlencoded::byte_serialize(label.as_bytes()).collect();
        format!("?name={encoded}")
    };
    Zeroizing::new(format!(
        "{scheme}://{node_id}:{token}@{host}{port}{path}{query}"
    ))
}

#[cfg(test)]
mod tests;
