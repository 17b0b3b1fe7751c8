//! The SGP.22 v2.5 ASN.1 structures (§5.5, §5.6, §5.7, module RSPDefinitions, AUTOMATIC TAGS)
//! the SM-DP+ builds and reads, built and walked as BER-TLV with [`simlab_emulator::tlv`] so that
//! every signed structure keeps its exact received bytes (signatures are over them, §5.6.3).
//!
//! Tags follow the module's tagging: explicit `[n]` become context tags; components of a
//! SEQUENCE without any tag get automatic context tags `[0]`, `[1]`, … (X.680 §25.3).

use simlab_emulator::tlv::{self, Tlv, TlvError};
use thiserror::Error;

/// `EUICCInfo1 ::= [32] SEQUENCE` (§5.7.8).
pub const TAG_EUICC_INFO1: u32 = 0xBF20;
/// `svn [2] VersionType`.
pub const TAG_SVN: u32 = 0x82;
/// `euiccCiPKIdListForVerification [9] SEQUENCE OF SubjectKeyIdentifier`.
pub const TAG_CI_PKID_LIST_VERIFICATION: u32 = 0xA9;
/// `euiccCiPKIdListForSigning [10] SEQUENCE OF SubjectKeyIdentifier`.
pub const TAG_CI_PKID_LIST_SIGNING: u32 = 0xAA;
/// Universal tags.
pub const TAG_BOOLEAN: u32 = 0x01;
pub const TAG_INTEGER: u32 = 0x02;
pub const TAG_BIT_STRING: u32 = 0x03;
pub const TAG_OCTET_STRING: u32 = 0x04;
pub const TAG_OID: u32 = 0x06;
pub const TAG_UTF8_STRING: u32 = 0x0C;
pub const TAG_SEQUENCE: u32 = 0x30;
/// `transactionId [0]`, `euiccChallenge [1]`, `serverAddress [3]`, `serverChallenge [4]` of
/// ServerSigned1 / EuiccSigned1 (§5.7.13).
pub const TAG_CTX_0: u32 = 0x80;
pub const TAG_CTX_1: u32 = 0x81;
pub const TAG_CTX_2: u32 = 0x82;
pub const TAG_CTX_3: u32 = 0x83;
pub const TAG_CTX_4: u32 = 0x84;
/// Constructed context tags: CHOICE alternatives `[0]`/`[1]`/`[2]`.
pub const TAG_CTX_CONS_0: u32 = 0xA0;
pub const TAG_CTX_CONS_1: u32 = 0xA1;
pub const TAG_CTX_CONS_2: u32 = 0xA2;
pub const TAG_CTX_CONS_3: u32 = 0xA3;
/// `euiccInfo2 [34]` (`BF22`).
pub const TAG_EUICC_INFO2: u32 = 0xBF22;
/// `AuthenticateServerResponse ::= [56] CHOICE` (`BF38`).
pub const TAG_AUTHENTICATE_SERVER_RESPONSE: u32 = 0xBF38;
/// `PrepareDownloadResponse ::= [33] CHOICE` (`BF21`).
pub const TAG_PREPARE_DOWNLOAD_RESPONSE: u32 = 0xBF21;
/// `[APPLICATION 55]` signature and `[APPLICATION 73]` one-time public key.
pub const TAG_SIGNATURE: u32 = 0x5F37;
pub const TAG_OTPK: u32 = 0x5F49;
/// `StoreMetadataRequest ::= [37] SEQUENCE` (`BF25`, §5.5.3).
pub const TAG_STORE_METADATA: u32 = 0xBF25;
/// `Iccid ::= [APPLICATION 26]` (`5A`).
pub const TAG_ICCID: u32 = 0x5A;
/// `serviceProviderName [17]`, `profileName [18]`, `profileClass [21]`.
pub const TAG_SERVICE_PROVIDER_NAME: u32 = 0x91;
pub const TAG_PROFILE_NAME: u32 = 0x92;
pub const TAG_PROFILE_CLASS: u32 = 0x95;
/// `notificationConfigurationInfo [22] SEQUENCE OF NotificationConfigurationInformation`.
pub const TAG_NOTIFICATION_CONFIGURATION_INFO: u32 = 0xB6;
/// `ProfileInstallationResult ::= [55] SEQUENCE` (`BF37`).
pub const TAG_PROFILE_INSTALLATION_RESULT: u32 = 0xBF37;
/// `ProfileInstallationResultData ::= [39] SEQUENCE` (`BF27`).
pub const TAG_PROFILE_INSTALLATION_RESULT_DATA: u32 = 0xBF27;
/// `NotificationMetadata ::= [47] SEQUENCE` (`BF2F`).
pub const TAG_NOTIFICATION_METADATA: u32 = 0xBF2F;
/// `CancelSessionResponse ::= [65] CHOICE` (`BF41`).
pub const TAG_CANCEL_SESSION_RESPONSE: u32 = 0xBF41;
/// `ConfigureISDPRequest ::= [36] SEQUENCE` (`BF24`).
pub const TAG_CONFIGURE_ISDP: u32 = 0xBF24;
/// `BoundProfilePackage ::= [54] SEQUENCE` (`BF36`).
pub const TAG_BOUND_PROFILE_PACKAGE: u32 = 0xBF36;

