//! BER-TLV as ISO/IEC 7816-4 §5.2 and ITU-T X.690 §8.1 define it: multi-byte tags, definite
//! lengths in short and long form. Used by the FCP templates (TS 102 221 §11.1.1.3), ES10
//! messages (SGP.22 §5.7) and SAIP profile packages.
//!
//! Written by hand: the crates that parse BER (der, asn1-rs) want a schema for every
//! structure; the card needs a small, allocation-light walker over raw bytes that keeps the
//! exact encoded bytes of each element (signatures are computed over them, SGP.22 §5.7.13).

use thiserror::Error;

/// Why bytes are not a BER-TLV element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TlvError {
    #[error("BER-TLV: input ended inside a tag, length or value")]
    Truncated,
    #[error("BER-TLV: tag longer than 4 bytes")]
    TagTooLong,
    #[error("BER-TLV: indefinite or over-long length form")]
    BadLength,
}

/// One element: its tag (the tag bytes as a big-endian number, e.g. `0xBF2D`), its value,
/// and the exact bytes it was read from (tag, length and value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u32,
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Constructed (bit 6 of the first tag byte set): its value is a sequence of elements.
    pub fn is_constructed(&self) -> bool {
        self.raw.first().is_some_and(|b| b & 0x20 != 0)
    }

    /// The elements inside a constructed value.
    pub fn children(&self) -> TlvIter<'a> {
        TlvIter::new(self.value)
    }

    /// The first child with `tag`, if any (errors in the value count as absent).
    pub fn find(&self, tag: u32) -> Option<Tlv<'a>> {
        self.children().map_while(Result::ok).find(|t| t.tag == tag)
    }
}

/// Reads one element from the start of `input`; returns it and the bytes after it.
pub fn parse(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    let (tag, tag_len) = read_tag(input)?;
    let rest = input.get(tag_len..).ok_or(TlvError::Truncated)?;
    let (len, len_len) = read_length(rest)?;
    let header = tag_len + len_len;
    let end = header.checked_add(len).ok_or(TlvError::BadLength)?;
    let raw = input.get(..end).ok_or(TlvError::Truncated)?;
    let value = raw.get(header..).ok_or(TlvError::Truncated)?;
    let after = input.get(end..).ok_or(TlvError::Truncated)?;
    Ok((Tlv { tag, value, raw }, after))
}

/// Reads exactly one element that must fill `input` completely.
pub fn parse_one(input: &[u8]) -> Result<Tlv<'_>, TlvError> {
    match parse(input)? {
        (tlv, []) => Ok(tlv),
        _ => Err(TlvError::BadLength),
    }
}

fn read_tag(input: &[u8]) -> Result<(u32, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    let mut tag = u32::from(first);
    if first & 0x1F != 0x1F {
        return Ok((tag, 1));
    }
    // X.690 §8.1.2.4: subsequent octets carry bit 8 = "more follow".
    for i in 1..4 {
        let b = *input.get(i).ok_or(TlvError::Truncated)?;
        tag = (tag << 8) | u32::from(b);
        if b & 0x80 == 0 {
            return Ok((tag, i + 1));
        }
    }
    Err(TlvError::TagTooLong)
}

fn read_length(input: &[u8]) -> Result<(usize, usize), TlvError> {
    let first = *input.first().ok_or(TlvError::Truncated)?;
    match first {
        0x00..=0x7F => Ok((usize::from(first), 1)),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7F);
            let bytes = input.get(1..=n).ok_or(TlvError::Truncated)?;
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            Ok((len, n + 1))
        }
        // 0x80 is the indefinite form, which DER and the card's messages never use.
        _ => Err(TlvError::BadLength),
    }
}

/// Iterates over consecutive elements; stops after the first error.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> TlvIter<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Self {
            rest: input,
            failed: false,
        }
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        match parse(self.rest) {
            Ok((tlv, rest)) => {
                self.rest = rest;
                Some(Ok(tlv))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Appends the BER length of `len` (shortest definite form).
pub fn push_length(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
        _ => out.extend_from_slice(&[0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]),
    }
}

/// Appends the tag bytes of `tag` (as returned in [`Tlv::tag`]).
pub fn push_tag(out: &mut Vec<u8>, tag: u32) {
    let bytes = tag.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    out.extend_from_slice(bytes.get(skip..).unwrap_or(&bytes));
}

/// Encodes one element.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    push_tag(&mut out, tag);
    push_length(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// Encodes a constructed element from already encoded children.
pub fn encode_constructed(tag: u32, children: &[&[u8]]) -> Vec<u8> {
    encode(tag, &children.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    #[case::one_byte_tag("80 02 0102", 0x80, "0102")]
    #[case::two_byte_tag("BF2D 00", 0xBF2D, "")]
    #[case::three_byte_tag("5F8101 01 AA", 0x5F8101, "AA")]
    #[case::long_length_81("04 81 80", 0x04, "")]
    fn reads_tag_and_value(#[case] input: &str, #[case] tag: u32, #[case] value: &str) {
        let mut bytes = hex::decode(input.replace(' ', "")).unwrap();
        if tag == 0x04 {
            bytes.extend(std::iter::repeat_n(0x11, 0x80));
        }
        let tlv = parse_one(&bytes).unwrap();
        assert_eq!(tlv.tag, tag);
        if tag != 0x04 {
            assert_eq!(hex::encode_upper(tlv.value), value);
        } else {
            assert_eq!(tlv.value.len(), 0x80);
        }
        assert_eq!(tlv.raw, &bytes[..]);
    }

    #[rstest]
    #[case::empty("", TlvError::Truncated)]
    #[case::tag_without_length("BF2D", TlvError::Truncated)]
    #[case::value_short("80 03 0102", TlvError::Truncated)]
    #[case::indefinite("30 80 0000", TlvError::BadLength)]
    #[case::five_byte_tag("1F 81 81 81 81 00", TlvError::TagTooLong)]
    fn rejects_malformed_input(#[case] input: &str, #[case] err: TlvError) {
        let bytes = hex::decode(input.replace(' ', "")).unwrap();
        assert_eq!(parse(&bytes).unwrap_err(), err);
    }

    #[test]
    fn finds_children_of_constructed_elements() {
        let inner = [encode(0x5A, &[1, 2]), encode(0x90, &[3])].concat();
        let outer = encode(0xE3, &inner);
        let tlv = parse_one(&outer).unwrap();
        assert!(tlv.is_constructed());
        assert_eq!(tlv.find(0x90).unwrap().value, &[3]);
        assert!(tlv.find(0x91).is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = TlvIter::new(&bytes).count();
        }

        #[test]
        fn encode_then_parse_round_trips(
            tag in prop_oneof![0x80u32..=0x9E, 0xBF00u32..=0xBF7F, 0x5F00u32..=0x5F7F],
            value in proptest::collection::vec(any::<u8>(), 0..70_000),
        ) {
            let bytes = encode(tag, &value);
            let tlv = parse_one(&bytes).unwrap();
            prop_assert_eq!(tlv.tag, tag);
            prop_assert_eq!(tlv.value, &value[..]);
        }
    }
}
