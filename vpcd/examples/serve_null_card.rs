//! Serves the NullCard (ATR 3B 80 80 01 01, 90 00 to everything) to a running vpcd for a
//! while, e.g. to try pcscd by hand with `opensc-tool -r 'Virtual PCD 00 00' -a`.
//!
//! `cargo run -p simlab-vpcd --example serve_null_card -- [VPCD_ADDR] [SECONDS]`
//! (defaults: 127.0.0.1:35963, 30 s). With `SIMLAB_VPCD_NO_QUICKACK=1` the card does not set
//! TCP_QUICKACK, to see Debian vpcd 0.8's ~21 APDU/s stall.

use std::time::Duration;

use simlab_vpcd::card::{self, ServeOptions};
use simlab_vpcd::{NullCard, DEFAULT_VPCD_ADDR};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| DEFAULT_VPCD_ADDR.to_owned());
    let seconds: u64 = match args.next() {
        Some(arg) => arg.parse()?,
        None => 30,
    };
    let opts = ServeOptions {
        quickack: std::env::var_os("SIMLAB_VPCD_NO_QUICKACK").is_none(),
        ..ServeOptions::default()
    };
    let card = card::spawn(NullCard::default(), addr.clone(), opts)?;
    println!("serving the NullCard to vpcd at {addr} for {seconds} s");
    std::thread::sleep(Duration::from_secs(seconds));
    let card = card.stop()?;
    println!("{} APDUs, {} power events", card.apdus, card.power_events);
    Ok(())
}
