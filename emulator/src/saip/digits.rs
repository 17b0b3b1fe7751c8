//! Digit encodings the card and the SM-DP+ share: BCD strings (plain and nibble-swapped), the
//! ICCID (ITU-T E.118; SAIP header vs. EF.ICCID, TS 102 221 §13.2), the IMSI in EF.IMSI
//! (TS 31.102 §4.2.2) and the MSISDN record of EF.MSISDN (TS 31.102 §4.2.26, coded like
//! EF.ADN, TS 31.102 §4.4.2.3 / TS 51.011 §10.5.1, BCD per TS 24.008 §10.5.4.7).

use super::SaipError;

/// The padding nibble of BCD strings (TS 102 221 §13.2, TS 31.102 §4.2.2).
const PAD_NIBBLE: u8 = 0x0F;
/// EF.ICCID and the SAIP header ICCID are 10 bytes (TS 102 221 §13.2; SAIP `iccid OCTET STRING (SIZE (10))`).
pub const ICCID_LEN: usize = 10;
/// EF.IMSI is 9 bytes: a length byte and 8 bytes of digits (TS 31.102 §4.2.2).
pub const EF_IMSI_LEN: usize = 9;
/// TS 31.102 §4.2.2: an IMSI has at most 15 digits (TS 23.003 §2.2); 6 is MCC + MNC + 1.
const IMSI_DIGITS: std::ops::RangeInclusive<usize> = 6..=15;
/// TS 31.102 §4.2.2: the low nibble of byte 2 says odd (9) or even (1) digit count.
const IMSI_PARITY_ODD: u8 = 0x09;
const IMSI_PARITY_EVEN: u8 = 0x01;
/// EF.MSISDN / EF.ADN record tail after the alpha identifier (TS 31.102 §4.4.2.3): length byte,
/// TON/NPI, 10 bytes of BCD number, capability/configuration id, extension record id.
const ADN_TAIL_LEN: usize = 14;
const ADN_NUMBER_BYTES: usize = 10;
/// TON/NPI (TS 24.008 §10.5.4.7): international number, ISDN/telephony numbering plan.
const TON_NPI_INTERNATIONAL: u8 = 0x91;
/// TON/NPI: unknown type of number, ISDN/telephony numbering plan.
const TON_NPI_UNKNOWN: u8 = 0x81;
const UNUSED: u8 = 0xFF;

fn digit_value(c: char, what: &'static str) -> Result<u8, SaipError> {
    c.to_digit(10)
        .map(|d| d as u8)
        .ok_or_else(|| SaipError::BadDigits {
            what,
            reason: format!("'{c}' is not a decimal digit"),
        })
}

fn check_len(digits: &str, max: usize, what: &'static str) -> Result<(), SaipError> {
    if digits.is_empty() || digits.len() > max {
        return Err(SaipError::BadDigits {
            what,
            reason: format!("expected 1 to {max} digits, got {}", digits.len()),
        });
    }
    Ok(())
}

