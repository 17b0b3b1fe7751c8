//! 3GPP TS 31.115 (V17) §4: secured packets carried in short messages. A command packet
//! follows the command packet identifier (user data header element '70', length 0); one that
//! does not fit a single message is sent as a concatenated message (TS 23.040 §9.2.3.24.1),
//! the identifier only in the first part. The response packet goes back after the response
//! packet identifier ('71'), in the SMS-DELIVER-REPORT.
//!
//! [`split`] is the sender's side, [`Reassembly`] the receiver's.

use super::ts_23_040::{
    Address, InformationElement, SmsDeliver, IEI_COMMAND_PACKET, IEI_CONCAT_8, MAX_USER_DATA,
};
use thiserror::Error;

/// The most parts a receiver keeps for one concatenated command packet (16 × 134 bytes
/// covers any packet a network sends; more is refused rather than buffered without limit).
pub const MAX_PARTS: u8 = 16;

/// Why a command packet cannot be sent in short messages.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SplitError {
    #[error("the command packet is {0} bytes; at most {max} fit in {MAX_PARTS} messages", max = max_packet_len())]
    TooLong(usize),
}

/// User data header of the first part: UDHL, concatenation (5), command packet identifier (2).
const FIRST_PART_UDH: usize = 1 + 5 + 2;
/// User data header of the other parts: UDHL, concatenation (5).
const OTHER_PART_UDH: usize = 1 + 5;
/// User data header of a single message: UDHL, command packet identifier (2).
const SINGLE_UDH: usize = 1 + 2;

fn max_packet_len() -> usize {
    (MAX_USER_DATA - FIRST_PART_UDH)
        + (usize::from(MAX_PARTS) - 1) * (MAX_USER_DATA - OTHER_PART_UDH)
}

/// The SMS-DELIVER messages carrying `packet` (a sealed command packet, CPL onwards): one when
/// it fits, else a concatenated message with reference `reference`.
pub fn split(
    packet: &[u8],
    originating_address: &Address,
    scts: [u8; 7],
    reference: u8,
) -> Result<Vec<SmsDeliver>, SplitError> {
    let cpi = InformationElement {
        iei: IEI_COMMAND_PACKET,
        data: Vec::new(),
    };
    if packet.len() <= MAX_USER_DATA - SINGLE_UDH {
        return Ok(vec![SmsDeliver::data_download(
            originating_address.clone(),
            scts,
            vec![cpi],
            packet.to_vec(),
        )]);
    }
    if packet.len() > max_packet_len() {
        return Err(SplitError::TooLong(packet.len()));
    }
    let first_len = MAX_USER_DATA - FIRST_PART_UDH;
    let (first, rest) = packet.split_at(first_len);
    let mut chunks = vec![first];
    chunks.extend(rest.chunks(MAX_USER_DATA - OTHER_PART_UDH));
    let total = u8::try_from(chunks.len()).map_err(|_| SplitError::TooLong(packet.len()))?;
    Ok(chunks
        .into_iter()
        .zip(1u8..)
        .map(|(chunk, sequence)| {
            let mut header = vec![InformationElement {
                iei: IEI_CONCAT_8,
                data: vec![reference, total, sequence],
            }];
            if sequence == 1 {
                header.push(cpi.clone());
            }
            SmsDeliver::data_download(originating_address.clone(), scts, header, chunk.to_vec())
        })
        .collect())
}

/// What one received message means for the command packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A complete command packet (CPL onwards).
    Packet(Vec<u8>),
    /// A part of a concatenated message; more are awaited.
    Partial,
    /// Not a secured packet: no command packet identifier in the (first) message.
    NotSecured,
    /// A concatenated message the receiver cannot take (too many parts, or a part out of
    /// range); what was collected for it is dropped.
    Refused,
}

/// The parts received so far of one concatenated message (volatile: lost at reset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reassembly {
    pending: Option<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    originator: String,
    reference: u16,
    total: u8,
    parts: Vec<Option<SmsDeliver>>,
}

impl Reassembly {
    /// Takes one SMS-DELIVER; returns the packet when it is complete. A part of another
    /// message (other originator or reference) abandons the one in progress.
    pub fn receive(&mut self, sms: SmsDeliver) -> Received {
        let Some(c) = sms.concatenation() else {
            return match sms.element(IEI_COMMAND_PACKET) {
                Some(_) => Received::Packet(sms.data),
                None => Received::NotSecured,
            };
        };
        if c.total == 0 || c.total > MAX_PARTS || c.sequence == 0 || c.sequence > c.total {
            self.pending = None;
            return Received::Refused;
        }
        let originator = sms.originating_address.digits.clone();
        let same = self.pending.as_ref().is_some_and(|p| {
            p.originator == originator && p.reference == c.reference && p.total == c.total
        });
        if !same {
            self.pending = Some(Pending {
                originator,
                reference: c.reference,
                total: c.total,
                parts: vec![None; usize::from(c.total)],
            });
        }
        let Some(pending) = self.pending.as_mut() else {
            return Received::Refused;
        };
        if let Some(slot) = pending.parts.get_mut(usize::from(c.sequence) - 1) {
            *slot = Some(sms);
        }
        if pending.parts.iter().any(Option::is_none) {
            return Received::Partial;
        }
        let parts: Vec<SmsDeliver> = self
            .pending
            .take()
            .map(|p| p.parts.into_iter().flatten().collect())
            .unwrap_or_default();
        if parts
            .first()
            .and_then(|first| first.element(IEI_COMMAND_PACKET))
            .is_none()
        {
            return Received::NotSecured;
        }
        Received::Packet(parts.into_iter().flat_map(|p| p.data).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_then_reassembled_in_any_order_gives_the_packet_back(
            packet in proptest::collection::vec(any::<u8>(), 1..1200),
            seed in any::<u64>(),
        ) {
            let mut parts = split(&packet, &Address::isdn("+491234"), [0; 7], 42).unwrap();
            // A deterministic shuffle of the parts.
            let n = parts.len();
            for i in (1..n).rev() {
                let j = (seed.rotate_left(i as u32) as usize) % (i + 1);
                parts.swap(i, j);
            }
            let mut r = Reassembly::default();
            let mut got = None;
            for (i, p) in parts.into_iter().enumerate() {
                let tpdu = p.encode().unwrap();
                let back = SmsDeliver::decode(&tpdu).unwrap();
                match r.receive(back) {
                    Received::Packet(data) => { prop_assert_eq!(i, n - 1); got = Some(data); }
                    Received::Partial => prop_assert!(i < n - 1),
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            prop_assert_eq!(got, Some(packet));
        }

        #[test]
        fn decoding_arbitrary_tpdus_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(sms) = SmsDeliver::decode(&bytes) {
                let _ = Reassembly::default().receive(sms);
            }
        }
    }

    #[test]
    fn a_packet_too_long_for_sixteen_messages_is_refused() {
        let err = split(&vec![0; 3000], &Address::isdn("1"), [0; 7], 0).unwrap_err();
        assert!(err.to_string().contains("3000 bytes"), "{err}");
    }

    #[test]
    fn a_message_without_a_command_packet_identifier_is_not_secured() {
        let sms = SmsDeliver::data_download(Address::isdn("1"), [0; 7], Vec::new(), vec![1, 2]);
        assert_eq!(Reassembly::default().receive(sms), Received::NotSecured);
    }
}
