//! Small pieces of the SGP.22 v2.5 profile download that the eUICC and the SM-DP+ both compute:
//! - hashCc, the hashed Confirmation Code (§3.1.3.1 / §5.7.5 PrepareDownload);
//! - `InitialiseSecureChannelRequest` (`BF23`, §5.5.1, §2.5.4): building it on the SM-DP+,
//!   parsing it on the eUICC, and the exact bytes `smdpSign` covers;
//! - `ReplaceSessionKeysRequest` (`BF26`, §5.5.4): the PPK-ENC/PPK-MAC/initial MCV that the
//!   `A2` segment carries.
//!
//! All three are a handful of TLVs, built and walked with [`crate::tlv`]; signatures are over
//! the exact received bytes, never a re-encoding.

use super::ecdsa::{RawSignature, SigningKey};
use super::kdf::{SessionKeys, KEY_LENGTH_AES128, KEY_TYPE_AES, MAX_HOST_ID_LEN, SESSION_KEY_LEN};
use crate::tlv::{self, TlvError};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// `InitialiseSecureChannelRequest ::= [35] SEQUENCE` (SGP.22 §5.5.1).
pub const TAG_INITIALISE_SECURE_CHANNEL: u32 = 0xBF23;
/// `remoteOpId RemoteOpId` (`[2]`), always installBoundProfilePackage (1).
pub const TAG_REMOTE_OP_ID: u32 = 0x82;
/// `transactionId [0] TransactionId`.
pub const TAG_TRANSACTION_ID: u32 = 0x80;
/// `controlRefTemplate [6] IMPLICIT ControlRefTemplate`.
pub const TAG_CONTROL_REF_TEMPLATE: u32 = 0xA6;
/// `keyType [0] Octet1` inside the control reference template.
pub const TAG_CRT_KEY_TYPE: u32 = 0x80;
/// `keyLen [1] Octet1`.
pub const TAG_CRT_KEY_LEN: u32 = 0x81;
/// `hostId [4] OctetTo16`.
pub const TAG_CRT_HOST_ID: u32 = 0x84;
/// `smdpOtpk` / `euiccOtpk [APPLICATION 73]`: a one-time public key.
pub const TAG_OTPK: u32 = 0x5F49;
/// `smdpSign [APPLICATION 55]`: a raw signature.
pub const TAG_SIGNATURE: u32 = 0x5F37;
/// `ReplaceSessionKeysRequest ::= [38] SEQUENCE` (SGP.22 §5.5.4, automatic tags inside).
pub const TAG_REPLACE_SESSION_KEYS: u32 = 0xBF26;
/// `initialMacChainingValue [0]`, `ppkEnc [1]`, `ppkCmac [2]`.
pub const TAG_RSK_INITIAL_MCV: u32 = 0x80;
pub const TAG_RSK_PPK_ENC: u32 = 0x81;
pub const TAG_RSK_PPK_CMAC: u32 = 0x82;
/// RemoteOpId `installBoundProfilePackage` (SGP.22 §5.5.1).
pub const REMOTE_OP_INSTALL_BPP: u8 = 0x01;

