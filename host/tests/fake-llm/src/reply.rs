//! What the fake answers: [`Reply`] and its builders, independent of the wire protocol.

use std::time::Duration;

/// A piece of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Answer text (delivered in several deltas).
    Text(String),
    /// A tool call (its arguments delivered in several fragments).
    ToolCall {
        /// The call id.
        id: String,
        /// The tool name.
        name: String,
        /// The arguments' JSON text.
        arguments: String,
    },
}

/// How a streamed answer ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The stop reason, usage and the protocol's terminator.
    Complete,
    /// Nothing more, the connection left open.
    Hang,
    /// Half an event, then the connection is dropped.
    Drop,
    /// A chunk whose data is not JSON, then the normal end.
    Malformed,
    /// An in-stream error event of this type, then the end of the body.
    ErrorEvent(String),
}

/// What a reply does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A 200 event stream.
    Stream {
        /// The answer's pieces, in order.
        parts: Vec<Part>,
        /// How the stream ends.
        end: End,
    },
    /// A status with a raw body.
    Status {
        /// The status code.
        code: u16,
        /// The body, sent as `application/json`.
        body: String,
    },
    /// A status with the protocol's error body.
    ApiError {
        /// The status code.
        code: u16,
        /// The error message.
        message: String,
    },
    /// The request is read, and no response ever starts.
    HangBeforeHeaders,
}

/// One scripted answer. It renders to the wire format of the route that was hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub(crate) kind: Kind,
    pub(crate) delay: Duration,
    pub(crate) usage: Option<(u64, u64)>,
    pub(crate) retry_after: Option<String>,
    pub(crate) truncated: bool,
}

impl Reply {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            delay: Duration::ZERO,
            usage: None,
            retry_after: None,
            truncated: false,
        }
    }

    fn stream(parts: Vec<Part>, end: End) -> Self {
        Self::new(Kind::Stream { parts, end })
    }

    /// A text answer, streamed in several deltas, ending the turn.
    pub fn text(text: impl Into<String>) -> Self {
        Self::stream(vec![Part::Text(text.into())], End::Complete)
    }

    /// One tool call whose arguments arrive in several fragments.
    pub fn tool_call(
        id: impl Into<String>,
        name: impl Into<String>,
        args: impl Into<String>,
    ) -> Self {
        Self::tool_calls([(id, name, args)])
    }

    /// Several tool calls in one answer, in order.
    pub fn tool_calls<I, N, A>(calls: impl IntoIterator<Item = (I, N, A)>) -> Self
    where
        I: Into<String>,
        N: Into<String>,
        A: Into<String>,
    {
        let parts = calls
            .into_iter()
            .map(|(id, name, args)| Part::ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: args.into(),
            })
            .collect();
        Self::stream(parts, End::Complete)
    }

    /// Text, then one tool call.
    pub fn text_then_tool_call(
        text: impl Into<String>,
        id: impl Into<String>,
        name: impl Into<String>,
        args: impl Into<String>,
    ) -> Self {
        let mut reply = Self::tool_call(id, name, args);
        if let Kind::Stream { parts, .. } = &mut reply.kind {
            parts.insert(0, Part::Text(text.into()));
        }
        reply
    }

    /// A status with `body` as it is (sent as `application/json`).
    pub fn status(code: u16, body: impl Into<String>) -> Self {
        Self::new(Kind::Status {
            code,
            body: body.into(),
        })
    }

    /// A status with the protocol's own error body holding `message`
    /// (`{"error": {"message", "type"}}`, or Anthropic's `{"type": "error", "error": {…}}`).
    pub fn api_error(code: u16, message: impl Into<String>) -> Self {
        Self::new(Kind::ApiError {
            code,
            message: message.into(),
        })
    }

    /// The response headers, then silence (the connection stays open).
    pub fn hang() -> Self {
        Self::stream(Vec::new(), End::Hang)
    }

    /// The request is read and no response ever starts.
    pub fn hang_before_headers() -> Self {
        Self::new(Kind::HangBeforeHeaders)
    }

    /// Some text events, half an event, then the connection is dropped (no terminator).
    pub fn drop_mid_stream() -> Self {
        Self::stream(vec![Part::Text("a partial answer".into())], End::Drop)
    }

    /// A text event, then a chunk whose data is not JSON, then the normal end.
    pub fn malformed() -> Self {
        Self::stream(
            vec![Part::Text("before the bad chunk".into())],
            End::Malformed,
        )
    }

    /// An in-stream error of type `kind` (`overloaded_error`, `invalid_request_error`, …) right
    /// after the stream began with 200 (on the OpenAI route: a `data: {"error": …}` chunk).
    pub fn error_event(kind: impl Into<String>) -> Self {
        Self::stream(Vec::new(), End::ErrorEvent(kind.into()))
    }

    /// Waits `delay` before each event.
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// After this stream's pieces, hang instead of ending.
    pub fn then_hang(mut self) -> Self {
        self.set_end(End::Hang);
        self
    }

    /// After this stream's pieces, drop the connection mid-event instead of ending.
    pub fn then_drop(mut self) -> Self {
        self.set_end(End::Drop);
        self
    }

    /// The usage numbers the stream reports (by default derived from the sizes).
    pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = Some((input_tokens, output_tokens));
        self
    }

    /// Ends with the "token limit reached" stop reason (`length` / `max_tokens`).
    pub fn truncated(mut self) -> Self {
        self.truncated = true;
        self
    }

    /// Adds a `retry-after` header to a status reply.
    pub fn retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }

    fn set_end(&mut self, new: End) {
        if let Kind::Stream { end, .. } = &mut self.kind {
            *end = new;
        }
    }
}

/// Splits `text` into at least three pieces (fewer for shorter text) of at most 32 characters,
/// on character boundaries.
pub(crate) fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(3).clamp(1, 32);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_text() {
        assert_eq!(pieces("abcdefg"), vec!["abc", "def", "g"]);
        assert_eq!(pieces("ab"), vec!["a", "b"]);
        assert!(pieces("").is_empty());
        let long = "\u{e9}".repeat(100);
        let parts = pieces(&long);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), long);
    }

    #[test]
    fn builders_compose() {
        let reply = Reply::text_then_tool_call("t", "c1", "f", "{}").slow(Duration::from_millis(5));
        let Kind::Stream { parts, end } = &reply.kind else {
            panic!("a stream");
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(*end, End::Complete);
        assert_eq!(reply.delay, Duration::from_millis(5));
        let Kind::Stream { end, .. } = Reply::text("x").then_drop().kind else {
            panic!("a stream");
        };
        assert_eq!(end, End::Drop);
    }
}
