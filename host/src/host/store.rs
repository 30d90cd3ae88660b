//! Where a host's tables live, as interface §8's `--store URL` names it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A store's address.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `redb:DIR`: a data dir (the write-ahead log in front of redb); what
    /// `--data-dir DIR` means.
    Redb(PathBuf),
    /// `postgres://…` or `postgresql://…` (a libpq URL: user, host or socket dir, port,
    /// dbname): a PostgreSQL database that several hosts may share.
    Postgres(String),
}

/// Why a store URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("store {0:?} is not redb:DIR, postgres://… or postgresql://…")]
pub struct ParseStoreUrlError(pub String);

impl FromStr for StoreUrl {
    type Err = ParseStoreUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(dir) = s.strip_prefix("redb:").filter(|d| !d.is_empty()) {
            return Ok(StoreUrl::Redb(PathBuf::from(dir)));
        }
        let rest = s
            .strip_prefix("postgres://")
            .or_else(|| s.strip_prefix("postgresql://"));
        match rest {
            Some(_) => Ok(StoreUrl::Postgres(s.to_owned())),
            None => Err(ParseStoreUrlError(redacted(s))),
        }
    }
}

impl fmt::Display for StoreUrl {
    /// The URL with any password left out, for messages and `semel info`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Redb(dir) => write!(f, "redb:{}", dir.display()),
            StoreUrl::Postgres(url) => f.write_str(&redacted(url)),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// `url` with the password of its user info (`user:password@`) replaced by `***`.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_and_never_show_a_password() {
        assert_eq!(
            "redb:/tmp/x".parse::<StoreUrl>().unwrap(),
            StoreUrl::Redb("/tmp/x".into())
        );
        let pg: StoreUrl = "postgres://semel:secret@127.0.0.1:5432/db".parse().unwrap();
        assert_eq!(pg.to_string(), "postgres://semel:***@127.0.0.1:5432/db");
        assert_eq!(
            "postgresql://u@h/db?host=/run"
                .parse::<StoreUrl>()
                .unwrap()
                .to_string(),
            "postgresql://u@h/db?host=/run"
        );
        for bad in ["redb:", "mysql://x", "/tmp/x", ""] {
            assert!(bad.parse::<StoreUrl>().is_err(), "{bad} parsed");
        }
        let e = "mysql://u:pw@h/db".parse::<StoreUrl>().unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