/// `NotificationEvent` bits (§5.7.10 / RSPDefinitions), numbered from the most significant bit
/// of the first content byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationEvent {
    Install,
    Enable,
    Disable,
    Delete,
}

impl NotificationEvent {
    pub const ALL: [NotificationEvent; 4] = [
        NotificationEvent::Install,
        NotificationEvent::Enable,
        NotificationEvent::Disable,
        NotificationEvent::Delete,
    ];

    fn bit(self) -> u8 {
        match self {
            NotificationEvent::Install => 0x80,
            NotificationEvent::Enable => 0x40,
            NotificationEvent::Disable => 0x20,
            NotificationEvent::Delete => 0x10,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NotificationEvent::Install => "install",
            NotificationEvent::Enable => "enable",
            NotificationEvent::Disable => "disable",
            NotificationEvent::Delete => "delete",
        }
    }

    /// The events set in a BIT STRING value (unused-bits byte first).
    pub fn from_bit_string(value: &[u8]) -> Vec<NotificationEvent> {
        let first = value.get(1).copied().unwrap_or(0);
        NotificationEvent::ALL
            .into_iter()
            .filter(|e| first & e.bit() != 0)
            .collect()
    }

    /// DER BIT STRING value of a set of events: trailing zero bits dropped (X.690 §11.2.2).
    pub fn to_bit_string(events: &[NotificationEvent]) -> Vec<u8> {
        let byte = events.iter().fold(0u8, |acc, e| acc | e.bit());
        if byte == 0 {
            return vec![0];
        }
        let unused = byte.trailing_zeros() as u8;
        vec![unused, byte]
    }
}

/// Why a received structure was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Asn1Error {
    #[error("{what}: not BER-TLV: {source}")]
    Tlv {
        what: &'static str,
        source: TlvError,
    },
    #[error("{what}: tag {found:#x}, expected {expected}")]
    UnexpectedTag {
        what: &'static str,
        expected: &'static str,
        found: u32,
    },
    #[error("{what}: field {field} missing")]
    Missing {
        what: &'static str,
        field: &'static str,
    },
    #[error("{what}: field {field} is malformed: {reason}")]
    Malformed {
        what: &'static str,
        field: &'static str,
        reason: String,
    },
}

fn parse_whole<'a>(bytes: &'a [u8], what: &'static str) -> Result<Tlv<'a>, Asn1Error> {
    tlv::parse_one(bytes).map_err(|source| Asn1Error::Tlv { what, source })
}

fn expect_tag<'a>(
    t: Tlv<'a>,
    tag: u32,
    what: &'static str,
    expected: &'static str,
) -> Result<Tlv<'a>, Asn1Error> {
    if t.tag == tag {
        Ok(t)
    } else {
        Err(Asn1Error::UnexpectedTag {
            what,
            expected,
            found: t.tag,
        })
    }
}

fn children<'a>(t: &Tlv<'a>, what: &'static str) -> Result<Vec<Tlv<'a>>, Asn1Error> {
    t.children()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Asn1Error::Tlv { what, source })
}

fn field<'a>(
    list: &[Tlv<'a>],
    tag: u32,
    what: &'static str,
    name: &'static str,
) -> Result<Tlv<'a>, Asn1Error> {
    list.iter()
        .find(|t| t.tag == tag)
        .copied()
        .ok_or(Asn1Error::Missing { what, field: name })
}