/// Why a download structure was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownloadError {
    #[error("{what}: not BER-TLV: {source}")]
    Tlv {
        what: &'static str,
        source: TlvError,
    },
    #[error("{what}: tag {found:#x}, expected {expected:#x}")]
    UnexpectedTag {
        what: &'static str,
        expected: u32,
        found: u32,
    },
    #[error("{what}: field {tag:#x} missing")]
    Missing { what: &'static str, tag: u32 },
    #[error("{what}: field {tag:#x} is {found} bytes, expected {expected}")]
    BadLength {
        what: &'static str,
        tag: u32,
        found: usize,
        expected: &'static str,
    },
    #[error("{what}: field {tag:#x} after smdpSign, expected smdpSign last")]
    FieldAfterSignature { what: &'static str, tag: u32 },
}

/// hashCc = SHA-256(SHA-256(confirmation code) ‖ transactionId) (SGP.22 §3.1.3.1).
pub fn hash_cc(code: &[u8], transaction_id: &[u8]) -> [u8; 32] {
    let inner = Sha256::digest(code);
    Sha256::new()
        .chain_update(inner)
        .chain_update(transaction_id)
        .finalize()
        .into()
}

/// A raw signature as the ASN.1 messages carry it: `5F37 40 ‖ r‖s`. Several signatures cover
/// another one in this form (smdpSignature2 covers `5F37 40 ‖ euiccSignature1`,
/// euiccSignature2 covers the whole smdpSignature2 field; SGP.22 §5.6.2, §5.7.5).
pub fn signature_field(signature: &[u8]) -> Vec<u8> {
    tlv::encode(TAG_SIGNATURE, signature)
}

/// A parsed `InitialiseSecureChannelRequest` (`BF23`), borrowing the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialiseSecureChannel<'a> {
    pub remote_op_id: u8,
    pub transaction_id: &'a [u8],
    pub key_type: u8,
    pub key_len: u8,
    pub host_id: &'a [u8],
    /// otPK.DP.ECKA as received (`04‖X‖Y` expected; checked by the key agreement).
    pub smdp_otpk: &'a [u8],
    /// smdpSign: raw `r‖s`.
    pub smdp_sign: &'a [u8],
    /// The received bytes of every field before `smdpSign` (the signed part).
    signed_part: &'a [u8],
}

impl<'a> InitialiseSecureChannel<'a> {
    const WHAT: &'static str = "InitialiseSecureChannelRequest";

    /// Parses a whole `BF23` element. Field values are checked for presence and for the sizes
    /// the ASN.1 gives (Octet1, OctetTo16, 64-byte signature); key type and length are left to
    /// [`derive_session_keys`](super::kdf::derive_session_keys).
    pub fn parse(bf23: &'a [u8]) -> Result<Self, DownloadError> {
        const WHAT: &str = InitialiseSecureChannel::WHAT;
        let outer =
            tlv::parse_one(bf23).map_err(|source| DownloadError::Tlv { what: WHAT, source })?;
        if outer.tag != TAG_INITIALISE_SECURE_CHANNEL {
            return Err(DownloadError::UnexpectedTag {
                what: WHAT,
                expected: TAG_INITIALISE_SECURE_CHANNEL,
                found: outer.tag,
            });
        }
        let (mut remote_op_id, mut transaction_id, mut crt, mut smdp_otpk) =
            (None, None, None, None);
        let mut signature: Option<(&[u8], usize)> = None;
        let mut offset = 0;
        for child in outer.children() {
            let child = child.map_err(|source| DownloadError::Tlv { what: WHAT, source })?;
            if signature.is_some() {
                return Err(DownloadError::FieldAfterSignature {
                    what: WHAT,
                    tag: child.tag,
                });
            }
            match child.tag {
                TAG_REMOTE_OP_ID => remote_op_id = Some(one_byte(child.tag, child.value, WHAT)?),
                TAG_TRANSACTION_ID => transaction_id = Some(child.value),
                TAG_CONTROL_REF_TEMPLATE => crt = Some(child),
                TAG_OTPK => smdp_otpk = Some(child.value),
                TAG_SIGNATURE => signature = Some((child.value, offset)),
                _ => {}
            }
            offset += child.raw.len();
        }
        let missing = |tag| DownloadError::Missing { what: WHAT, tag };
        let crt = crt.ok_or(missing(TAG_CONTROL_REF_TEMPLATE))?;
        let field = |tag| crt.find(tag).map(|t| t.value).ok_or(missing(tag));
        let host_id = field(TAG_CRT_HOST_ID)?;
        if host_id.len() > MAX_HOST_ID_LEN {
            return Err(DownloadError::BadLength {
                what: WHAT,
                tag: TAG_CRT_HOST_ID,
                found: host_id.len(),
                expected: "at most 16",
            });
        }
        let (smdp_sign, signed_len) = signature.ok_or(missing(TAG_SIGNATURE))?;
        if smdp_sign.len() != super::ecdsa::RAW_SIGNATURE_LEN {
            return Err(DownloadError::BadLength {
                what: WHAT,
                tag: TAG_SIGNATURE,
                found: smdp_sign.len(),
                expected: "64",
            });
        }
        Ok(Self {
            remote_op_id: remote_op_id.ok_or(missing(TAG_REMOTE_OP_ID))?,
            transaction_id: transaction_id.ok_or(missing(TAG_TRANSACTION_ID))?,
            key_type: one_byte(TAG_CRT_KEY_TYPE, field(TAG_CRT_KEY_TYPE)?, WHAT)?,
            key_len: one_byte(TAG_CRT_KEY_LEN, field(TAG_CRT_KEY_LEN)?, WHAT)?,
            host_id,
            smdp_otpk: smdp_otpk.ok_or(missing(TAG_OTPK))?,
            smdp_sign,
            signed_part: outer.value.get(..signed_len).unwrap_or_default(),
        })
    }

