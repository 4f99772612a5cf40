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
