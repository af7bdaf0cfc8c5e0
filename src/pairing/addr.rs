//! Which addresses a peer may have: the SSRF guard's rule. Applied at connect
//! time to every resolved address (so DNS rebinding does not get through) and
//! to IP literals before any request.
//!
//! Blocked unless insecure peers are allowed: loopback, RFC 1918 private,
//! link-local (with the cloud metadata address), CGNAT, ULA, multicast,
//! unspecified, reserved and documentation ranges, and the IPv4-mapped,
//! IPv4-compatible, NAT64 and 6to4 forms of those; Teredo as a whole.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether non-public peers are allowed (development and tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_insecure: bool,
}

impl AddressPolicy {
    /// `Err` names why the address may not be contacted.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_insecure || is_public(ip) {
            Ok(())
        } else {
            Err(format!(
                "{ip} is a loopback, private, link-local or reserved address; peers must be public (or run with --allow-insecure-peers for tests)"
            ))
        }
    }
}

/// A globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const BLOCKED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // CGNAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
    ];
    !BLOCKED.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = |hi: usize| {
        Ipv4Addr::new(
            (s[hi] >> 8) as u8,
            s[hi] as u8,
            (s[hi + 1] >> 8) as u8,
            s[hi + 1] as u8,
        )
    };
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() {
        return false;
    }
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d.
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return is_public_v4(embedded_v4(6));
    }
    match s[0] {
        // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
        0x0064 if s[1] == 0xff9b => s[2..6] == [0; 4] && is_public_v4(embedded_v4(6)),
        // Discard-only 100::/64.
        0x0100 if s[1..4] == [0; 3] => false,
        // Teredo 2001::/32, documentation 2001:db8::/32.
        0x2001 if s[1] == 0 || s[1] == 0x0db8 => false,
        // 6to4 2002::/16 carries an IPv4 address in bits 16..48.
        0x2002 => is_public_v4(embedded_v4(1)),
        // ULA fc00::/7, link-local fe80::/10, site-local fec0::/10.
        first
            if (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0 =>
        {
            false
        }
        _ => true,
    }
}

/// `localhost` or a loopback IP literal (with or without IPv6 brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, public: bool) {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(is_public(ip), public, "{addr}");
        let strict = AddressPolicy {
            allow_insecure: false,
        };
        assert_eq!(strict.check(ip).is_ok(), public, "{addr}");
        assert!(
            AddressPolicy {
                allow_insecure: true
            }
            .check(ip)
            .is_ok()
        );
    }

    #[test]
    fn the_ssrf_table() {
        // U2: every address a peer must not resolve to.
        check("127.0.0.1", false);
        check("127.1.2.3", false);
        check("::1", false);
        check("10.0.0.1", false);
        check("172.16.0.1", false);
        check("172.31.255.255", false);
        check("192.168.1.1", false);
        check("169.254.169.254", false);
        check("100.64.0.1", false);
        check("fc00::1", false);
        check("fd12:3456::1", false);
        check("fe80::1", false);
        check("0.0.0.0", false);
        check("::", false);
        check("224.0.0.1", false);
        check("255.255.255.255", false);
        check("::ffff:127.0.0.1", false);
        check("::ffff:10.1.2.3", false);
        check("64:ff9b::7f00:1", false);
        check("2002:7f00:1::", false);
        check("2002:a00:1::", false);
        check("2001::1", false);
        check("2001:db8::1", false);
        check("ff02::1", false);
        // Public ones pass.
        check("93.184.216.34", true);
        check("8.8.8.8", true);
        check("172.32.0.1", true);
        check("2606:4700:4700::1111", true);
        check("::ffff:8.8.8.8", true);
        check("64:ff9b::808:808", true);
        check("2002:808:808::", true);
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "10.0.0.1",
            "[fe80::1]",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