    /// What smdpSign covers (SGP.22 §5.5.1): the received remoteOpId, transactionId,
    /// controlRefTemplate and smdpOtpk TLVs, followed by `5F49 ‖ L ‖ euiccOtpk` (the eUICC's
    /// own one-time public key).
    pub fn signature_input(&self, euicc_otpk: &[u8]) -> Vec<u8> {
        [self.signed_part, &tlv::encode(TAG_OTPK, euicc_otpk)].concat()
    }
}

/// The signed part of `BF23` as the SM-DP+ builds it: `82 01 01 ‖ 80 L txId ‖
/// A6 { 80 01 88 ‖ 81 01 10 ‖ 84 L hostId } ‖ 5F49 L smdpOtpk`.
pub fn initialise_secure_channel_signed_part(
    transaction_id: &[u8],
    host_id: &[u8],
    smdp_otpk: &[u8],
) -> Vec<u8> {
    let crt = [
        tlv::encode(TAG_CRT_KEY_TYPE, &[KEY_TYPE_AES]),
        tlv::encode(TAG_CRT_KEY_LEN, &[KEY_LENGTH_AES128]),
        tlv::encode(TAG_CRT_HOST_ID, host_id),
    ]
    .concat();
    [
        tlv::encode(TAG_REMOTE_OP_ID, &[REMOTE_OP_INSTALL_BPP]),
        tlv::encode(TAG_TRANSACTION_ID, transaction_id),
        tlv::encode(TAG_CONTROL_REF_TEMPLATE, &crt),
        tlv::encode(TAG_OTPK, smdp_otpk),
    ]
    .concat()
}

/// Builds the whole `BF23` on the SM-DP+: signs (signed part ‖ `5F49` euiccOtpk) with the
/// DPpb key and appends `5F37 40 ‖ smdpSign`.
pub fn build_initialise_secure_channel(
    transaction_id: &[u8],
    host_id: &[u8],
    smdp_otpk: &[u8],
    euicc_otpk: &[u8],
    dp_pb: &SigningKey,
) -> Vec<u8> {
    let signed = initialise_secure_channel_signed_part(transaction_id, host_id, smdp_otpk);
    let to_sign = [signed.as_slice(), &tlv::encode(TAG_OTPK, euicc_otpk)].concat();
    let signature: RawSignature = dp_pb.sign(&to_sign);
    let value = [signed, signature_field(&signature)].concat();
    tlv::encode(TAG_INITIALISE_SECURE_CHANNEL, &value)
}

/// `ReplaceSessionKeysRequest` (`BF26 { 80 initialMCV, 81 ppkEnc, 82 ppkCmac }`).
#[derive(Clone, PartialEq, Eq)]
pub struct ReplaceSessionKeys {
    pub keys: SessionKeys,
}

impl std::fmt::Debug for ReplaceSessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplaceSessionKeys { .. }")
    }
}

impl ReplaceSessionKeys {
    const WHAT: &'static str = "ReplaceSessionKeysRequest";

    /// The DER `BF26` element (what the `A2` segment encrypts).
    pub fn to_der(&self) -> Vec<u8> {
        let value = [
            tlv::encode(TAG_RSK_INITIAL_MCV, &self.keys.initial_mcv),
            tlv::encode(TAG_RSK_PPK_ENC, &self.keys.s_enc),
            tlv::encode(TAG_RSK_PPK_CMAC, &self.keys.s_mac),
        ]
        .concat();
        tlv::encode(TAG_REPLACE_SESSION_KEYS, &value)
    }