fn utf8(value: &[u8], what: &'static str, name: &'static str) -> Result<String, Asn1Error> {
    String::from_utf8(value.to_vec()).map_err(|e| Asn1Error::Malformed {
        what,
        field: name,
        reason: e.to_string(),
    })
}

/// `EUICCInfo1` (§5.7.8): version and the CI key identifiers the eUICC verifies / signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EuiccInfo1 {
    pub svn: Vec<u8>,
    pub ci_pkids_for_verification: Vec<Vec<u8>>,
    pub ci_pkids_for_signing: Vec<Vec<u8>>,
}

impl EuiccInfo1 {
    pub fn parse(der: &[u8]) -> Result<Self, Asn1Error> {
        const WHAT: &str = "EUICCInfo1";
        let outer = expect_tag(parse_whole(der, WHAT)?, TAG_EUICC_INFO1, WHAT, "BF20")?;
        let list = children(&outer, WHAT)?;
        let svn = field(&list, TAG_SVN, WHAT, "svn")?.value.to_vec();
        let pkids = |tag, name| -> Result<Vec<Vec<u8>>, Asn1Error> {
            let seq = field(&list, tag, WHAT, name)?;
            Ok(children(&seq, WHAT)?
                .into_iter()
                .filter(|t| t.tag == TAG_OCTET_STRING)
                .map(|t| t.value.to_vec())
                .collect())
        };
        Ok(Self {
            svn,
            ci_pkids_for_verification: pkids(
                TAG_CI_PKID_LIST_VERIFICATION,
                "euiccCiPKIdListForVerification",
            )?,
            ci_pkids_for_signing: pkids(TAG_CI_PKID_LIST_SIGNING, "euiccCiPKIdListForSigning")?,
        })
    }

    /// Builds an `EUICCInfo1` (the test-side eUICC and the LPA's fixtures use it).
    pub fn to_der(&self) -> Vec<u8> {
        let list = |pkids: &[Vec<u8>]| -> Vec<u8> {
            pkids
                .iter()
                .flat_map(|p| tlv::encode(TAG_OCTET_STRING, p))
                .collect()
        };
        tlv::encode_constructed(
            TAG_EUICC_INFO1,
            &[
                &tlv::encode(TAG_SVN, &self.svn),
                &tlv::encode(
                    TAG_CI_PKID_LIST_VERIFICATION,
                    &list(&self.ci_pkids_for_verification),
                ),
                &tlv::encode(TAG_CI_PKID_LIST_SIGNING, &list(&self.ci_pkids_for_signing)),
            ],
        )
    }
}

/// `ServerSigned1` DER (§5.7.13): transactionId, euiccChallenge, serverAddress, serverChallenge.
pub fn server_signed1(
    transaction_id: &[u8],
    euicc_challenge: &[u8],
    server_address: &str,
    server_challenge: &[u8],
) -> Vec<u8> {
    tlv::encode_constructed(
        TAG_SEQUENCE,
        &[
            &tlv::encode(TAG_CTX_0, transaction_id),
            &tlv::encode(TAG_CTX_1, euicc_challenge),
            &tlv::encode(TAG_CTX_3, server_address.as_bytes()),
            &tlv::encode(TAG_CTX_4, server_challenge),
        ],
    )
}

/// `SubjectKeyIdentifier` DER (`04 14 ‖ SKI`), as euiccCiPKIdToBeUsed carries it.
pub fn subject_key_identifier(ski: &[u8]) -> Vec<u8> {
    tlv::encode(TAG_OCTET_STRING, ski)
}

/// `AuthenticateResponseOk` (§5.7.13), borrowing the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateResponseOk<'a> {
    /// The whole `euiccSigned1` element, as signed.
    pub euicc_signed1: &'a [u8],
    pub transaction_id: &'a [u8],
    pub server_address: String,
    pub server_challenge: &'a [u8],
    /// `ctxParamsForCommonAuthentication.matchingId`, if present.
    pub matching_id: Option<String>,
    /// Raw euiccSignature1 (`r‖s`).
    pub euicc_signature1: &'a [u8],
    pub euicc_certificate: &'a [u8],
    pub eum_certificate: &'a [u8],
}

