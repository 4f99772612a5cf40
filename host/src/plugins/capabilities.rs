//! What a plugin requests in `[capabilities]` and what an administrator granted:
//! HTTP host patterns, key-value access (per user or shared) and secret names.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Key-value access, ordered by reach: a grant of [`KvAccess::Shared`] covers a
/// request for [`KvAccess::User`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum KvAccess {
    /// No key-value storage.
    #[default]
    None,
    /// A space per caller (`kv = true` or `kv = "user"`): each user sees only their own data.
    User,
    /// One plugin-wide space every caller shares (`kv = "shared"`).
    Shared,
}

impl KvAccess {
    /// Whether any key-value access is meant.
    pub fn any(self) -> bool {
        self != KvAccess::None
    }
}

impl Serialize for KvAccess {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            KvAccess::None => s.serialize_bool(false),
            KvAccess::User => s.serialize_bool(true),
            KvAccess::Shared => s.serialize_str("shared"),
        }
    }
}

impl<'de> Deserialize<'de> for KvAccess {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Flag(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Flag(false) => Ok(KvAccess::None),
            Raw::Flag(true) => Ok(KvAccess::User),
            Raw::Name(n) if n == "user" => Ok(KvAccess::User),
            Raw::Name(n) if n == "shared" => Ok(KvAccess::Shared),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "kv must be true, false, \"user\" or \"shared\", not \"{n}\""
            ))),
        }
    }
}

/// Capabilities a plugin requests (in the manifest) or holds (once granted).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts the plugin may reach over HTTP: `host` (ports 80/443), `host:port`,
    /// `host:*`, `*.domain` (any subdomain), `*` (any public address), or an
    /// address or CIDR (`10.0.0.5`, `10.0.0.0/24:8080`) that may be non-public.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<String>,
    /// Key-value storage: per caller, or one shared space.
    #[serde(default, skip_serializing_if = "is_none")]
    pub kv: KvAccess,
    /// Names of secrets the plugin may read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

fn is_none(kv: &KvAccess) -> bool {
    !kv.any()
}

impl Capabilities {
    /// True when nothing is requested.
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && !self.kv.any() && self.secrets.is_empty()
    }

    /// What `self` asks for beyond `granted`.
    pub fn beyond(&self, granted: &Capabilities) -> Capabilities {
        Capabilities {
            http: (self.http.iter())
                .filter(|h| !granted.http.contains(h))
                .cloned()
                .collect(),
            kv: if self.kv > granted.kv {
                self.kv
            } else {
                KvAccess::None
            },
            secrets: (self.secrets.iter())
                .filter(|s| !granted.secrets.contains(s))
                .cloned()
                .collect(),
        }
    }

    /// The part of `self` that `requested` still asks for (drops stale grants);
    /// any host pattern stays when `requested` asks for `*`. A shared-KV grant
    /// becomes per-user KV when the request shrinks to that.
    pub fn within(&self, requested: &Capabilities) -> Capabilities {
        let any_host = requested.http.iter().any(|h| h == "*");
        Capabilities {
            http: (self.http.iter())
                .filter(|h| any_host || requested.http.contains(h))
                .cloned()
                .collect(),
            kv: self.kv.min(requested.kv),
            secrets: (self.secrets.iter())
                .filter(|s| requested.secrets.contains(s))
                .cloned()
                .collect(),
        }
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.http.is_empty() {
            parts.push(format!("http: {}", self.http.join(", ")));
        }
        match self.kv {
            KvAccess::None => {}
            KvAccess::User => parts.push("kv".to_string()),
            KvAccess::Shared => parts.push("shared kv".to_string()),
        }
        if !self.secrets.is_empty() {
            parts.push(format!("secrets: {}", self.secrets.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Capabilities, KvAccess};

    #[test]
    fn grants_compare_with_requests() {
        let requested = Capabilities {
            http: vec!["a.com".into(), "b.com".into()],
            kv: KvAccess::User,
            secrets: vec!["t".into()],
        };
        let granted = Capabilities {
            http: vec!["a.com".into(), "old.com".into()],
            kv: KvAccess::None,
            secrets: vec![],
        };
        let pending = requested.beyond(&granted);
        assert_eq!(pending.http, ["b.com"]);
        assert_eq!(pending.kv, KvAccess::User);
        assert_eq!(
            granted.within(&requested).http,
            ["a.com"],
            "stale grants drop out"
        );
        let any = Capabilities {
            http: vec!["*".into()],
            ..Default::default()
        };
        assert_eq!(
            granted.within(&any).http,
            ["a.com", "old.com"],
            "`*` covers any granted host"
        );
        assert_eq!(requested.to_string(), "http: a.com, b.com; kv; secrets: t");
    }

    #[test]
    fn shared_kv_needs_its_own_grant() {
        let shared = Capabilities {
            kv: KvAccess::Shared,
            ..Default::default()
        };
        let user = Capabilities {
            kv: KvAccess::User,
            ..Default::default()
        };
        assert_eq!(
            shared.beyond(&user).kv,
            KvAccess::Shared,
            "user kv is not shared kv"
        );
        assert_eq!(user.beyond(&shared).kv, KvAccess::None);
        assert_eq!(
            shared.within(&user).kv,
            KvAccess::User,
            "a downgrade keeps per-user kv"
        );
        assert_eq!(user.within(&shared).kv, KvAccess::User);
        for (text, kv) in [
            ("kv = true", KvAccess::User),
            ("kv = \"user\"", KvAccess::User),
            ("kv = \"shared\"", KvAccess::Shared),
            ("kv = false", KvAccess::None),
        ] {
            let c: Capabilities = toml::from_str(text).unwrap();
            assert_eq!(c.kv, kv, "{text}");
            let back: Capabilities =
                serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            assert_eq!(back, c);
        }
        assert!(toml::from_str::<Capabilities>("kv = \"everyone\"").is_err());
        assert_eq!(shared.to_string(), "shared kv");
    }
}