    /// Parses a `BF26` element; each key must be 16 bytes (AES-128, the only algorithm of
    /// SGP.22 v2.5).
    pub fn from_der(der: &[u8]) -> Result<Self, DownloadError> {
        const WHAT: &str = ReplaceSessionKeys::WHAT;
        let outer =
            tlv::parse_one(der).map_err(|source| DownloadError::Tlv { what: WHAT, source })?;
        if outer.tag != TAG_REPLACE_SESSION_KEYS {
            return Err(DownloadError::UnexpectedTag {
                what: WHAT,
                expected: TAG_REPLACE_SESSION_KEYS,
                found: outer.tag,
            });
        }
        if let Some(Err(source)) = outer.children().find(Result::is_err) {
            return Err(DownloadError::Tlv { what: WHAT, source });
        }
        let key = |tag| -> Result<[u8; SESSION_KEY_LEN], DownloadError> {
            let value = outer
                .find(tag)
                .ok_or(DownloadError::Missing { what: WHAT, tag })?
                .value;
            value.try_into().map_err(|_| DownloadError::BadLength {
                what: WHAT,
                tag,
                found: value.len(),
                expected: "16",
            })
        };
        Ok(Self {
            keys: SessionKeys {
                initial_mcv: key(TAG_RSK_INITIAL_MCV)?,
                s_enc: key(TAG_RSK_PPK_ENC)?,
                s_mac: key(TAG_RSK_PPK_CMAC)?,
            },
        })
    }
}

