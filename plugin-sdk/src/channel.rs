//! Channels: turn webhook calls into inbound messages and deliver replies.

/// Implement this and call [`export_channel!`](crate::export_channel) to make a channel plugin.
pub trait ChannelPlugin {
    /// Describe the channel.
    fn describe() -> ChannelInfo;
    /// Handle one webhook call: verify it, answer it, and extract messages.
    fn handle_webhook(request: crate::HttpRequest) -> crate::Result<WebhookOutcome>;
    /// Send a reply out.
    fn deliver(message: OutboundMessage) -> crate::Result<()>;
}

pub use crate::channel_world::exports::switchyard::plugin::channel::{
    ChannelInfo, InboundMessage, OutboundMessage, WebhookOutcome,
};

/// Compare two byte strings in time independent of where they differ (for signatures).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC-SHA256 of `message` under `key`, as lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature_hex` (either case) is the HMAC-SHA256 of `message`
/// under `key`, compared in constant time.
pub fn verify_hmac_sha256(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    use hmac::Mac;
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC takes a key of any length");
    mac.update(message);
    mac.verify_slice(&given).is_ok()
}

/// The first value of header `name` (case-insensitive) in `headers`.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The metadata key whose value the host deduplicates messages by: set it to
/// the provider's delivery id (`X-GitHub-Delivery`, Slack's `event_id`), so a
/// redelivery never makes a second task.
pub const DELIVERY_ID: &str = "delivery-id";

/// The metadata key of an outbound message that carries its idempotency key:
/// the same on every attempt to send one reply, so a plugin (or the receiver)
/// can drop a repeat after an attempt whose outcome was unknown.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The value of metadata `key`, if present.
pub fn meta<'a>(metadata: &'a [(String, String)], key: &str) -> Option<&'a str> {
    metadata
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Export a [`ChannelPlugin`] as the component's `channel` interface.
#[macro_export]
macro_rules! export_channel {
    ($plugin:ty) => {
        struct __SwitchyardChannelExport;
        impl $crate::channel_world::exports::switchyard::plugin::channel::Guest
            for __SwitchyardChannelExport
        {
            fn describe() -> $crate::channel::ChannelInfo {
                <$plugin as $crate::channel::ChannelPlugin>::describe()
            }
            fn handle_webhook(
                request: $crate::HttpRequest,
            ) -> ::std::result::Result<$crate::channel::WebhookOutcome, $crate::Error> {
                <$plugin as $crate::channel::ChannelPlugin>::handle_webhook(request)
            }
            fn deliver(
                message: $crate::channel::OutboundMessage,
            ) -> ::std::result::Result<(), $crate::Error> {
                <$plugin as $crate::channel::ChannelPlugin>::deliver(message)
            }
        }
        $crate::channel_world::export_channel_world!(__SwitchyardChannelExport with_types_in $crate::channel_world);
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_signature_vector() {
        let sig = hmac_sha256_hex(b"It's a Secret to Everybody", b"Hello, World!");
        assert_eq!(
            sig,
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert!(verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            &sig
        ));
        assert!(verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            &sig.to_uppercase()
        ));
        assert!(!verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World?",
            &sig
        ));
        assert!(!verify_hmac_sha256(b"wrong", b"Hello, World!", &sig));
        assert!(!verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            "zz"
        ));
        assert!(!verify_hmac_sha256(
            b"It's a Secret to Everybody",
            b"Hello, World!",
            ""
        ));
    }

    #[test]
    fn headers_match_any_case() {
        let h = vec![("X-Hub-Signature-256".to_string(), "sha256=ab".to_string())];
        assert_eq!(header(&h, "x-hub-signature-256"), Some("sha256=ab"));
        assert_eq!(header(&h, "x-other"), None);
    }
}