/// `AuthenticateServerResponse` (`BF38`): the eUICC's answer or its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthenticateServerResponse<'a> {
    Ok(AuthenticateResponseOk<'a>),
    Error {
        transaction_id: Vec<u8>,
        authenticate_error_code: i64,
    },
}

impl<'a> AuthenticateServerResponse<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, Asn1Error> {
        const WHAT: &str = "AuthenticateServerResponse";
        let outer = expect_tag(
            parse_whole(der, WHAT)?,
            TAG_AUTHENTICATE_SERVER_RESPONSE,
            WHAT,
            "BF38",
        )?;
        let choice = children(&outer, WHAT)?
            .into_iter()
            .next()
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "authenticateResponseOk/Error",
            })?;
        match choice.tag {
            TAG_CTX_CONS_0 => Self::parse_ok(choice).map(Self::Ok),
            TAG_CTX_CONS_1 => {
                let list = children(&choice, WHAT)?;
                Ok(Self::Error {
                    transaction_id: field(&list, TAG_CTX_0, WHAT, "transactionId")?
                        .value
                        .to_vec(),
                    authenticate_error_code: integer(
                        field(&list, TAG_INTEGER, WHAT, "authenticateErrorCode")?.value,
                    ),
                })
            }
            found => Err(Asn1Error::UnexpectedTag {
                what: WHAT,
                expected: "A0 or A1",
                found,
            }),
        }
    }

    fn parse_ok(ok: Tlv<'a>) -> Result<AuthenticateResponseOk<'a>, Asn1Error> {
        const WHAT: &str = "AuthenticateResponseOk";
        let list = children(&ok, WHAT)?;
        let mut it = list.iter().copied();
        let signed = it
            .next()
            .filter(|t| t.tag == TAG_SEQUENCE)
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "euiccSigned1",
            })?;
        let signature = it
            .next()
            .filter(|t| t.tag == TAG_SIGNATURE)
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "euiccSignature1",
            })?;
        let euicc_cert = it
            .next()
            .filter(|t| t.tag == TAG_SEQUENCE)
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "euiccCertificate",
            })?;
        let eum_cert = it
            .next()
            .filter(|t| t.tag == TAG_SEQUENCE)
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "eumCertificate",
            })?;
        const SIGNED: &str = "euiccSigned1";
        let fields = children(&signed, SIGNED)?;
        // ctxParams1 CHOICE: ctxParamsForCommonAuthentication [0] { matchingId [0]?, deviceInfo [1] }.
        let matching_id = match fields.iter().find(|t| t.tag == TAG_CTX_CONS_0) {
            Some(ctx) => children(ctx, SIGNED)?
                .into_iter()
                .find(|t| t.tag == TAG_CTX_0)
                .map(|t| utf8(t.value, SIGNED, "matchingId"))
                .transpose()?,
            None => {
                return Err(Asn1Error::Missing {
                    what: SIGNED,
                    field: "ctxParams1",
                })
            }
        };
        Ok(AuthenticateResponseOk {
            euicc_signed1: signed.raw,
            transaction_id: field(&fields, TAG_CTX_0, SIGNED, "transactionId")?.value,
            server_address: utf8(
                field(&fields, TAG_CTX_3, SIGNED, "serverAddress")?.value,
                SIGNED,
                "serverAddress",
            )?,
            server_challenge: field(&fields, TAG_CTX_4, SIGNED, "serverChallenge")?.value,
            matching_id,
            euicc_signature1: signature.value,
            euicc_certificate: euicc_cert.raw,
            eum_certificate: eum_cert.raw,
        })
    }
}

/// `SmdpSigned2` DER (§5.7.5): transactionId, ccRequiredFlag (always present: real LPAs need
/// it), no bppEuiccOtpk (this SM-DP+ never reuses a bound package).
pub fn smdp_signed2(transaction_id: &[u8], cc_required: bool) -> Vec<u8> {
    const DER_TRUE: u8 = 0xFF;
    tlv::encode_constructed(
        TAG_SEQUENCE,
        &[
            &tlv::encode(TAG_CTX_0, transaction_id),
            &tlv::encode(TAG_BOOLEAN, &[if cc_required { DER_TRUE } else { 0 }]),
        ],
    )
}

