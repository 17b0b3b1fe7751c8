//! The EAP-AKA permanent identity (RFC 4187 §4.1.1.6: a leading `0` for EAP-AKA) in the NAI
//! form of 3GPP TS 23.003 §19.3.2: `0<IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org`, the MNC
//! written with three digits.

use thiserror::Error;

/// A parsed permanent identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub imsi: String,
    /// The realm after `@` (may be empty when the peer sent a bare `0<IMSI>`).
    pub realm: String,
}

/// Why an identity is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("EAP identity {0:?} is not a permanent EAP-AKA identity: expected '0' + IMSI (RFC 4187 §4.1.1.6), e.g. 0001010123456063@nai.epc.mnc001.mcc001.3gppnetwork.org")]
    NotPermanentAka(String),
    #[error("EAP identity {0:?}: the IMSI must be 6 to 15 digits (TS 23.003 §2.2)")]
    BadImsi(String),
    #[error("EAP identity {identity:?}: realm {realm:?} does not name the IMSI's home network mcc{mcc} (TS 23.003 §19.3.2)")]
    WrongRealm {
        identity: String,
        realm: String,
        mcc: String,
    },
}

/// The permanent identity of `imsi` whose MNC has `mnc_len` (2 or 3) digits.
pub fn permanent_identity(imsi: &str, mnc_len: usize) -> String {
    let mcc = imsi.get(..3).unwrap_or("000");
    let mnc = imsi.get(3..3 + mnc_len.clamp(2, 3)).unwrap_or("00");
    format!("0{imsi}@nai.epc.mnc{mnc:0>3}.mcc{mcc}.3gppnetwork.org")
}

impl Identity {
    /// Parses `0<IMSI>[@realm]`; a realm of the `nai.epc.mnc….mcc….3gppnetwork.org` form must
    /// carry the IMSI's MCC (other realms are accepted as they are).
    pub fn parse(identity: &str) -> Result<Identity, IdentityError> {
        let (user, realm) = identity.split_once('@').unwrap_or((identity, ""));
        let imsi = user
            .strip_prefix('0')
            .ok_or_else(|| IdentityError::NotPermanentAka(identity.to_owned()))?;
        if !(6..=15).contains(&imsi.len()) || !imsi.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::BadImsi(identity.to_owned()));
        }
        let mcc = &imsi[..3];
        if let Some(rest) = realm.strip_prefix("nai.epc.") {
            let expected = format!(".mcc{mcc}.3gppnetwork.org");
            if !rest.starts_with("mnc") || !rest.ends_with(&expected) {
                return Err(IdentityError::WrongRealm {
                    identity: identity.to_owned(),
                    realm: realm.to_owned(),
                    mcc: mcc.to_owned(),
                });
            }
        }
        Ok(Identity {
            imsi: imsi.to_owned(),
            realm: realm.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[test]
    fn builds_the_upstream_identity_form() {
        assert_eq!(
            permanent_identity("234107813240779", 2),
            "0234107813240779@nai.epc.mnc010.mcc234.3gppnetwork.org"
        );
        assert_eq!(
            permanent_identity("310410123456789", 3),
            "0310410123456789@nai.epc.mnc410.mcc310.3gppnetwork.org"
        );
    }

    #[rstest]
    #[case::full(
        "0234107813240779@nai.epc.mnc010.mcc234.3gppnetwork.org",
        "234107813240779"
    )]
    #[case::bare("0001010123456063", "001010123456063")]
    #[case::other_realm("0001010123456063@example.org", "001010123456063")]
    fn parses_permanent_identities(#[case] text: &str, #[case] imsi: &str) {
        assert_eq!(Identity::parse(text).unwrap().imsi, imsi);
    }

    #[rstest]
    #[case::sim_identity("1234107813240779@nai.epc.mnc010.mcc234.3gppnetwork.org")]
    #[case::pseudonym("pseudonym@x")]
    #[case::letters("0ABC1078132@x")]
    #[case::too_short("012345@x")]
    #[case::too_long("01234567890123456@x")]
    #[case::wrong_mcc("0234107813240779@nai.epc.mnc010.mcc235.3gppnetwork.org")]
    fn refuses_other_identities(#[case] text: &str) {
        assert!(Identity::parse(text).is_err(), "{text}");
    }
}