/// Plain BCD, first digit in the HIGH nibble, padded with 'F' to `len` bytes. The SAIP
/// `ProfileHeader.iccid` uses this order (SAIP §8.1.1).
pub fn encode_bcd(digits: &str, len: usize, what: &'static str) -> Result<Vec<u8>, SaipError> {
    check_len(digits, len * 2, what)?;
    let mut nibbles = digits
        .chars()
        .map(|c| digit_value(c, what))
        .collect::<Result<Vec<_>, _>>()?;
    nibbles.resize(len * 2, PAD_NIBBLE);
    Ok(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Reads plain BCD (first digit in the high nibble) up to the first 'F' nibble.
pub fn decode_bcd(bytes: &[u8], what: &'static str) -> Result<String, SaipError> {
    nibbles_to_digits(bytes.iter().flat_map(|b| [b >> 4, b & 0x0F]), what)
}

/// Nibble-swapped BCD ("semi-octets"), first digit in the LOW nibble, padded with 'F' to `len`
/// bytes: EF.ICCID (TS 102 221 §13.2) and dialling numbers (TS 24.008 §10.5.4.7).
pub fn encode_bcd_swapped(
    digits: &str,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, SaipError> {
    let plain = encode_bcd(digits, len, what)?;
    Ok(plain.iter().map(|b| b.rotate_left(4)).collect())
}

/// Reads nibble-swapped BCD up to the first 'F' nibble.
pub fn decode_bcd_swapped(bytes: &[u8], what: &'static str) -> Result<String, SaipError> {
    nibbles_to_digits(bytes.iter().flat_map(|b| [b & 0x0F, b >> 4]), what)
}

fn nibbles_to_digits(
    nibbles: impl Iterator<Item = u8>,
    what: &'static str,
) -> Result<String, SaipError> {
    let mut out = String::new();
    for n in nibbles {
        match n {
            0..=9 => out.push(char::from(b'0' + n)),
            PAD_NIBBLE => break,
            _ => {
                return Err(SaipError::BadDigits {
                    what,
                    reason: format!("nibble {n:X} is not a digit"),
                })
            }
        }
    }
    Ok(out)
}

/// The SAIP header form of an ICCID: plain BCD, 'F'-padded, 10 bytes.
pub fn encode_iccid_header(iccid: &str) -> Result<[u8; ICCID_LEN], SaipError> {
    let v = encode_bcd(iccid, ICCID_LEN, "ICCID")?;
    v.try_into().map_err(|_| SaipError::BadDigits {
        what: "ICCID",
        reason: "length".into(),
    })
}

/// The EF.ICCID content of an ICCID: nibble-swapped BCD, 'F'-padded, 10 bytes (TS 102 221 §13.2).
pub fn encode_iccid_ef(iccid: &str) -> Result<[u8; ICCID_LEN], SaipError> {
    let v = encode_bcd_swapped(iccid, ICCID_LEN, "ICCID")?;
    v.try_into().map_err(|_| SaipError::BadDigits {
        what: "ICCID",
        reason: "length".into(),
    })
}

/// Digits of an EF.ICCID content.
pub fn decode_iccid_ef(content: &[u8]) -> Result<String, SaipError> {
    decode_bcd_swapped(content, "ICCID")
}

/// The Luhn check digit (ITU-T E.118 Annex B) for the ICCID digits before it.
pub fn luhn_check_digit(digits: &str) -> Result<u8, SaipError> {
    let mut sum = 0u32;
    for (i, c) in digits.chars().rev().enumerate() {
        let d = u32::from(digit_value(c, "Luhn input")?);
        sum += if i % 2 == 0 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    Ok(((10 - sum % 10) % 10) as u8)
}

/// EF.IMSI content (TS 31.102 §4.2.2): byte 1 = number of following bytes used, byte 2 = first
/// digit (high nibble) and parity (low nibble), then the remaining digits nibble-swapped.
pub fn encode_imsi(imsi: &str) -> Result<[u8; EF_IMSI_LEN], SaipError> {
    if !IMSI_DIGITS.contains(&imsi.len()) {
        return Err(SaipError::BadDigits {
            what: "IMSI",
            reason: format!("expected 6 to 15 digits, got {}", imsi.len()),
        });
    }
    let digits = imsi
        .chars()
        .map(|c| digit_value(c, "IMSI"))
        .collect::<Result<Vec<_>, _>>()?;
    let parity = if digits.len() % 2 == 1 {
        IMSI_PARITY_ODD
    } else {
        IMSI_PARITY_EVEN
    };
    // The parity nibble takes the place of a digit: nibbles = parity, d1, d2, …
    let mut nibbles = Vec::with_capacity(16);
    nibbles.push(parity);
    nibbles.extend_from_slice(&digits);
    let used = nibbles.len().div_ceil(2);
    nibbles.resize(16, PAD_NIBBLE);
    let mut out = [UNUSED; EF_IMSI_LEN];
    out[0] = used as u8;
    for (slot, pair) in out.iter_mut().skip(1).zip(nibbles.chunks(2)) {
        *slot = pair[0] | (pair[1] << 4);
    }
    Ok(out)
}

/// Digits of an EF.IMSI content (TS 31.102 §4.2.2).
pub fn decode_imsi(content: &[u8]) -> Result<String, SaipError> {
    let (&len, rest) = content.split_first().ok_or_else(|| SaipError::BadDigits {
        what: "IMSI",
        reason: "EF.IMSI is empty".into(),
    })?;
    if len == UNUSED || len == 0 || usize::from(len) > rest.len() {
        return Err(SaipError::BadDigits {
            what: "IMSI",
            reason: format!("length byte {len:02X} is not 1..8"),
        });
    }
    let used = &rest[..usize::from(len)];
    // Skip the parity nibble (low nibble of the first byte).
    let mut nibbles = used.iter().flat_map(|b| [b & 0x0F, b >> 4]).skip(1);
    let digits = nibbles_to_digits(&mut nibbles, "IMSI")?;
    if digits.is_empty() {
        return Err(SaipError::BadDigits {
            what: "IMSI",
            reason: "no digits".into(),
        });
    }
    Ok(digits)
}

/// One EF.MSISDN record of `record_len` bytes (TS 31.102 §4.2.26 → §4.4.2.3): an unused alpha
/// identifier (`record_len - 14` bytes of 'FF'), the BCD length, TON/NPI ('+' prefix →
/// international), the number (max 20 digits) and unused CCP2/EXT5 identifiers.
pub fn encode_msisdn_record(msisdn: &str, record_len: usize) -> Result<Vec<u8>, SaipError> {
    if record_len < ADN_TAIL_LEN {
        return Err(SaipError::BadDigits {
            what: "MSISDN",
            reason: format!(
                "EF.MSISDN record of {record_len} bytes is shorter than {ADN_TAIL_LEN}"
            ),
        });
    }
    let (ton_npi, digits) = match msisdn.strip_prefix('+') {
        Some(d) => (TON_NPI_INTERNATIONAL, d),
        None => (TON_NPI_UNKNOWN, msisdn),
    };
    let bcd = encode_bcd_swapped(digits, ADN_NUMBER_BYTES, "MSISDN")?;
    let mut rec = vec![UNUSED; record_len - ADN_TAIL_LEN];
    // Length of BCD number/SSC contents: TON/NPI byte plus the bytes holding digits.
    rec.push((1 + digits.len().div_ceil(2)) as u8);
    rec.push(ton_npi);
    rec.extend_from_slice(&bcd);
    rec.extend_from_slice(&[UNUSED, UNUSED]);
    Ok(rec)
}

/// The number in an EF.MSISDN record, `None` when the record is unused (all 'FF').
pub fn decode_msisdn_record(record: &[u8]) -> Result<Option<String>, SaipError> {
    let Some(tail_start) = record.len().checked_sub(ADN_TAIL_LEN) else {
        return Err(SaipError::BadDigits {
            what: "MSISDN",
            reason: "record shorter than 14 bytes".into(),
        });
    };
    let tail = &record[tail_start..];
    let len = usize::from(tail[0]);
    if tail[0] == UNUSED || len == 0 {
        return Ok(None);
    }
    if len > 1 + ADN_NUMBER_BYTES {
        return Err(SaipError::BadDigits {
            what: "MSISDN",
            reason: format!("BCD length {len} exceeds 11"),
        });
    }
    let number = decode_bcd_swapped(&tail[2..1 + len], "MSISDN")?;
    let plus = if tail[1] & 0x70 == TON_NPI_INTERNATIONAL & 0x70 {
        "+"
    } else {
        ""
    };
    Ok(Some(format!("{plus}{number}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[rstest]
    #[case::ts48_unique(
        "8949449999999990163",
        "89 49 44 99 99 99 99 90 16 3F",
        "98 94 44 99 99 99 99 09 61 F3"
    )]
    #[case::twenty_digits(
        "89000123456789012341",
        "89 00 01 23 45 67 89 01 23 41",
        "98 00 10 32 54 76 98 10 32 14"
    )]
    fn encodes_iccid_for_header_and_ef(
        #[case] iccid: &str,
        #[case] header: &str,
        #[case] ef: &str,
    ) {
        assert_eq!(encode_iccid_header(iccid).unwrap().to_vec(), h(header));
        assert_eq!(encode_iccid_ef(iccid).unwrap().to_vec(), h(ef));
        assert_eq!(decode_bcd(&h(header), "ICCID").unwrap(), iccid);
        assert_eq!(decode_iccid_ef(&h(ef)).unwrap(), iccid);
    }

    #[rstest]
    #[case::ts48("001010123456063", "08 09 10 10 10 32 54 06 36")]
    #[case::even_14_digits("26201123456789", "08 21 26 10 21 43 65 87 F9")]
    #[case::six_digits_even("001011", "04 01 10 10 F1 FF FF FF FF")]
    fn encodes_imsi_as_ts_31_102(#[case] imsi: &str, #[case] ef: &str) {
        assert_eq!(encode_imsi(imsi).unwrap().to_vec(), h(ef));
        assert_eq!(decode_imsi(&h(ef)).unwrap(), imsi);
    }

    #[rstest]
    #[case::too_short("00101")]
    #[case::too_long("0010101234567890")]
    #[case::letters("00101012345606A")]
    fn rejects_bad_imsi(#[case] imsi: &str) {
        assert!(encode_imsi(imsi).is_err());
    }

    #[test]
    fn rejects_unset_ef_imsi() {
        assert!(decode_imsi(&[0xFF; 9]).is_err());
    }

    #[rstest]
    #[case::international(
        "+491701234567",
        24,
        "FFFFFFFFFFFFFFFFFFFF 07 91 947110325476 FFFFFFFF FF FF"
    )]
    #[case::national("0123", 14, "03 81 1032 FFFFFFFFFFFFFFFF FF FF")]
    fn encodes_msisdn_record_like_adn(#[case] number: &str, #[case] len: usize, #[case] rec: &str) {
        let r = encode_msisdn_record(number, len).unwrap();
        assert_eq!(hex::encode_upper(&r), rec.replace(' ', ""));
        assert_eq!(decode_msisdn_record(&r).unwrap().as_deref(), Some(number));
    }

    #[test]
    fn reads_unused_msisdn_record_as_none() {
        assert_eq!(decode_msisdn_record(&[0xFF; 24]).unwrap(), None);
    }

    #[rstest]
    #[case("894944999999999016", 3)]
    #[case("8900012345678901234", 1)]
    fn computes_luhn_digit_of_ts48_iccids(#[case] body: &str, #[case] check: u8) {
        assert_eq!(luhn_check_digit(body).unwrap(), check);
    }

    proptest! {
        #[test]
        fn imsi_round_trips(imsi in "[0-9]{6,15}") {
            prop_assert_eq!(decode_imsi(&encode_imsi(&imsi).unwrap()).unwrap(), imsi);
        }

        #[test]
        fn iccid_round_trips(iccid in "[0-9]{1,20}") {
            prop_assert_eq!(decode_iccid_ef(&encode_iccid_ef(&iccid).unwrap()).unwrap(), iccid.clone());
            prop_assert_eq!(decode_bcd(&encode_iccid_header(&iccid).unwrap(), "ICCID").unwrap(), iccid);
        }

        #[test]
        fn msisdn_round_trips(plus in any::<bool>(), digits in "[0-9]{1,20}", alpha in 0usize..20) {
            let number = if plus { format!("+{digits}") } else { digits };
            let rec = encode_msisdn_record(&number, alpha + 14).unwrap();
            prop_assert_eq!(decode_msisdn_record(&rec).unwrap(), Some(number));
        }

        #[test]
        fn digit_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode_imsi(&bytes);
            let _ = decode_msisdn_record(&bytes);
            let _ = decode_iccid_ef(&bytes);
        }
    }
}
