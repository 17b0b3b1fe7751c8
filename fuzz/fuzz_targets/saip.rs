//! SAIP profile packages (TCA eUICC Profile Package v2.x) and their installation into card
//! content (the eUICC's install path): never a panic, whatever the package.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pkg) = simlab_emulator::saip::decode(data) {
        let _ = pkg.summary();
    }
    let _ = simlab_emulator::euicc::install::build(data);
});
