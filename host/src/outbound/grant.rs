//! Which hosts an actor may call: `allowed_outbound_hosts`, as Spin spells it.
//!
//! A grant is a list of `scheme://host[:port]` patterns, checked before a request
//! leaves the node. Denial is the default (an empty grant), so a component uploaded
//! by anyone reaches nothing until an operator names where it may go.
//!
//! - scheme: `http`, `https` or `*`;
//! - host: a name or address (`api.openai.com`, `127.0.0.1`, `[::1]`), `*` for any,
//!   or `*.example.com` for the subdomains of `example.com` (not the name itself);
//! - port: a number, `*` for any; left out, the scheme's own (80 or 443; with
//!   `*://` both).
//!
//! Names compare case-insensitively; paths are not part of a pattern (a pattern with
//! a path is refused, not half-applied).

use std::fmt;

/// One `scheme://host[:port]` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: String,
    scheme: SchemeRule,
    host: HostRule,
    port: PortRule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeRule {
    Http,
    Https,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Any,
    Exact(String),
    /// `*.suffix`: stored as `.suffix`.
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    /// The scheme's default port.
    Default,
    Any,
    Exact(u16),
}

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{pattern}` is not an outbound host pattern: {reason} (expected scheme://host[:port], e.g. https://api.openai.com or http://127.0.0.1:*)"
)]
pub struct PatternError {
    /// The pattern as it was written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl HostPattern {
    /// Parses one `scheme://host[:port]` pattern.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let fail = |reason| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| fail("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemeRule::Http,
            "https" => SchemeRule::Https,
            "*" => SchemeRule::Any,
            _ => return Err(fail("the scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(fail("a pattern names a host, not a path or user"));
        }
        let (host, port) = split_port(rest).ok_or_else(|| fail("the port is not a number"))?;
        let host = host.to_ascii_lowercase();
        let host = match host.as_str() {
            "" => return Err(fail("no host")),
            "*" => HostRule::Any,
            _ => match host.strip_prefix("*.") {
                Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                    HostRule::Subdomains(format!(".{suffix}"))
                }
                Some(_) => return Err(fail("`*.` must be followed by a domain")),
                None if host.contains('*') => {
                    return Err(fail("`*` stands for a whole host or a leading label"));
                }
                None => HostRule::Exact(host),
            },
        };
        Ok(HostPattern {
            text: text.to_owned(),
            scheme,
            host,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` is allowed by this pattern.
    pub fn allows(&self, target: &Target) -> bool {
        let scheme = match self.scheme {
            SchemeRule::Http => !target.https,
            SchemeRule::Https => target.https,
            SchemeRule::Any => true,
        };
        let host = match &self.host {
            HostRule::Any => true,
            HostRule::Exact(name) => *name == target.host,
            HostRule::Subdomains(suffix) => target.host.ends_with(suffix.as_str()),
        };
        let port = match self.port {
            PortRule::Any => true,
            PortRule::Exact(port) => port == target.port,
            PortRule::Default => target.port == if target.https { 443 } else { 80 },
        };
        scheme && host && port
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// `host[:port]`, where host may be a bracketed IPv6 address.
fn split_port(authority: &str) -> Option<(&str, PortRule)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let end = bracketed.find(']')?;
            let after = &bracketed[end + 1..];
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (&authority[..end + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        None => PortRule::Default,
        Some("*") => PortRule::Any,
        Some(number) => PortRule::Exact(number.parse().ok()?),
    };
    Some((host, port))
}

/// Where a request goes, as a grant checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// True for `https`, false for `http`.
    pub https: bool,
    /// Lower case; an IPv6 address keeps its brackets.
    pub host: String,
    /// The port, the scheme's default where the URI gives none.
    pub port: u16,
}

impl Target {
    /// The target of a request URI, `None` when it names no host.
    pub fn of(uri: &http::Uri) -> Option<Target> {
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority()?;
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Target { https, host, port })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(formatter, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// The patterns an actor is granted; empty denies every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    patterns: Vec<HostPattern>,
}

impl Grant {
    /// Parses every pattern, or says which one is wrong.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let patterns = patterns
            .iter()
            .map(|text| HostPattern::parse(text.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Grant { patterns })
    }

    /// Whether any of the patterns allows a request to `target`.
    pub fn allows(&self, target: &Target) -> bool {
        self.patterns.iter().any(|pattern| pattern.allows(target))
    }

    /// True when no pattern is granted, so every request is denied.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as they were written.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(ToString::to_string).collect()
    }

    /// This grant and `other`'s patterns together.
    pub fn with(mut self, other: &Grant) -> Grant {
        for pattern in &other.patterns {
            if !self.patterns.contains(pattern) {
                self.patterns.push(pattern.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        Target::of(&uri.parse().expect("a uri")).expect("a target")
    }

    fn allows(pattern: &str, uri: &str) -> bool {
        HostPattern::parse(pattern)
            .expect("a pattern")
            .allows(&target(uri))
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        assert!(allows(
            "https://api.openai.com",
            "https://api.openai.com/v1/chat"
        ));
        assert!(allows(
            "https://API.openai.com",
            "https://api.OpenAI.com:443/"
        ));
        assert!(!allows("https://api.openai.com", "http://api.openai.com/"));
        assert!(!allows(
            "https://api.openai.com",
            "https://api.openai.com:8443/"
        ));
        assert!(!allows("https://api.openai.com", "https://evil.com/"));
        assert!(allows("http://127.0.0.1:8081", "http://127.0.0.1:8081/x"));
        assert!(!allows("http://127.0.0.1:8081", "http://127.0.0.1:8082/x"));
        assert!(allows("http://[::1]:9000", "http://[::1]:9000/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows("http://127.0.0.1:*", "http://127.0.0.1:34567/"));
        assert!(allows("*://example.com", "http://example.com/"));
        assert!(allows("*://example.com", "https://example.com/"));
        assert!(allows("https://*.example.com", "https://a.b.example.com/"));
        assert!(!allows("https://*.example.com", "https://example.com/"));
        assert!(!allows("https://*.example.com", "https://badexample.com/"));
        assert!(allows("*://*:*", "http://anything:1/"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, reason) in [
            ("example.com", "no scheme"),
            ("ftp://example.com", "scheme"),
            ("https://example.com/path", "path"),
            ("https://example.com:http", "port"),
            ("https://", "no host"),
            ("https://ex*ample.com", "leading label"),
            ("https://*.", "domain"),
        ] {
            let error = HostPattern::parse(bad).expect_err(bad);
            assert!(error.to_string().contains(reason), "{bad}: {error}");
        }
    }

    #[test]
    fn an_empty_grant_denies_everything() {
        let grant = Grant::default();
        assert!(!grant.allows(&target("http://127.0.0.1/")));
        let grant = Grant::parse(&["http://127.0.0.1:*"]).expect("a grant");
        assert!(grant.allows(&target("http://127.0.0.1:80/")));
        assert_eq!(
            target("http://Example.com/").to_string(),
            "http://example.com:80"
        );
    }
}
