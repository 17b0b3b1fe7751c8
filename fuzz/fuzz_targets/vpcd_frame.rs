//! vsmartcard vpcd frames (2-byte length, then a control byte or an APDU): never a panic;
//! what decodes re-encodes to the same payload.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_vpcd::frame::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        // `encode` writes a whole frame: the 2-byte length, then the payload.
        let frame = m.encode().expect("a decoded message encodes");
        assert_eq!(
            usize::from(u16::from_be_bytes([frame[0], frame[1]])),
            frame.len() - 2
        );
        let again = Message::decode(&frame[2..]).expect("re-encoded frame decodes");
        assert_eq!(again, m);
    }
});