/// `PrepareDownloadResponseOk` (§5.7.5), borrowing the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepareDownloadResponseOk<'a> {
    /// The whole `euiccSigned2` element, as signed.
    pub euicc_signed2: &'a [u8],
    pub transaction_id: &'a [u8],
    /// otPK.EUICC.ECKA (`04‖X‖Y`).
    pub euicc_otpk: &'a [u8],
    pub hash_cc: Option<&'a [u8]>,
    /// Raw euiccSignature2 (`r‖s`).
    pub euicc_signature2: &'a [u8],
}

/// `PrepareDownloadResponse` (`BF21`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareDownloadResponse<'a> {
    Ok(PrepareDownloadResponseOk<'a>),
    Error {
        transaction_id: Vec<u8>,
        download_error_code: i64,
    },
}

impl<'a> PrepareDownloadResponse<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, Asn1Error> {
        const WHAT: &str = "PrepareDownloadResponse";
        let outer = expect_tag(
            parse_whole(der, WHAT)?,
            TAG_PREPARE_DOWNLOAD_RESPONSE,
            WHAT,
            "BF21",
        )?;
        let choice = children(&outer, WHAT)?
            .into_iter()
            .next()
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "downloadResponseOk/Error",
            })?;
        let list = children(&choice, WHAT)?;
        match choice.tag {
            TAG_CTX_CONS_0 => {
                let signed = field(&list, TAG_SEQUENCE, WHAT, "euiccSigned2")?;
                let signature = field(&list, TAG_SIGNATURE, WHAT, "euiccSignature2")?;
                const SIGNED: &str = "euiccSigned2";
                let fields = children(&signed, SIGNED)?;
                Ok(Self::Ok(PrepareDownloadResponseOk {
                    euicc_signed2: signed.raw,
                    transaction_id: field(&fields, TAG_CTX_0, SIGNED, "transactionId")?.value,
                    euicc_otpk: field(&fields, TAG_OTPK, SIGNED, "euiccOtpk")?.value,
                    hash_cc: fields
                        .iter()
                        .find(|t| t.tag == TAG_OCTET_STRING)
                        .map(|t| t.value),
                    euicc_signature2: signature.value,
                }))
            }
            TAG_CTX_CONS_1 => Ok(Self::Error {
                transaction_id: field(&list, TAG_CTX_0, WHAT, "transactionId")?
                    .value
                    .to_vec(),
                download_error_code: integer(
                    field(&list, TAG_INTEGER, WHAT, "downloadErrorCode")?.value,
                ),
            }),
            found => Err(Asn1Error::UnexpectedTag {
                what: WHAT,
                expected: "A0 or A1",
                found,
            }),
        }
    }
}

/// The values of a `StoreMetadataRequest` (§5.5.3) this SM-DP+ sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileMetadata {
    /// ICCID as EF.ICCID stores it (nibble-swapped BCD, 10 bytes).
    pub iccid_ef: Vec<u8>,
    pub service_provider_name: String,
    pub profile_name: String,
    /// Where the eUICC sends its notifications, and for which events (§5.5.3
    /// notificationConfigurationInfo); none when empty.
    pub notification_address: Option<String>,
}

impl ProfileMetadata {
    /// `StoreMetadataRequest` DER (`BF25`).
    pub fn to_der(&self) -> Vec<u8> {
        let mut parts = vec![
            tlv::encode(TAG_ICCID, &self.iccid_ef),
            tlv::encode(
                TAG_SERVICE_PROVIDER_NAME,
                self.service_provider_name.as_bytes(),
            ),
            tlv::encode(TAG_PROFILE_NAME, self.profile_name.as_bytes()),
        ];
        if let Some(address) = &self.notification_address {
            // NotificationConfigurationInformation has no tagged component, so automatic tags:
            // profileManagementOperation [0], notificationAddress [1].
            let info = tlv::encode_constructed(
                TAG_SEQUENCE,
                &[
                    &tlv::encode(
                        TAG_CTX_0,
                        &NotificationEvent::to_bit_string(&NotificationEvent::ALL),
                    ),
                    &tlv::encode(TAG_CTX_1, address.as_bytes()),
                ],
            );
            parts.push(tlv::encode(TAG_NOTIFICATION_CONFIGURATION_INFO, &info));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::encode_constructed(TAG_STORE_METADATA, &refs)
    }
}

/// `NotificationMetadata` (§5.7.10, `BF2F`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMetadata {
    pub seq_number: i64,
    pub events: Vec<NotificationEvent>,
    pub notification_address: String,
    /// ICCID as EF.ICCID stores it, if present.
    pub iccid_ef: Option<Vec<u8>>,
}

