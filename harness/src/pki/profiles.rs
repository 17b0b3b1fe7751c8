//! Certificate profiles of the RSP PKI, GSMA SGP.22 v2.5 §4.5.2 ("Certificates"), mirrored on
//! the GSMA SGP.26 (v1.5/v3) test certificates: the role OIDs of §4.5.2.1 (id-rspRole-*),
//! extension set and criticality per role, names as SGP.26 spells them.
//!
//! | role   | basicConstraints | keyUsage (critical)     | policy (critical?) | other |
//! |--------|------------------|-------------------------|--------------------|-------|
//! | CI     | CA (critical)    | keyCertSign, cRLSign    | ci (yes)           | SKI only, SAN RID, CRL DP |
//! | EUM    | CA, pathLen 0    | keyCertSign             | eum (yes)          | nameConstraints (critical) |
//! | eUICC  | —                | digitalSignature        | euicc (yes)        | subject serialNumber = EID |
//! | DPauth | —                | digitalSignature        | dp-auth (yes)      | SAN RID, CRL DP |
//! | DPpb   | —                | digitalSignature        | dp-pb (yes)        | SAN RID, CRL DP |
//! | DPtls  | —                | digitalSignature        | dp-tls (no)        | EKU serverAuth+clientAuth (critical), SAN DNS |
//!
//! The per-role profiles are the subclauses of SGP.22 v2.5 §4.5.2.1.0; criticality and names
//! are copied from the SGP.26 certificates (`vectors/rsp-crypto/sgp26` holds the CI, DPauth
//! and DPpb ones; the EUM name constraint as SGP.26 prints it:
//! `DirName: O = RSP Test EUM, serialNumber = 89049032`).
//!
//! Every certificate but the CI carries SKI and AKI (keyIdentifier = issuer SKI); SGP.22 v2.5
//! §4.5.2.1.0 path validation walks AKI → SKI. Signatures: ecdsa-with-SHA256.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use der::asn1::{
    Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef,
    UtcTime, Utf8StringRef,
};
use der::flagset::FlagSet;
use der::{DateTime, Encode};
use sha1::{Digest, Sha1};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    ExtendedKeyUsage, KeyUsage, KeyUsages, NameConstraints, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::keys::{KeyPair, ECDSA_WITH_SHA256};
use super::PkiError;

/// SGP.22 v2.5 §4.5.2.1: id-rspRole OBJECT IDENTIFIER ::= { 2 23 146 1 2 1 }, one arc per role.
pub mod oid {
    use der::asn1::ObjectIdentifier;
    /// id-rspRole-ci.
    pub const ID_RSP_ROLE_CI: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.146.1.2.1.0");
    /// id-rspRole-euicc.
    pub const ID_RSP_ROLE_EUICC: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.146.1.2.1.1");
    /// id-rspRole-eum.
    pub const ID_RSP_ROLE_EUM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.146.1.2.1.2");
    /// id-rspRole-dp-tls.
    pub const ID_RSP_ROLE_DP_TLS: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.146.1.2.1.3");
    /// id-rspRole-dp-auth.
    pub const ID_RSP_ROLE_DP_AUTH: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.146.1.2.1.4");
    /// id-rspRole-dp-pb.
    pub const ID_RSP_ROLE_DP_PB: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.23.146.1.2.1.5");
    /// SGP.26 subjectAltName registeredID of the Test CI (RID:2.999.1 in CI-csr.cnf), as DER
    /// OID content octets. Raw because const-oid 0.9 refuses a second arc above 39 under
    /// root arc 2, which X.690 §8.19.4 allows: first subidentifier 2·40+999 = 1079 = 88 37.
    pub const SGP26_CI_RID: &[u8] = &[0x88, 0x37, 0x01];
    /// SGP.26 subjectAltName registeredID of "TEST SM-DP+" (SGP.23 SM-DP+OID 2.999.10), DER
    /// OID content octets (see [`SGP26_CI_RID`]).
    pub const SGP26_SMDP_RID: &[u8] = &[0x88, 0x37, 0x0A];
    /// RFC 5280 §4.2.1.12 id-kp-serverAuth.
    pub const ID_KP_SERVER_AUTH: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
    /// RFC 5280 §4.2.1.12 id-kp-clientAuth.
    pub const ID_KP_CLIENT_AUTH: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    /// X.520 commonName.
    pub const AT_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    /// X.520 serialNumber.
    pub const AT_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
    /// X.520 countryName.
    pub const AT_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
    /// X.520 organizationName.
    pub const AT_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
    /// X.520 organizationalUnitName.
    pub const AT_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
}

