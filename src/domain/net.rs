//! Address ranges: trusted proxies.

/// An address range: an address and how many leading bits must match.
pub type IpRange = (std::net::IpAddr, u8);

/// Comma-separated addresses or CIDR ranges (`10.0.0.0/8, ::1`).
pub fn parse_ip_ranges(text: &str) -> Result<Vec<IpRange>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (item, None),
            };
            let addr: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("`{item}` is not an address or CIDR range"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("`{item}`: the prefix must be 0 to {max}"))?,
            };
            Ok((addr, bits))
        })
        .collect()
}

/// Whether `ip` is in one of `ranges`.
pub fn in_ranges(ip: std::net::IpAddr, ranges: &[IpRange]) -> bool {
    let ip = match ip {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
        v4 => v4,
    };
    ranges.iter().any(|(net, bits)| match (ip, net) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(*n) & mask
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(*bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(*n) & mask
        }
        _ => false,
    })
}