impl NotificationMetadata {
    fn parse(t: &Tlv<'_>) -> Result<Self, Asn1Error> {
        const WHAT: &str = "NotificationMetadata";
        let list = children(t, WHAT)?;
        Ok(Self {
            seq_number: integer(field(&list, TAG_CTX_0, WHAT, "seqNumber")?.value),
            events: NotificationEvent::from_bit_string(
                field(&list, TAG_CTX_1, WHAT, "profileManagementOperation")?.value,
            ),
            notification_address: utf8(
                field(&list, TAG_UTF8_STRING, WHAT, "notificationAddress")?.value,
                WHAT,
                "notificationAddress",
            )?,
            iccid_ef: list
                .iter()
                .find(|t| t.tag == TAG_ICCID)
                .map(|t| t.value.to_vec()),
        })
    }
}

/// `finalResult` of a ProfileInstallationResultData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    Success {
        isdp_aid: Vec<u8>,
    },
    Error {
        bpp_command_id: i64,
        error_reason: i64,
    },
}

/// `PendingNotification` (§5.7.10 / §5.6.4): what handleNotification receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingNotification<'a> {
    /// `ProfileInstallationResult` (`BF37`).
    ProfileInstallationResult {
        /// The whole `BF27` element, as signed (euiccSignPIR covers it).
        data: &'a [u8],
        transaction_id: Vec<u8>,
        metadata: NotificationMetadata,
        final_result: FinalResult,
        signature: &'a [u8],
    },
    /// `OtherSignedNotification` (enable, disable, delete).
    Other {
        /// The whole `BF2F` element, as signed.
        tbs: &'a [u8],
        metadata: NotificationMetadata,
        signature: &'a [u8],
        euicc_certificate: &'a [u8],
        eum_certificate: &'a [u8],
    },
}

impl<'a> PendingNotification<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, Asn1Error> {
        const WHAT: &str = "PendingNotification";
        let outer = parse_whole(der, WHAT)?;
        let list = children(&outer, WHAT)?;
        match outer.tag {
            TAG_PROFILE_INSTALLATION_RESULT => {
                const DATA: &str = "ProfileInstallationResultData";
                let data = field(&list, TAG_PROFILE_INSTALLATION_RESULT_DATA, WHAT, DATA)?;
                let signature = field(&list, TAG_SIGNATURE, WHAT, "euiccSignPIR")?;
                let fields = children(&data, DATA)?;
                let result = field(&fields, TAG_CTX_CONS_2, DATA, "finalResult")?;
                let choice =
                    children(&result, DATA)?
                        .into_iter()
                        .next()
                        .ok_or(Asn1Error::Missing {
                            what: DATA,
                            field: "successResult/errorResult",
                        })?;
                let inner = children(&choice, DATA)?;
                const TAG_AID: u32 = 0x4F;
                let final_result = match choice.tag {
                    TAG_CTX_CONS_0 => FinalResult::Success {
                        isdp_aid: inner
                            .iter()
                            .find(|t| t.tag == TAG_AID)
                            .map(|t| t.value.to_vec())
                            .unwrap_or_default(),
                    },
                    _ => FinalResult::Error {
                        bpp_command_id: inner
                            .iter()
                            .find(|t| t.tag == TAG_CTX_0)
                            .map(|t| integer(t.value))
                            .unwrap_or(-1),
                        error_reason: inner
                            .iter()
                            .find(|t| t.tag == TAG_CTX_1)
                            .map(|t| integer(t.value))
                            .unwrap_or(-1),
                    },
                };
                Ok(Self::ProfileInstallationResult {
                    data: data.raw,
                    transaction_id: field(&fields, TAG_CTX_0, DATA, "transactionId")?
                        .value
                        .to_vec(),
                    metadata: NotificationMetadata::parse(&field(
                        &fields,
                        TAG_NOTIFICATION_METADATA,
                        DATA,
                        "notificationMetadata",
                    )?)?,
                    final_result,
                    signature: signature.value,
                })
            }
            TAG_SEQUENCE => {
                let tbs = field(
                    &list,
                    TAG_NOTIFICATION_METADATA,
                    WHAT,
                    "tbsOtherNotification",
                )?;
                let certs: Vec<_> = list.iter().filter(|t| t.tag == TAG_SEQUENCE).collect();
                let (Some(euicc), Some(eum)) = (certs.first(), certs.get(1)) else {
                    return Err(Asn1Error::Missing {
                        what: WHAT,
                        field: "euiccCertificate/eumCertificate",
                    });
                };
                Ok(Self::Other {
                    tbs: tbs.raw,
                    metadata: NotificationMetadata::parse(&tbs)?,
                    signature: field(&list, TAG_SIGNATURE, WHAT, "euiccNotificationSignature")?
                        .value,
                    euicc_certificate: euicc.raw,
                    eum_certificate: eum.raw,
                })
            }
            found => Err(Asn1Error::UnexpectedTag {
                what: WHAT,
                expected: "BF37 or 30",
                found,
            }),
        }
    }
}

