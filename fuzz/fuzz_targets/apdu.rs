//! ISO 7816-4 command APDUs (short and extended cases) and the TS 102 221 class byte:
//! parsing never panics, and a parsed command's fields are consistent with its bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use simlab_emulator::apdu::Command;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::parse(data) {
        assert_eq!(cmd.cla, data[0]);
        assert!(cmd.channel <= simlab_emulator::apdu::MAX_CHANNEL);
        assert!(cmd.data.len() < data.len());
    }
});
