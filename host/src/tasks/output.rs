//! Command output as event text: UTF-8 kept whole across chunk boundaries,
//! anything else sent as base64.

use base64::Engine;

/// Turns one stream's byte chunks into text pieces.
#[derive(Debug, Default)]
pub struct Decoder {
    carry: Vec<u8>,
}

impl Decoder {
    /// The next piece: `(text, encoding)` where encoding is `utf-8` or `base64`.
    /// A character split between chunks waits for its end.
    pub fn push(&mut self, bytes: &[u8]) -> Option<(String, &'static str)> {
        self.carry.extend_from_slice(bytes);
        let data = std::mem::take(&mut self.carry);
        match std::str::from_utf8(&data) {
            Ok(text) => (!text.is_empty()).then(|| (text.to_string(), "utf-8")),
            Err(e) if e.error_len().is_none() && data.len() - e.valid_up_to() < 4 => {
                let (valid, rest) = data.split_at(e.valid_up_to());
                self.carry = rest.to_vec();
                (!valid.is_empty()).then(|| (String::from_utf8_lossy(valid).into_owned(), "utf-8"))
            }
            Err(_) => Some((
                base64::engine::general_purpose::STANDARD.encode(&data),
                "base64",
            )),
        }
    }

    /// What is left at the end (an unfinished character, as base64).
    pub fn finish(&mut self) -> Option<(String, &'static str)> {
        let rest = std::mem::take(&mut self.carry);
        (!rest.is_empty()).then(|| {
            (
                base64::engine::general_purpose::STANDARD.encode(&rest),
                "base64",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Decoder;

    #[test]
    fn split_characters_wait_for_their_end() {
        let mut d = Decoder::default();
        let euro = "€".as_bytes();
        assert_eq!(d.push(b"a"), Some(("a".into(), "utf-8")));
        assert_eq!(d.push(&euro[..1]), None);
        assert_eq!(d.push(&euro[1..]), Some(("€".into(), "utf-8")));
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn binary_goes_as_base64() {
        let mut d = Decoder::default();
        assert_eq!(d.push(&[0xff, 0x00]), Some(("/wA=".into(), "base64")));
        assert_eq!(d.push(&[0xe2]), None);
        assert_eq!(d.finish(), Some(("4g==".into(), "base64")));
    }
}