/// `CancelSessionResponse` (`BF41`, §5.7.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelSessionResponse<'a> {
    Ok {
        /// The whole `euiccCancelSessionSigned` element, as signed.
        signed: &'a [u8],
        transaction_id: &'a [u8],
        /// DER value of smdpOid.
        smdp_oid: &'a [u8],
        reason: i64,
        signature: &'a [u8],
    },
    Error(i64),
}

impl<'a> CancelSessionResponse<'a> {
    pub fn parse(der: &'a [u8]) -> Result<Self, Asn1Error> {
        const WHAT: &str = "CancelSessionResponse";
        let outer = expect_tag(
            parse_whole(der, WHAT)?,
            TAG_CANCEL_SESSION_RESPONSE,
            WHAT,
            "BF41",
        )?;
        let choice = children(&outer, WHAT)?
            .into_iter()
            .next()
            .ok_or(Asn1Error::Missing {
                what: WHAT,
                field: "cancelSessionResponseOk/Error",
            })?;
        match choice.tag {
            TAG_CTX_CONS_0 => {
                let list = children(&choice, WHAT)?;
                let signed = field(&list, TAG_SEQUENCE, WHAT, "euiccCancelSessionSigned")?;
                const SIGNED: &str = "euiccCancelSessionSigned";
                // No tagged component: automatic tags [0] transactionId, [1] smdpOid, [2] reason.
                let fields = children(&signed, SIGNED)?;
                Ok(Self::Ok {
                    signed: signed.raw,
                    transaction_id: field(&fields, TAG_CTX_0, SIGNED, "transactionId")?.value,
                    smdp_oid: field(&fields, TAG_CTX_1, SIGNED, "smdpOid")?.value,
                    reason: integer(field(&fields, TAG_CTX_2, SIGNED, "reason")?.value),
                    signature: field(&list, TAG_SIGNATURE, WHAT, "euiccCancelSessionSignature")?
                        .value,
                })
            }
            TAG_CTX_1 => Ok(Self::Error(integer(choice.value))),
            found => Err(Asn1Error::UnexpectedTag {
                what: WHAT,
                expected: "A0 or 81",
                found,
            }),
        }
    }
}

/// A small signed DER INTEGER as i64 (values here are error codes and sequence numbers);
/// longer values saturate.
pub fn integer(value: &[u8]) -> i64 {
    if value.is_empty() || value.len() > 8 {
        return if value.first().is_some_and(|b| b & 0x80 != 0) {
            i64::MIN
        } else {
            i64::MAX
        };
    }
    let negative = value.first().is_some_and(|b| b & 0x80 != 0);
    value
        .iter()
        .fold(if negative { -1i64 } else { 0 }, |acc, b| {
            (acc << 8) | i64::from(*b)
        })
}

