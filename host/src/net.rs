//! The outbound address rule, one implementation for every place the host
//! connects on someone else's behalf (plugin HTTP, URL installs): which addresses
//! are public, how numeric host forms read, CIDR ranges an administrator may
//! grant, and the (injectable) resolver that turns names into addresses.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Whether `ip` is a public unicast address: not loopback, private, link-local
/// (cloud metadata lives there), CGNAT, unique-local, multicast, unspecified,
/// broadcast, documentation or reserved. IPv6 forms that embed an IPv4 address
/// (v4-mapped, v4-compatible, 6to4, NAT64) are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, c, _] = v4.octets();
    !(v4.is_unspecified()
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || v4.is_documentation()
        || v4.is_multicast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19)))
}

fn is_public_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    !(v6.is_unspecified()
        || v6.is_loopback()
        || v6.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]))
}

/// The IPv4 address inside a v4-mapped (`::ffff:a.b.c.d`), v4-compatible
/// (`::a.b.c.d`), 6to4 (`2002:AABB:CCDD::/48`) or NAT64 (`64:ff9b::/96`) address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(low(s[6], s[7]));
    }
    None
}

/// The address a URL host stands for when it is numeric: `[v6]`, dotted quads and
/// the shorter or other-base forms resolvers also accept (`127.1`, `2130706433`,
/// `0x7f.1`, `0177.0.0.1`). `None` for a name.
pub fn parse_ip_literal(host: &str) -> Option<IpAddr> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    if let Some(v6) = bare {
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(v6) = host.parse::<Ipv6Addr>() {
        return Some(IpAddr::V6(v6));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let parts: Vec<u32> = host.split('.').map(number).collect::<Option<Vec<_>>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|&p| p > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if rest_bits < 32 && *last >= 1 << rest_bits {
        return None;
    }
    let mut value = *last;
    for (i, &p) in head.iter().enumerate() {
        value |= p << (24 - 8 * i as u32);
    }
    Some(IpAddr::V4(Ipv4Addr::from(value)))
}

/// One part of a numeric IPv4 form: decimal, `0x` hex or leading-zero octal.
fn number(part: &str) -> Option<u32> {
    if part.is_empty() {
        return None;
    }
    let lower = part.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16).ok();
    }
    if lower.len() > 1 && lower.starts_with('0') {
        return u32::from_str_radix(&lower[1..], 8).ok();
    }
    lower.parse().ok()
}

/// An address range (`10.0.0.0/24`, `fd00::/8`) or one address (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parse `ADDR` or `ADDR/PREFIX` (IPv6 with or without brackets).
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr = parse_ip_literal(addr)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` is inside the range (a v4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A boxed, sendable future returned by [`Resolve`].
pub type Lookup<'a> = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a host name into addresses (the system resolver, or a fixed table in tests).
pub trait Resolve: Send + Sync {
    /// The addresses of `host`, each with `port`.
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
struct SystemResolver;

impl Resolve for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> Lookup<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A shareable resolver; the default is the system's.
#[derive(Clone)]
pub struct Resolver(Arc<dyn Resolve>);

impl Resolver {
    /// Use `resolve` instead of the system resolver.
    pub fn new(resolve: impl Resolve + 'static) -> Self {
        Self(Arc::new(resolve))
    }

    /// The addresses of `host`, each with `port`.
    pub async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        self.0.lookup(host, port).await
    }
}

impl Default for Resolver {
    fn default() -> Self {
        Self(Arc::new(SystemResolver))
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// Whether a URL host names a place outside the public internet without any
/// lookup: a non-public numeric address or `localhost`.
pub fn host_is_private(host: &str) -> bool {
    match parse_ip_literal(host) {
        Some(ip) => !is_public(ip),
        None => host.eq_ignore_ascii_case("localhost") || host.is_empty(),
    }
}

/// The public addresses of `host` (system resolver); an error saying so when it
/// has none, so a name that resolves to a private address is refused.
pub async fn public_addrs(host: &str) -> std::io::Result<Vec<SocketAddr>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await?
        .filter(|a| is_public(a.ip()))
        .collect();
    if found.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "`{host}` is not a public address; only administrators may reach loopback, private or link-local addresses"
            ),
        ));
    }
    Ok(found)
}

/// The TLS client settings every outbound connection uses (webpki roots, ring), built once.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(roots).with_no_client_auth())
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "TLS settings");
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::{IpNet, is_public, parse_ip_literal};

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn numeric_hosts_read_as_resolvers_read_them() {
        for (text, ip) in [
            ("127.1", "127.0.0.1"),
            ("2130706433", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("10.1", "10.0.0.1"),
            ("0", "0.0.0.0"),
            ("127.0.0.1.", "127.0.0.1"),
            ("[::1]", "::1"),
            ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
        ] {
            assert_eq!(parse_ip_literal(text), Some(ip.parse().unwrap()), "{text}");
        }
        for name in [
            "example.com",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "0x",
            "a.1",
            "",
            "1..2",
        ] {
            assert_eq!(parse_ip_literal(name), None, "{name}");
        }
    }

    #[test]
    fn ranges_contain_what_they_say() {
        let net = IpNet::parse("10.0.0.0/24").unwrap();
        assert!(net.contains("10.0.0.77".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net.contains("10.0.1.1".parse().unwrap()));
        let one = IpNet::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(
            IpNet::parse("[::1]")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "x/8", "::/129", "10.0.0.0/"] {
            assert!(IpNet::parse(bad).is_none(), "{bad}");
        }
    }
}
