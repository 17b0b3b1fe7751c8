//! Binding a profile package to one eUICC (SGP.22 v2.5 §2.5.3 "Bound Profile Package", §2.5.4,
//! §5.5 ES8+ functions, Annex G key derivation): one-time key pair, ECKA with otPK.EUICC.ECKA,
//! session keys, and the segments
//!
//! ```text
//! BF36 { BF23 InitialiseSecureChannelRequest,
//!        A0 { 87 ConfigureISDPRequest },           encrypted + MAC
//!        A1 { 88 StoreMetadataRequest … },         MAC only
//!        A2 { 87 ReplaceSessionKeysRequest },      encrypted + MAC, optional
//!        A3 { 86 profile package chunk … } }       encrypted + MAC (with the PPK if A2 is sent)
//! ```
//!
//! The containers are [`simlab_emulator::rsp::es10::BoundProfilePackage`], the segments
//! [`simlab_emulator::rsp::scp03t::BspWriter`]'s.

use rand::{CryptoRng, RngCore};
use simlab_emulator::rsp::download::build_initialise_secure_channel;
use simlab_emulator::rsp::ecdsa::SigningKey;
use simlab_emulator::rsp::ecka::{self, EckaError};
use simlab_emulator::rsp::es10::{BoundProfilePackage, ConfigureIsdpRequest, Der as _};
use simlab_emulator::rsp::kdf::{
    derive_session_keys, KdfError, SessionKeys, KEY_LENGTH_AES128, KEY_TYPE_AES,
};
use simlab_emulator::rsp::scp03t::{
    BspError, BspWriter, TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, TAG_LOAD_PROFILE_ELEMENTS,
    TAG_STORE_METADATA,
};
use simlab_emulator::rsp::ReplaceSessionKeys;
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a package could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BppError {
    #[error("binding: key agreement failed: {0}")]
    Ecka(#[from] EckaError),
    #[error("binding: key derivation failed: {0}")]
    Kdf(#[from] KdfError),
    #[error("binding: segment protection failed: {0}")]
    Bsp(#[from] BspError),
}

/// What one binding needs.
#[derive(Debug)]
pub struct BindingInput<'a> {
    pub transaction_id: &'a [u8],
    /// hostId of the control reference template (1..16 bytes).
    pub host_id: &'a [u8],
    /// otPK.EUICC.ECKA from euiccSigned2.
    pub euicc_otpk: &'a [u8],
    /// EID of the eUICC (from its certificate), 16 bytes.
    pub eid: &'a [u8; 16],
    /// SK.DPpb.ECDSA: signs the BF23 and fixes the curve of the one-time keys.
    pub dp_pb: &'a SigningKey,
    /// `StoreMetadataRequest` DER (`BF25`).
    pub metadata: &'a [u8],
    /// The unprotected profile package (SAIP DER).
    pub upp: &'a [u8],
    /// Send `A2` ReplaceSessionKeys and protect `A3` with fresh PPK keys.
    pub replace_session_keys: bool,
}

/// Where the time of one binding went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingTimes {
    /// One-time key generation and ECDH.
    pub key_agreement: Duration,
    /// The BF23 signature.
    pub signature: Duration,
    /// KDF, encryption and MACs of every segment.
    pub protection: Duration,
}

/// Builds the bound profile package (`BF36`).
pub fn bind<R: RngCore + CryptoRng>(
    input: &BindingInput<'_>,
    rng: &mut R,
) -> Result<(Vec<u8>, BindingTimes), BppError> {
    let mut times = BindingTimes::default();
    let started = Instant::now();
    let (smdp_otpk, shs) = ecka::agree_once(input.dp_pb.curve(), input.euicc_otpk, rng)?;
    times.key_agreement = started.elapsed();

    let started = Instant::now();
    let bf23 = build_initialise_secure_channel(
        input.transaction_id,
        input.host_id,
        &smdp_otpk,
        input.euicc_otpk,
        input.dp_pb,
    );
    times.signature = started.elapsed();

    let started = Instant::now();
    let keys = derive_session_keys(
        shs.as_bytes(),
        KEY_TYPE_AES,
        KEY_LENGTH_AES128,
        input.host_id,
        input.eid,
    )?;
    let mut writer = BspWriter::new(&keys);
    // SGP.22 §5.5.2: ConfigureISDPRequest; dpProprietaryData is optional and not sent.
    let configure_isdp = ConfigureIsdpRequest::default().to_der();
    let a0 = writer.protect(TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, &configure_isdp)?;
    let a1 = writer.protect_chunked(TAG_STORE_METADATA, input.metadata)?;
    let a2 = if input.replace_session_keys {
        let mut ppk = SessionKeys {
            initial_mcv: [0; 16],
            s_enc: [0; 16],
            s_mac: [0; 16],
        };
        rng.fill_bytes(&mut ppk.initial_mcv);
        rng.fill_bytes(&mut ppk.s_enc);
        rng.fill_bytes(&mut ppk.s_mac);
        let request = ReplaceSessionKeys { keys: ppk.clone() }.to_der();
        let segment = writer.protect(TAG_CONFIGURE_ISDP_OR_REPLACE_KEYS, &request)?;
        // SGP.22 §2.5.4: after ReplaceSessionKeys the 86 segments use the PPK, counter 1.
        writer.replace_session_keys(&ppk);
        Some(segment)
    } else {
        None
    };
    let a3 = writer.protect_chunked(TAG_LOAD_PROFILE_ELEMENTS, input.upp)?;
    let bpp = BoundProfilePackage {
        initialise_secure_channel: bf23,
        configure_isdp: vec![a0],
        store_metadata: a1,
        replace_session_keys: a2.map(|segment| vec![segment]),
        load_profile_elements: a3,
    }
    .to_der();
    times.protection = started.elapsed();
    Ok((bpp, times))
}
