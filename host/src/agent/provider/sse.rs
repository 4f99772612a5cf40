//! An incremental parser of `text/event-stream` (server-sent events) over a byte stream.
//!
//! Bytes go in as the network delivers them (split anywhere, even inside a UTF-8 character);
//! complete events come out. Lines end in `\n`, `\r\n` or `\r`; `data:` lines of one event are
//! joined with `\n`; lines starting with `:` are comments; `id` and `retry` are ignored (the
//! clients never reconnect a step's stream).

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// The stream is not valid UTF-8 text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the event stream is not valid UTF-8")]
pub(crate) struct SseError;

/// The most bytes one line may take before the stream is refused (a runaway server).
const MAX_LINE: usize = 8 << 20;

/// The parser's state between two chunks.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buf: Vec<u8>,
    /// The last chunk ended in `\r`: a `\n` first in the next one belongs to it.
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// Feeds `chunk` and returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut chunk = chunk;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            chunk = chunk.strip_prefix(b"\n").unwrap_or(chunk);
        }
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            let Some(end) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') else {
                break;
            };
            let skip = match (rest[end], rest.get(end + 1)) {
                (b'\r', Some(b'\n')) => 2,
                (b'\r', None) => {
                    // Maybe the first half of `\r\n`: the next chunk drops a leading `\n`.
                    self.after_cr = true;
                    1
                }
                _ => 1,
            };
            let line = std::str::from_utf8(&rest[..end])
                .map_err(|_| SseError)?
                .to_owned();
            start += end + skip;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err(SseError);
        }
        Ok(events)
    }

    /// Whether part of an event (a line without its end, or lines without the blank line that
    /// dispatches them) is buffered: a stream that ends here was cut mid-event.
    pub fn pending(&self) -> bool {
        !self.buf.is_empty() || self.has_data || self.event.is_some()
    }

    /// Handles one complete line.
    fn line(&mut self, mut line: &str) -> Option<SseEvent> {
        if !self.started {
            self.started = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            let event = self.event.take();
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            return Some(SseEvent {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    fn all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(parser.push(chunk).expect("valid stream"));
        }
        assert!(!parser.pending(), "nothing left over");
        out
    }

    #[test]
    fn lf_and_crlf_and_cr_line_ends() {
        let expected = vec![ev(Some("a"), "1"), ev(None, "2")];
        assert_eq!(all(&[b"event: a\ndata: 1\n\ndata: 2\n\n"]), expected);
        assert_eq!(
            all(&[b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n"]),
            expected
        );
        assert_eq!(all(&[b"event: a\rdata: 1\r\rdata: 2\r\r"]), expected);
    }

    #[test]
    fn multi_line_data_comments_and_field_forms() {
        let events = all(&[b": keep-alive\ndata: one\ndata:two\ndata\nid: 7\nretry: 10\n\n"]);
        assert_eq!(events, vec![ev(None, "one\ntwo\n")]);
        // An event without data is not dispatched, and its type does not leak into the next.
        assert_eq!(all(&[b"event: ping\n\ndata: x\n\n"]), vec![ev(None, "x")]);
        assert_eq!(all(&[b"\xef\xbb\xbfdata: bom\n\n"]), vec![ev(None, "bom")]);
    }

    #[test]
    fn chunks_split_anywhere_give_the_same_events() {
        let stream =
            "event: content_block_delta\r\ndata: {\"text\":\"h\u{e9}llo \u{1f980}\"}\r\n\r\n\
                      data: [DONE]\n\n"
                .as_bytes();
        let whole = all(&[stream]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].data, "{\"text\":\"h\u{e9}llo \u{1f980}\"}");
        for split in 0..stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(all(&[a, b]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn an_event_ending_in_cr_is_dispatched_at_once() {
        let mut parser = SseParser::default();
        let events = parser.push(b"data: last\r\r").expect("valid");
        assert_eq!(events, vec![ev(None, "last")]);
        assert!(
            parser.push(b"\n").expect("valid").is_empty(),
            "the LF of a split CRLF"
        );
        assert_eq!(
            parser.push(b"data: next\r\n\r\n").expect("valid"),
            vec![ev(None, "next")]
        );
        assert!(!parser.pending());
    }

    #[test]
    fn a_partial_event_is_pending() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: {\"a\":").expect("valid").is_empty());
        assert!(parser.pending());
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b"data: complete line\n")
                .expect("valid")
                .is_empty()
        );
        assert!(parser.pending(), "no blank line yet");
        assert_eq!(
            parser.push(b"\n").expect("valid"),
            vec![ev(None, "complete line")]
        );
        assert!(!parser.pending());
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut parser = SseParser::default();
        assert_eq!(parser.push(b"data: \xff\xfe\n\n"), Err(SseError));
    }
}
