//! Measures APDU/s of the NullCard over raw loopback vpcd TCP (no pcscd): the transport's
//! own ceiling. Prints the rate; asserts nothing about timing.
//!
//! `cargo run -p simlab-vpcd --release --example loopback_rate -- [APDUS]` (default 20000).

use std::time::Instant;

use simlab_vpcd::card::{self, ServeOptions};
use simlab_vpcd::reader::ReaderListener;
use simlab_vpcd::NullCard;

/// SELECT MF (ISO/IEC 7816-4 §11.1.1 / TS 102 221 §11.1.1), as in the notes' measurements.
const SELECT_MF: [u8; 7] = [0x00, 0xA4, 0x00, 0x04, 0x02, 0x3F, 0x00];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u32 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 20_000,
    };
    let listener = ReaderListener::bind("127.0.0.1:0")?;
    let card = card::spawn(
        NullCard::default(),
        listener.local_addr()?,
        ServeOptions::default(),
    )?;
    let mut reader = listener.accept()?;
    reader.atr()?;
    reader.power_on()?;

    let start = Instant::now();
    for _ in 0..count {
        reader.transmit(&SELECT_MF)?;
    }
    let elapsed = start.elapsed();
    drop(reader);
    let card = card.stop()?;

    println!(
        "{count} APDUs in {:.3} s: {:.0} APDU/s over raw loopback TCP (card counted {})",
        elapsed.as_secs_f64(),
        f64::from(count) / elapsed.as_secs_f64(),
        card.apdus
    );
    Ok(())
}
