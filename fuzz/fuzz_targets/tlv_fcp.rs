//! BER-TLV (ISO 7816-4 §5.2, X.690 §8.1) walked to any depth, and FCP templates
//! (TS 102 221 §11.1.1.3): never a panic; whatever parses re-encodes to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::tlv;

fn walk(bytes: &[u8], depth: usize) {
    for t in tlv::TlvIter::new(bytes).map_while(Result::ok) {
        // Definite short/long lengths as this codec writes them re-encode identically when
        // the input used the minimal form.
        let again = tlv::encode(t.tag, t.value);
        if again.len() == t.raw.len() {
            assert_eq!(again, t.raw);
        }
        if t.is_constructed() && depth < 32 {
            walk(t.value, depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data, 0);
    let _ = tlv::parse_one(data);
    let _ = simlab_emulator::fcp::decode(data);
});
