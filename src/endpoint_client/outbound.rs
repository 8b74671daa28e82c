//! The outbound policy: which addresses endpoint, judge and redirect calls may reach, checked
//! after DNS resolution, when connecting, so that no name can point a call at a forbidden
//! address (a cloud metadata service, a link-local device).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Ranges refused unless the operator says otherwise: link-local addresses (where cloud
/// metadata services answer) and AWS's IPv6 metadata address.
pub const DEFAULT_DENY_CIDRS: [&str; 3] = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];

/// `--deny-cidr` and `--allow-cidr`: a denied range is refused in any case; when allowed ranges
/// are given, only they are reachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundPolicy {
    deny: Vec<IpNet>,
    allow: Vec<IpNet>,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        OutboundPolicy {
            deny: DEFAULT_DENY_CIDRS
                .iter()
                .filter_map(|cidr| cidr.parse().ok())
                .collect(),
            allow: Vec::new(),
        }
    }
}

impl OutboundPolicy {
    /// A policy of denied and allowed ranges.
    pub fn new(deny: Vec<IpNet>, allow: Vec<IpNet>) -> Self {
        OutboundPolicy { deny, allow }
    }

    /// Parses one `--deny-cidr` or `--allow-cidr` value: a range (`10.0.0.0/8`) or one address.
    pub fn parse_cidr(value: &str) -> Result<IpNet, String> {
        let value = value.trim();
        value
            .parse::<IpNet>()
            .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("{value:?} is not an address range such as 10.0.0.0/8"))
    }

    /// `Ok` when `ip` may be reached; else why not, naming the rule.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        // An IPv4 address written as IPv6 is the IPv4 address.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if let Some(denied) = self.deny.iter().find(|net| net.contains(&ip)) {
            return Err(format!(
                "address {ip} is refused by the outbound policy (--deny-cidr {denied}, \
                 ASSAY_DENY_CIDR)"
            ));
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|net| net.contains(&ip)) {
            return Err(format!(
                "address {ip} is outside the outbound policy's allowed ranges (--allow-cidr, \
                 ASSAY_ALLOW_CIDR)"
            ));
        }
        Ok(())
    }

    /// Checks a URL whose host is an address (a name is checked when it is resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.check(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check(IpAddr::V6(ip)),
            Some(Host::Domain(_)) | None => Ok(()),
        }
    }

    /// Checks a URL given as text; one that does not parse is left to the other checks.
    pub fn check_url_text(&self, url: &str) -> Result<(), String> {
        Url::parse(url.trim()).map_or(Ok(()), |url| self.check_url(&url))
    }
}

/// A name that resolves only to addresses the policy refuses: found in the sources of the HTTP
/// client's error, it makes the call blocked rather than a connect error (which is retried).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Refused(String);

/// Whether the outbound policy refused every address of a name somewhere in `error`'s sources.
pub(crate) fn refused_by_policy(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<Refused>())
}

/// The DNS resolver of the HTTP client: the system's, keeping only the addresses the policy
/// allows, so that a name can never lead a connection to a refused address.
#[derive(Clone, Debug)]
pub(crate) struct PolicyResolver {
    pub policy: Arc<OutboundPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let allowed = allowed_addrs(&policy, name.as_str(), 0).await?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The addresses of `host` that the policy allows (with `port`): the system's resolver, keeping
/// only allowed addresses; an error when every address is refused. What every connection made
/// by name goes through, HTTP (the client's resolver) or gRPC (the scorers' connector).
pub(crate) async fn allowed_addrs(
    policy: &OutboundPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let mut refusal = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match policy.check(addr.ip()) {
            Ok(()) => true,
            Err(why) => {
                refusal.get_or_insert(why);
                false
            }
        })
        .collect();
    match (allowed.is_empty(), refusal) {
        (true, Some(why)) => Err(Box::new(Refused(format!(
            "{host} resolves to a refused address: {why}"
        )))),
        _ => Ok(allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_refused_by_default() {
        let policy = OutboundPolicy::default();
        let refused = policy
            .check("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(
            refused.contains("169.254.0.0/16") && refused.contains("ASSAY_DENY_CIDR"),
            "{refused}"
        );
        assert!(policy.check("fd00:ec2::254".parse().unwrap()).is_err());
        assert!(
            policy
                .check("::ffff:169.254.169.254".parse().unwrap())
                .is_err()
        );
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("93.184.216.34".parse().unwrap()).is_ok());
    }

    #[test]
    fn allowed_ranges_restrict_and_denied_ranges_win() {
        let cidr = |s: &str| OutboundPolicy::parse_cidr(s).unwrap();
        let policy = OutboundPolicy::new(vec![cidr("10.1.0.0/16")], vec![cidr("10.0.0.0/8")]);
        assert!(policy.check("10.2.3.4".parse().unwrap()).is_ok());
        assert!(policy.check("10.1.3.4".parse().unwrap()).is_err());
        assert!(policy.check("192.168.1.1".parse().unwrap()).is_err());
        assert_eq!(cidr("127.0.0.2"), cidr("127.0.0.2/32"));
        assert!(OutboundPolicy::parse_cidr("localhost").is_err());
    }
}