/// CRL distribution points of every SGP.26 CI-issued certificate (SGP.22 v2.5 §4.5.2.1.0
/// asks the CI certificate for them; SGP.26 puts them on the DP certificates as well).
pub const SGP26_CRL_URLS: [&str; 2] = [
    "http://ci.test.example.com/CRL-A.crl",
    "http://ci.test.example.com/CRL-B.crl",
];

/// Organisation of the test EUM, as in the SGP.26 EUM certificate's name constraint.
pub const TEST_EUM_ORGANIZATION: &str = "RSP Test EUM";
/// Organisation of the SGP.26 SM-DP+ certificates.
pub const TEST_SMDP_ORGANIZATION: &str = "ACME";
/// Common name of the SGP.26 SM-DP+ signing certificates.
pub const TEST_SMDP_CN: &str = "TEST SM-DP+";

/// One attribute of a distinguished name, with the ASN.1 string type its type requires.
#[derive(Debug, Clone, Copy)]
pub enum Attr<'a> {
    /// commonName (UTF8String, as SGP.26).
    Cn(&'a str),
    /// organizationalUnitName (UTF8String).
    Ou(&'a str),
    /// organizationName (UTF8String).
    O(&'a str),
    /// countryName (X.520: PrintableString of 2 letters).
    C(&'a str),
    /// serialNumber (X.520: PrintableString). Holds the EID or the EUM's EID prefix.
    SerialNumber(&'a str),
}

/// A distinguished name from attributes in DER order (one attribute per RDN).
pub fn name(attrs: &[Attr<'_>]) -> Result<Name, PkiError> {
    let rdns = attrs
        .iter()
        .map(|attr| {
            let (oid, value) = match *attr {
                Attr::Cn(v) => (oid::AT_CN, Any::encode_from(&Utf8StringRef::new(v)?)?),
                Attr::Ou(v) => (oid::AT_OU, Any::encode_from(&Utf8StringRef::new(v)?)?),
                Attr::O(v) => (oid::AT_O, Any::encode_from(&Utf8StringRef::new(v)?)?),
                Attr::C(v) => (oid::AT_C, Any::encode_from(&PrintableStringRef::new(v)?)?),
                Attr::SerialNumber(v) => (
                    oid::AT_SERIAL_NUMBER,
                    Any::encode_from(&PrintableStringRef::new(v)?)?,
                ),
            };
            let atv = AttributeTypeAndValue { oid, value };
            Ok(RelativeDistinguishedName::try_from(vec![atv])?)
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    Ok(RdnSequence(rdns))
}

/// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value — what
/// OpenSSL's `subjectKeyIdentifier = hash` (used for SGP.26) computes.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050 on.
pub fn rfc5280_time(at: SystemTime) -> Result<Time, PkiError> {
    let since_epoch = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| PkiError::BadValidity("a time before 1970".into()))?;
    // Whole seconds: DER forbids fractions in UTCTime, RFC 5280 in GeneralizedTime.
    let dt = DateTime::from_unix_duration(Duration::from_secs(since_epoch.as_secs()))?;
    if dt.year() <= UtcTime::MAX_YEAR {
        Ok(Time::UtcTime(UtcTime::from_date_time(dt)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
}

/// RFC 5280 §4.1.2.5: 99991231235959Z, "no well-defined expiration date" — used for the eUICC
/// certificate, which lives as long as the card and is checked by parties that may not know
/// the time (SGP.22 v2.5 §4.5.2: the eUICC and the device may not know the current time).
pub const NO_EXPIRY: Time = Time::INFINITY;

/// Builds an extension with the given criticality (the criticality per role comes from
/// SGP.22 / SGP.26, not from the crate's defaults).
pub(super) fn ext<T: der::oid::AssociatedOid + Encode>(
    value: &T,
    critical: bool,
) -> Result<Extension, PkiError> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

pub(super) fn ski_ext(ski: &[u8]) -> Result<Extension, PkiError> {
    ext(&SubjectKeyIdentifier(OctetString::new(ski)?), false)
}

pub(super) fn aki_ext(issuer_ski: &[u8]) -> Result<Extension, PkiError> {
    ext(
        &AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(issuer_ski)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        },
        false,
    )
}

pub(super) fn key_usage_ext(usages: FlagSet<KeyUsages>) -> Result<Extension, PkiError> {
    // keyUsage is critical in every SGP.26 certificate (RFC 5280 §4.2.1.3: SHOULD).
    ext(&KeyUsage(usages), true)
}

fn policy_ext(role: ObjectIdentifier, critical: bool) -> Result<Extension, PkiError> {
    ext(
        &CertificatePolicies(vec![PolicyInformation {
            policy_identifier: role,
            policy_qualifiers: None,
        }]),
        critical,
    )
}

fn crl_dp_ext() -> Result<Extension, PkiError> {
    let points = SGP26_CRL_URLS
        .iter()
        .map(|url| {
            Ok(DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![
                    GeneralName::UniformResourceIdentifier(Ia5String::new(url)?),
                ])),
                reasons: None,
                crl_issuer: None,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    ext(&CrlDistributionPoints(points), false)
}

/// RFC 5280 §4.2.1.6 GeneralName registeredID: `[8] IMPLICIT OBJECT IDENTIFIER`.
const GENERAL_NAME_REGISTERED_ID_TAG: u8 = 0x88;

/// subjectAltName (non-critical, RFC 5280 §4.2.1.6) from `names` followed by registeredIDs
/// given as raw OID content octets (see [`oid::SGP26_SMDP_RID`] for why raw).
pub(super) fn san_ext(
    names: Vec<GeneralName>,
    registered_ids: &[&[u8]],
) -> Result<Extension, PkiError> {
    let mut content = Vec::new();
    for n in &names {
        content.extend(n.to_der()?);
    }
    for rid in registered_ids {
        content.push(GENERAL_NAME_REGISTERED_ID_TAG);
        content.extend(der::Length::try_from(rid.len())?.to_der()?);
        content.extend_from_slice(rid);
    }
    let mut value = der::Header::new(der::Tag::Sequence, content.len())?.to_der()?;
    value.extend(content);
    Ok(Extension {
        extn_id: <SubjectAltName as der::oid::AssociatedOid>::OID,
        critical: false,
        extn_value: OctetString::new(value)?,
    })
}

/// The role of a certificate in the RSP PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// GSMA Certificate Issuer (root).
    Ci,
    /// eUICC Manufacturer (sub-CA under the CI).
    Eum,
    /// eUICC (end entity under the EUM).
    Euicc,
    /// SM-DP+ authentication (CERT.DPauth.ECDSA).
    DpAuth,
    /// SM-DP+ profile binding (CERT.DPpb.ECDSA).
    DpPb,
    /// SM-DP+ TLS server (CERT.DP.TLS).
    DpTls,
}

impl Role {
    /// All roles, CI first (issuers before subjects).
    pub const ALL: [Role; 6] = [
        Role::Ci,
        Role::Eum,
        Role::Euicc,
        Role::DpAuth,
        Role::DpPb,
        Role::DpTls,
    ];

    /// The SGP.22 certificatePolicies OID of the role.
    pub fn policy_oid(self) -> ObjectIdentifier {
        match self {
            Role::Ci => oid::ID_RSP_ROLE_CI,
            Role::Eum => oid::ID_RSP_ROLE_EUM,
            Role::Euicc => oid::ID_RSP_ROLE_EUICC,
            Role::DpAuth => oid::ID_RSP_ROLE_DP_AUTH,
            Role::DpPb => oid::ID_RSP_ROLE_DP_PB,
            Role::DpTls => oid::ID_RSP_ROLE_DP_TLS,
        }
    }
}

/// What varies between certificates of one PKI: the names and the end-entity details.
#[derive(Debug, Clone)]
pub struct ProfileParams<'a> {
    /// EID for the eUICC subject serialNumber (32 digits, validated by the caller).
    pub eid: &'a str,
    /// The EID prefix the EUM may issue under (nameConstraints serialNumber).
    pub eum_eid_prefix: &'a str,
    /// The SM-DP+ host name (DPtls subject CN and SAN dNSName).
    pub smdp_host: &'a str,
}

/// The subject name of `role`.
pub fn subject(role: Role, p: &ProfileParams<'_>) -> Result<Name, PkiError> {
    match role {
        // Own CI name (not SGP.26's "Test CI") so that our root can never be mistaken for
        // the GSMA test root when both sit in one trust store.
        Role::Ci => name(&[
            Attr::Cn("simlab Test CI"),
            Attr::Ou("TESTCERT"),
            Attr::O("RSPTEST"),
            Attr::C("IT"),
        ]),
        Role::Eum => name(&[
            Attr::C("IT"),
            Attr::O(TEST_EUM_ORGANIZATION),
            Attr::SerialNumber(p.eum_eid_prefix),
            Attr::Cn("simlab Test EUM"),
        ]),
        // SGP.22 v2.5 §4.5.2.1.0 (eUICC): subject O and serialNumber (= EID) are required; O must be
        // one the EUM's name constraints permit.
        Role::Euicc => name(&[
            Attr::O(TEST_EUM_ORGANIZATION),
            Attr::SerialNumber(p.eid),
            Attr::Cn("simlab Test eUICC"),
        ]),
        Role::DpAuth | Role::DpPb => {
            name(&[Attr::O(TEST_SMDP_ORGANIZATION), Attr::Cn(TEST_SMDP_CN)])
        }
        Role::DpTls => name(&[Attr::O(TEST_SMDP_ORGANIZATION), Attr::Cn(p.smdp_host)]),
    }
}

/// The issuing role of `role` (the CI issues itself).
pub fn issuer_role(role: Role) -> Role {
    match role {
        Role::Euicc => Role::Eum,
        _ => Role::Ci,
    }
}

/// The extensions of `role`, in SGP.26's order.
pub fn extensions(
    role: Role,
    p: &ProfileParams<'_>,
    subject_ski: &[u8],
    issuer_ski: &[u8],
) -> Result<Vec<Extension>, PkiError> {
    Ok(match role {
        Role::Ci => vec![
            ski_ext(subject_ski)?,
            ext(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
                true,
            )?,
            policy_ext(role.policy_oid(), true)?,
            key_usage_ext(KeyUsages::KeyCertSign | KeyUsages::CRLSign)?,
            san_ext(vec![], &[oid::SGP26_CI_RID])?,
            crl_dp_ext()?,
        ],
        Role::Eum => vec![
            aki_ext(issuer_ski)?,
            ski_ext(subject_ski)?,
            key_usage_ext(KeyUsages::KeyCertSign.into())?,
            policy_ext(role.policy_oid(), true)?,
            // SGP.22 v2.5 §4.5.2.1.0 (EUM): cA true, pathLenConstraint 0 (only eUICCs below).
            ext(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: Some(0),
                },
                true,
            )?,
            // SGP.22 v2.5 §4.5.2.1.0 (EUM, eUICC): permitted subtree directoryName {O, serialNumber =
            // EID prefix}; the eUICC serialNumber must START WITH that prefix (not RFC 5280
            // exact RDN matching). RFC 5280 §4.2.1.10: nameConstraints MUST be critical.
            ext(
                &NameConstraints {
                    permitted_subtrees: Some(vec![GeneralSubtree {
                        base: GeneralName::DirectoryName(name(&[
                            Attr::O(TEST_EUM_ORGANIZATION),
                            Attr::SerialNumber(p.eum_eid_prefix),
                        ])?),
                        minimum: 0,
                        maximum: None,
                    }]),
                    excluded_subtrees: None,
                },
                true,
            )?,
        ],
        Role::Euicc => vec![
            aki_ext(issuer_ski)?,
            ski_ext(subject_ski)?,
            key_usage_ext(KeyUsages::DigitalSignature.into())?,
            policy_ext(role.policy_oid(), true)?,
        ],
        Role::DpAuth | Role::DpPb => vec![
            aki_ext(issuer_ski)?,
            ski_ext(subject_ski)?,
            san_ext(vec![], &[oid::SGP26_SMDP_RID])?,
            key_usage_ext(KeyUsages::DigitalSignature.into())?,
            policy_ext(role.policy_oid(), true)?,
            crl_dp_ext()?,
        ],
        Role::DpTls => {
            let mut names = vec![GeneralName::DnsName(Ia5String::new(p.smdp_host)?)];
            // Loopback names so that a local test server is reachable under any of them.
            for loopback in ["localhost"] {
                if loopback != p.smdp_host {
                    names.push(GeneralName::DnsName(Ia5String::new(loopback)?));
                }
            }
            names.push(GeneralName::from(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            vec![
                key_usage_ext(KeyUsages::DigitalSignature.into())?,
                // SGP.26 DPtls: EKU critical, serverAuth + clientAuth.
                ext(
                    &ExtendedKeyUsage(vec![oid::ID_KP_SERVER_AUTH, oid::ID_KP_CLIENT_AUTH]),
                    true,
                )?,
                // SGP.26 DPtls: the only RSP policy extension that is NOT critical (TLS
                // libraries reject unknown critical policies).
                policy_ext(role.policy_oid(), false)?,
                ski_ext(subject_ski)?,
                aki_ext(issuer_ski)?,
                san_ext(names, &[oid::SGP26_SMDP_RID])?,
                crl_dp_ext()?,
            ]
        }
    })
}

/// Everything needed to issue one certificate.
#[derive(Debug)]
pub struct CertRequest {
    /// Serial number (positive, unique per issuer).
    pub serial: Vec<u8>,
    /// Issuer DN (= the issuer certificate's subject).
    pub issuer: Name,
    /// Subject DN.
    pub subject: Name,
    /// Validity period.
    pub validity: Validity,
    /// Subject public key.
    pub spki: SubjectPublicKeyInfoOwned,
    /// Extensions, in order.
    pub extensions: Vec<Extension>,
}

/// Encodes the TBSCertificate, signs it with `issuer_key` (ecdsa-with-SHA256) and returns the
/// certificate DER.
pub fn issue(req: CertRequest, issuer_key: &KeyPair) -> Result<Vec<u8>, PkiError> {
    // RFC 5758 §3.2: ecdsa-with-SHA256 has no parameters.
    let algorithm = AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&req.serial)?,
        signature: algorithm.clone(),
        issuer: req.issuer,
        validity: req.validity,
        subject: req.subject,
        subject_public_key_info: req.spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(req.extensions),
    };
    let signature = issuer_key.sign_der(&tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(cert.to_der()?)
}

/// Does the EID fall under the EUM certificate's name constraints, with SGP.22 v2.5
/// §4.5.2.1.0 (EUM/eUICC) semantics: some permitted directoryName whose O equals the eUICC subject's O
/// and whose serialNumber is a prefix of the EID.
pub fn eum_permits(eum: &Certificate, euicc_subject: &Name) -> Result<bool, PkiError> {
    let Some((_, nc)) = eum.tbs_certificate.get::<NameConstraints>()? else {
        return Ok(false);
    };
    let subject_o = attr_value(euicc_subject, oid::AT_O);
    let Some(eid) = attr_value(euicc_subject, oid::AT_SERIAL_NUMBER) else {
        return Ok(false);
    };
    Ok(nc.permitted_subtrees.unwrap_or_default().iter().any(|t| {
        let GeneralName::DirectoryName(dn) = &t.base else {
            return false;
        };
        let o_ok = match attr_value(dn, oid::AT_O) {
            Some(o) => Some(&o) == subject_o.as_ref(),
            None => true,
        };
        let prefix_ok = attr_value(dn, oid::AT_SERIAL_NUMBER).is_some_and(|p| eid.starts_with(&p));
        o_ok && prefix_ok
    }))
}

/// The first value of attribute `oid` in `name`, as text (UTF8String or PrintableString).
pub fn attr_value(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid)
        .and_then(|atv| {
            atv.value
                .decode_as::<Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<PrintableStringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                })
                .ok()
        })
}
