//! Bound profile packages (SGP.22 §2.5.5): the BF36 structure and its LPA segmentation,
//! InitialiseSecureChannel (§2.5.3), and SCP03t segments under fixed session keys — never a
//! panic; a tampered segment never opens.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::rsp::download::InitialiseSecureChannel;
use simlab_emulator::rsp::es10::{BoundProfilePackage, Der};
use simlab_emulator::rsp::kdf::SessionKeys;
use simlab_emulator::rsp::scp03t::BspReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(bpp) = BoundProfilePackage::from_der(data) {
        let _ = bpp.lpa_commands();
    }
    let _ = InitialiseSecureChannel::parse(data);
    let keys = SessionKeys {
        s_enc: [0x11; 16],
        s_mac: [0x22; 16],
        initial_mcv: [0; 16],
    };
    let mut reader = BspReader::new(&keys);
    for segment in data.split(|b| *b == 0xFF).take(8) {
        let _ = reader.open(segment);
    }
});
