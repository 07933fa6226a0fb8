//! Where the service may send what it sends on its own (budget alerts): public addresses only,
//! unless the configuration allows more (`alert-allow-networks`, decisions.md D87). An alert URL
//! is set by an admin key, but the POST comes from inside the operator's network; without this
//! guard a URL could reach the loopback interface, the cloud's metadata service or a private
//! host the key's holder cannot reach themselves.
//!
//! The guard is applied where the address is known: to an IP literal when the URL is set and
//! again before each delivery, and to every address a host name resolves to at connection time
//! (the HTTP crate's resolver asks [`AllowedNetworks::permits`]), so that a name that resolves
//! to a private address, now or later, is refused too.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The networks allowed beyond the public internet (empty by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedNetworks(Vec<IpNet>);

impl AllowedNetworks {
    /// Networks from their text, comma-separated CIDRs or single addresses
    /// (`127.0.0.0/8,10.1.2.3`).
    pub fn parse(text: &str) -> Result<AllowedNetworks, String> {
        let mut nets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => match part.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "'{part}' is not a network (CIDR such as 10.0.0.0/8) or an address"
                        ))
                    }
                },
            };
            nets.push(net);
        }
        Ok(AllowedNetworks(nets))
    }

    /// Every address allowed (tests, and deployments whose alerts go to internal hosts only).
    pub fn everything() -> AllowedNetworks {
        AllowedNetworks(vec![
            "0.0.0.0/0".parse().expect("valid"),
            "::/0".parse().expect("valid"),
        ])
    }

    /// Whether an alert may be sent to `ip`: a public unicast address, or one of the allowed
    /// networks.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.0.iter().any(|n| n.contains(&ip))
    }

    /// Why a URL's host is refused, or `None` when it may be used now: an IP literal must be
    /// permitted; `localhost` and `*.localhost` are loopback by definition (RFC 6761). Other names
    /// are checked when they are resolved.
    pub fn refuse_host(&self, host: &str) -> Option<String> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = if name == "localhost" || name.ends_with(".localhost") {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            host.parse::<IpAddr>().ok()
        };
        match ip {
            Some(ip) if !self.permits(ip) => Some(format!(
                "{host} is a {} address; alerts go to public addresses unless \
                 alert-allow-networks allows it",
                kind(canonical(ip))
            )),
            _ => None,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn kind(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V6(v6) if v6.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_private() => "private",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local",
        _ => "non-public",
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking (RFC 2544)
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local (fc00::/7)
        || (first & 0xffc0) == 0xfe80 // link-local (fe80::/10)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64, may reach private IPv4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_unless_allowed() {
        let none = AllowedNetworks::default();
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "255.255.255.255",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!none.permits(ip), "{private}");
        }
        for public in [
            "8.8.8.8",
            "157.240.1.35",
            "2a03:2880:f10c:83:face:b00c:0:25de",
        ] {
            assert!(none.permits(public.parse().unwrap()), "{public}");
        }
        let some = AllowedNetworks::parse("127.0.0.0/8, 10.1.2.3").unwrap();
        assert!(some.permits("127.0.0.9".parse().unwrap()));
        assert!(some.permits("::ffff:127.0.0.9".parse().unwrap()));
        assert!(some.permits("10.1.2.3".parse().unwrap()));
        assert!(!some.permits("10.1.2.4".parse().unwrap()));
        assert!(AllowedNetworks::parse("10.0.0.0/33").is_err());
        assert!(AllowedNetworks::parse("hooks.example").is_err());
        assert!(AllowedNetworks::everything().permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn hosts_refused_by_name_or_literal() {
        let none = AllowedNetworks::default();
        assert!(none.refuse_host("127.0.0.1").unwrap().contains("loopback"));
        assert!(none.refuse_host("LOCALHOST").is_some());
        assert!(none.refuse_host("api.localhost.").is_some());
        assert!(none.refuse_host("169.254.169.254").is_some());
        assert!(none.refuse_host("::1").is_some());
        assert_eq!(none.refuse_host("hooks.example.com"), None);
        assert_eq!(none.refuse_host("8.8.8.8"), None);
        let lo = AllowedNetworks::parse("127.0.0.0/8").unwrap();
        assert_eq!(lo.refuse_host("localhost"), None);
    }
}