fn one_byte(tag: u32, value: &[u8], what: &'static str) -> Result<u8, DownloadError> {
    match value {
        [b] => Ok(*b),
        _ => Err(DownloadError::BadLength {
            what,
            tag,
            found: value.len(),
            expected: "1",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ecdsa::VerifyingKey;
    use super::super::vectors::{self, hex, CERT_DPPB_NIST, SK_DPPB_NIST};
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    #[test]
    fn hash_cc_matches_pyca_vectors() {
        let v = vectors::load("download");
        let cases = v["hash_cc"].as_array().unwrap();
        assert_eq!(cases.len(), 3);
        for case in cases {
            let got = hash_cc(&hex(&case["code"]), &hex(&case["transaction_id"]));
            assert_eq!(got.to_vec(), hex(&case["hash_cc"]));
        }
    }

    #[test]
    fn parses_a_bf23_signed_by_pyca_and_rebuilds_its_signature_input() {
        let v = vectors::load("download");
        let bf23 = &v["bf23"];
        let der = hex(&bf23["der"]);
        let isc = InitialiseSecureChannel::parse(&der).unwrap();
        assert_eq!(isc.remote_op_id, REMOTE_OP_INSTALL_BPP);
        assert_eq!(isc.transaction_id, hex(&bf23["transaction_id"]));
        assert_eq!(
            (isc.key_type, isc.key_len),
            (KEY_TYPE_AES, KEY_LENGTH_AES128)
        );
        assert_eq!(isc.host_id, hex(&bf23["host_id"]));
        assert_eq!(isc.smdp_otpk, hex(&bf23["smdp_otpk"]));
        assert_eq!(isc.smdp_sign, hex(&bf23["smdp_sign"]));
        let input = isc.signature_input(&hex(&bf23["euicc_otpk"]));
        assert_eq!(input, hex(&bf23["signature_input"]));
        let dp_pb = VerifyingKey::from_certificate_der(CERT_DPPB_NIST).unwrap();
        dp_pb.verify(&input, isc.smdp_sign).unwrap();
        // Another eUICC key: the signature no longer covers it.
        assert!(dp_pb
            .verify(&isc.signature_input(&[0x04; 65]), isc.smdp_sign)
            .is_err());
    }

    #[test]
    fn builds_the_same_bf23_as_pyca_up_to_the_signature() {
        let v = vectors::load("download");
        let bf23 = &v["bf23"];
        let key = SigningKey::from_pem(SK_DPPB_NIST).unwrap();
        let ours = build_initialise_secure_channel(
            &hex(&bf23["transaction_id"]),
            &hex(&bf23["host_id"]),
            &hex(&bf23["smdp_otpk"]),
            &hex(&bf23["euicc_otpk"]),
            &key,
        );
        let theirs = hex(&bf23["der"]);
        // Same length, same bytes up to the 64 signature bytes at the end (nonces differ).
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours[..ours.len() - 64], theirs[..theirs.len() - 64]);
        let parsed = InitialiseSecureChannel::parse(&ours).unwrap();
        key.verifying_key()
            .verify(
                &parsed.signature_input(&hex(&bf23["euicc_otpk"])),
                parsed.smdp_sign,
            )
            .unwrap();
    }

    fn signed_part() -> Vec<u8> {
        initialise_secure_channel_signed_part(&[1; 16], b"h", &[4; 65])
    }

    #[rstest]
    #[case::wrong_outer_tag(
        tlv::encode(0xBF24, &[signed_part(), tlv::encode(TAG_SIGNATURE, &[0; 64])].concat()),
        DownloadError::UnexpectedTag { what: "InitialiseSecureChannelRequest", expected: 0xBF23, found: 0xBF24 }
    )]
    #[case::no_signature(
        tlv::encode(0xBF23, &signed_part()),
        DownloadError::Missing { what: "InitialiseSecureChannelRequest", tag: TAG_SIGNATURE }
    )]
    #[case::short_signature(
        tlv::encode(0xBF23, &[signed_part(), tlv::encode(TAG_SIGNATURE, &[0; 63])].concat()),
        DownloadError::BadLength { what: "InitialiseSecureChannelRequest", tag: TAG_SIGNATURE, found: 63, expected: "64" }
    )]
    #[case::field_after_signature(
        tlv::encode(0xBF23, &[signed_part(), tlv::encode(TAG_SIGNATURE, &[0; 64]), tlv::encode(0x81, &[])].concat()),
        DownloadError::FieldAfterSignature { what: "InitialiseSecureChannelRequest", tag: 0x81 }
    )]
    #[case::no_crt(
        tlv::encode(0xBF23, &[tlv::encode(0x82, &[1]), tlv::encode(TAG_SIGNATURE, &[0; 64])].concat()),
        DownloadError::Missing { what: "InitialiseSecureChannelRequest", tag: TAG_CONTROL_REF_TEMPLATE }
    )]
    fn rejects_malformed_bf23(#[case] bytes: Vec<u8>, #[case] err: DownloadError) {
        assert_eq!(InitialiseSecureChannel::parse(&bytes), Err(err));
    }

    #[test]
    fn signature_field_is_5f37_40_and_the_raw_signature() {
        let field = signature_field(&[0xAA; 64]);
        assert_eq!(field[..3], [0x5F, 0x37, 0x40]);
        assert_eq!(field[3..], [0xAA; 64]);
    }

    #[test]
    fn replace_session_keys_round_trips_through_der() {
        let keys = SessionKeys {
            initial_mcv: [1; 16],
            s_enc: [2; 16],
            s_mac: [3; 16],
        };
        let der = ReplaceSessionKeys { keys: keys.clone() }.to_der();
        let expected = format!(
            "BF2636 8010{} 8110{} 8210{}",
            "01".repeat(16),
            "02".repeat(16),
            "03".repeat(16)
        );
        assert_eq!(hex::encode_upper(&der), expected.replace(' ', ""));
        assert_eq!(ReplaceSessionKeys::from_der(&der).unwrap().keys, keys);
    }

    #[test]
    fn rejects_replace_session_keys_with_a_short_key() {
        let der = tlv::encode(
            TAG_REPLACE_SESSION_KEYS,
            &[
                tlv::encode(0x80, &[0; 16]),
                tlv::encode(0x81, &[0; 15]),
                tlv::encode(0x82, &[0; 16]),
            ]
            .concat(),
        );
        assert_eq!(
            ReplaceSessionKeys::from_der(&der).unwrap_err(),
            DownloadError::BadLength {
                what: "ReplaceSessionKeysRequest",
                tag: 0x81,
                found: 15,
                expected: "16"
            }
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = InitialiseSecureChannel::parse(&bytes);
            let _ = ReplaceSessionKeys::from_der(&bytes);
            let mut bf23 = vec![0xBF, 0x23];
            tlv::push_length(&mut bf23, bytes.len());
            bf23.extend_from_slice(&bytes);
            let _ = InitialiseSecureChannel::parse(&bf23);
        }
    }
}