/// DER INTEGER content of a non-negative value (minimal, X.690 §8.3.2).
pub fn integer_bytes(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|b| **b == 0).count();
    let mut out: Vec<u8> = bytes.get(skip..).unwrap_or(&bytes).to_vec();
    if out.first().is_some_and(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn builds_server_signed1_with_the_spec_tags() {
        let der = server_signed1(&[0x11; 2], &[0x22; 2], "a:1", &[0x33; 2]);
        assert_eq!(der, h("30 11 8002 1111 8102 2222 8303 613A31 8402 3333"));
    }

    #[test]
    fn reads_euicc_info1_as_an_lpa_forwards_it() {
        let der = h("BF20 15 8203 020500 A906 0404 01020304 AA06 0404 05060708");
        let info = EuiccInfo1::parse(&der).unwrap();
        assert_eq!(info.svn, vec![2, 5, 0]);
        assert_eq!(info.ci_pkids_for_verification, vec![vec![1, 2, 3, 4]]);
        assert_eq!(info.ci_pkids_for_signing, vec![vec![5, 6, 7, 8]]);
        assert_eq!(info.to_der(), der);
    }

    #[rstest]
    #[case::cc_not_required(false, "30 07 8002 A1A2 0101 00")]
    #[case::cc_required(true, "30 07 8002 A1A2 0101 FF")]
    fn smdp_signed2_always_carries_cc_required_flag(#[case] cc: bool, #[case] expected: &str) {
        assert_eq!(smdp_signed2(&[0xA1, 0xA2], cc), h(expected));
    }

    #[rstest]
    #[case::install_only(&[NotificationEvent::Install], "07 80")]
    #[case::enable_disable_delete(
        &[NotificationEvent::Enable, NotificationEvent::Disable, NotificationEvent::Delete],
        "04 70"
    )]
    #[case::all(&NotificationEvent::ALL, "04 F0")]
    fn notification_events_encode_as_der_bit_strings(
        #[case] events: &[NotificationEvent],
        #[case] expected: &str,
    ) {
        let bits = NotificationEvent::to_bit_string(events);
        assert_eq!(bits, h(expected));
        assert_eq!(NotificationEvent::from_bit_string(&bits), events.to_vec());
    }

    #[test]
    fn reads_a_profile_installation_result() {
        let metadata = tlv::encode(
            TAG_NOTIFICATION_METADATA,
            &h("8001 01 8102 0780 0C03 613A31"),
        );
        let result = h("A20A A008 4F04 A0000005 0400");
        let data = tlv::encode(
            TAG_PROFILE_INSTALLATION_RESULT_DATA,
            &[h("8002 ABCD"), metadata, h("0603 2A0304"), result].concat(),
        );
        let der = [tlv::encode(
            TAG_PROFILE_INSTALLATION_RESULT,
            &[data.clone(), h("5F3702 0102")].concat(),
        )]
        .concat();
        match PendingNotification::parse(&der).unwrap() {
            PendingNotification::ProfileInstallationResult {
                data: d,
                transaction_id,
                metadata,
                final_result,
                signature,
            } => {
                assert_eq!(d, data.as_slice());
                assert_eq!(transaction_id, vec![0xAB, 0xCD]);
                assert_eq!(metadata.seq_number, 1);
                assert_eq!(metadata.events, vec![NotificationEvent::Install]);
                assert_eq!(metadata.notification_address, "a:1");
                assert_eq!(
                    final_result,
                    FinalResult::Success {
                        isdp_aid: vec![0xA0, 0, 0, 5]
                    }
                );
                assert_eq!(signature, &[1, 2]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case::zero("00", 0)]
    #[case::positive("7F", 127)]
    #[case::needs_sign_byte("0080", 128)]
    #[case::negative("FF", -1)]
    fn reads_der_integers(#[case] bytes: &str, #[case] value: i64) {
        assert_eq!(integer(&h(bytes)), value);
        if value >= 0 {
            assert_eq!(integer_bytes(value as u64), h(bytes));
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EuiccInfo1::parse(&bytes);
            let _ = AuthenticateServerResponse::parse(&bytes);
            let _ = PrepareDownloadResponse::parse(&bytes);
            let _ = PendingNotification::parse(&bytes);
            let _ = CancelSessionResponse::parse(&bytes);
        }

        #[test]
        fn euicc_info1_round_trips(svn in proptest::collection::vec(any::<u8>(), 3),
                                   v in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 20), 0..3),
                                   s in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 20), 0..3)) {
            let info = EuiccInfo1 { svn, ci_pkids_for_verification: v, ci_pkids_for_signing: s };
            prop_assert_eq!(EuiccInfo1::parse(&info.to_der()).unwrap(), info);
        }

        #[test]
        fn integers_round_trip(v in any::<u32>()) {
            prop_assert_eq!(integer(&integer_bytes(u64::from(v))), i64::from(v));
        }
    }
}
