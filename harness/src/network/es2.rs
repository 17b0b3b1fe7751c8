//! The operator's side of ES2+.HandleDownloadProgressInfo (GSMA SGP.22 v2.5 §5.3.5, JSON
//! binding §6.5.2.5): what an event the SM-DP+ sends says about its order, and whether it
//! moves the BOSS's record of that order.
//!
//! Events may come twice (the SM-DP+ retries an event it could not deliver) or late (a retry
//! overtaken by the next event). The BOSS therefore applies an event only when it moves the
//! order forward in its life cycle — released → downloaded → installed → enabled / disabled →
//! deleted, or error — with two exceptions the life cycle itself has: a failed installation
//! puts a downloaded order back to released (SGP.22 §3.1.3.2: the download may be retried),
//! and enabled / disabled follow each other as often as the user switches, the later event
//! winning (by its `timestamp`; equal timestamps: the one that arrives last). A terminal
//! state (deleted, error, unavailable) never changes again.

use crate::es9p::{
    codes, StatusCode, STATUS_EXECUTED_SUCCESS, STATUS_EXECUTED_WITH_WARNING, STATUS_FAILED,
};
use crate::smdp::es2::{
    HandleDownloadProgressInfoRequest, POINT_BPP_DOWNLOAD, POINT_BPP_INSTALLATION,
    POINT_CONFIRMATION, POINT_ELIGIBILITY, POINT_PROFILE_DELETED, POINT_PROFILE_DISABLED,
    POINT_PROFILE_ENABLED, POINT_SESSION_CANCELLED,
};

/// Order states the BOSS records (the SM-DP+'s names, SGP.22 §3.1.1 / docs/smdp.md).
pub mod state {
    pub const RELEASED: &str = "released";
    pub const DOWNLOADED: &str = "downloaded";
    pub const INSTALLED: &str = "installed";
    pub const ENABLED: &str = "enabled";
    pub const DISABLED: &str = "disabled";
    pub const DELETED: &str = "deleted";
    pub const ERROR: &str = "error";
    /// Cancelled by the BOSS itself (ES2+.CancelOrder with finalProfileStatusIndicator
    /// "Unavailable").
    pub const UNAVAILABLE: &str = "unavailable";
}

/// Why an event is refused: the ES2+ status code the BOSS answers with (§6.5.1.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: StatusCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One event, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub iccid: String,
    pub eid: Option<String>,
    pub point: u32,
    pub success: bool,
    /// `subjectCode/reasonCode` of a failure, when given.
    pub reason: Option<String>,
    /// The event's `timestamp` in Unix seconds.
    pub at: i64,
}

impl Event {
    /// Checks the request's fields: ICCID digits, a known notification point, a status of
    /// §5.1.6.1, the `YYYY-MM-DDThh:mm:ssZ` timestamp.
    pub fn from_request(req: &HandleDownloadProgressInfoRequest) -> Result<Self, Refusal> {
        let iccid = req.iccid.trim();
        if !(18..=20).contains(&iccid.len()) || !iccid.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Refusal::new(
                codes::INVALID_INPUT,
                format!("iccid {iccid:?}: expected 18 to 20 digits"),
            ));
        }
        let known = [
            POINT_ELIGIBILITY,
            POINT_CONFIRMATION,
            POINT_BPP_DOWNLOAD,
            POINT_BPP_INSTALLATION,
            POINT_SESSION_CANCELLED,
            POINT_PROFILE_ENABLED,
            POINT_PROFILE_DISABLED,
            POINT_PROFILE_DELETED,
        ];
        if !known.contains(&req.notification_point_id) {
            return Err(Refusal::new(
                codes::INVALID_INPUT,
                format!(
                    "notificationPointId {}: expected one of {known:?}",
                    req.notification_point_id
                ),
            ));
        }
        let status = &req.notification_point_status;
        let success = match status.status.as_str() {
            STATUS_EXECUTED_SUCCESS | STATUS_EXECUTED_WITH_WARNING => true,
            STATUS_FAILED => false,
            other => {
                return Err(Refusal::new(
                    codes::INVALID_INPUT,
                    format!(
                        "notificationPointStatus.status {other:?}: expected \
                         {STATUS_EXECUTED_SUCCESS}, {STATUS_EXECUTED_WITH_WARNING} or {STATUS_FAILED}"
                    ),
                ))
            }
        };
        let at = parse_timestamp(&req.timestamp).ok_or_else(|| {
            Refusal::new(
                codes::INVALID_INPUT,
                format!(
                    "timestamp {:?}: expected YYYY-MM-DDThh:mm:ssZ",
                    req.timestamp
                ),
            )
        })?;
        Ok(Self {
            iccid: iccid.to_owned(),
            eid: req.eid.clone().filter(|e| !e.is_empty()),
            point: req.notification_point_id,
            success,
            reason: status
                .status_code_data
                .as_ref()
                .map(|d| format!("{}/{}", d.subject_code, d.reason_code)),
            at,
        })
    }

    fn reason_is(&self, code: StatusCode) -> bool {
        self.reason.as_deref() == Some(format!("{}/{}", code.subject, code.reason).as_str())
    }

    /// The order state the event reports, if it reports one. Eligibility (1) and a cancelled
    /// session (5) say nothing certain about the order; a confirmation failure (2) only when
    /// it used up the tries; a failed installation (4) puts the order back to released unless
    /// it used up the download attempts (SGP.22 "Maximum number of retries exceeded").
    pub fn reported_state(&self) -> Option<&'static str> {
        match (self.point, self.success) {
            (POINT_CONFIRMATION, false)
                if self.reason_is(codes::CONFIRMATION_CODE_RETRIES_EXCEEDED) =>
            {
                Some(state::ERROR)
            }
            (POINT_BPP_DOWNLOAD, true) => Some(state::DOWNLOADED),
            (POINT_BPP_INSTALLATION, true) => Some(state::INSTALLED),
            (POINT_BPP_INSTALLATION, false) if self.reason_is(codes::DOWNLOAD_RETRIES_EXCEEDED) => {
                Some(state::ERROR)
            }
            (POINT_BPP_INSTALLATION, false) => Some(state::RELEASED),
            (POINT_PROFILE_ENABLED, true) => Some(state::ENABLED),
            (POINT_PROFILE_DISABLED, true) => Some(state::DISABLED),
            (POINT_PROFILE_DELETED, true) => Some(state::DELETED),
            _ => None,
        }
    }
}

/// Place of a state in the order's life cycle; terminal states rank highest.
fn rank(state: &str) -> u8 {
    match state {
        state::DOWNLOADED => 1,
        state::INSTALLED => 2,
        state::ENABLED | state::DISABLED => 3,
        state::DELETED | state::ERROR | state::UNAVAILABLE => 4,
        _ => 0,
    }
}

fn terminal(state: &str) -> bool {
    matches!(state, state::DELETED | state::ERROR | state::UNAVAILABLE)
}

/// What the BOSS does with an event for an order in `current` (last changed by an event of
/// `current_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The order moves to this state.
    Apply(&'static str),
    /// Nothing changes; why.
    Ignore(&'static str),
}

pub fn decide(current: &str, current_at: i64, event: &Event) -> Decision {
    let Some(new) = event.reported_state() else {
        return Decision::Ignore("no state change at this point");
    };
    if new == current {
        return Decision::Ignore("already in this state (a repeated event)");
    }
    if terminal(current) {
        return Decision::Ignore("the order is over; a late event");
    }
    if new == state::RELEASED {
        // Only the failure of the download in progress reopens the order.
        return if current == state::DOWNLOADED {
            Decision::Apply(new)
        } else {
            Decision::Ignore("a failed installation after a later state; a late event")
        };
    }
    match rank(new).cmp(&rank(current)) {
        std::cmp::Ordering::Greater => Decision::Apply(new),
        std::cmp::Ordering::Equal if event.at >= current_at => Decision::Apply(new),
        std::cmp::Ordering::Equal => Decision::Ignore("an older switch than the one recorded"),
        std::cmp::Ordering::Less => Decision::Ignore("behind the recorded state; a late event"),
    }
}

/// `YYYY-MM-DDThh:mm:ssZ` (SGP.22 §6.5.2.5 timestamp) → Unix seconds (H. Hinnant's
/// days_from_civil; written by hand: the inverse of [`crate::smdp::es2`]'s formatter).
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(r)?).ok()?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn event(point: u32, success: bool, reason: Option<StatusCode>, at: i64) -> Event {
        Event {
            iccid: "8900101000000000017".into(),
            eid: None,
            point,
            success,
            reason: reason.map(|c| format!("{}/{}", c.subject, c.reason)),
            at,
        }
    }

    #[rstest]
    #[case::download("released", 3, true, None, Decision::Apply("downloaded"))]
    #[case::installed("downloaded", 4, true, None, Decision::Apply("installed"))]
    #[case::enabled_skipping_ahead("released", 101, true, None, Decision::Apply("enabled"))]
    #[case::retry_after_failure("downloaded", 4, false, None, Decision::Apply("released"))]
    #[case::attempts_used_up(
        "downloaded",
        4,
        false,
        Some(codes::DOWNLOAD_RETRIES_EXCEEDED),
        Decision::Apply("error")
    )]
    #[case::late_download(
        "installed",
        3,
        true,
        None,
        Decision::Ignore("behind the recorded state; a late event")
    )]
    #[case::late_failure(
        "enabled",
        4,
        false,
        None,
        Decision::Ignore("a failed installation after a later state; a late event")
    )]
    #[case::duplicate(
        "enabled",
        101,
        true,
        None,
        Decision::Ignore("already in this state (a repeated event)")
    )]
    #[case::after_delete(
        "deleted",
        101,
        true,
        None,
        Decision::Ignore("the order is over; a late event")
    )]
    #[case::after_cancel(
        "unavailable",
        4,
        true,
        None,
        Decision::Ignore("the order is over; a late event")
    )]
    #[case::eligibility(
        "released",
        1,
        true,
        None,
        Decision::Ignore("no state change at this point")
    )]
    #[case::session_cancelled(
        "downloaded",
        5,
        false,
        Some(codes::TRANSACTION_ID_UNKNOWN),
        Decision::Ignore("no state change at this point")
    )]
    #[case::wrong_code_once(
        "released",
        2,
        false,
        Some(codes::CONFIRMATION_CODE_REFUSED),
        Decision::Ignore("no state change at this point")
    )]
    #[case::codes_used_up(
        "released",
        2,
        false,
        Some(codes::CONFIRMATION_CODE_RETRIES_EXCEEDED),
        Decision::Apply("error")
    )]
    #[case::delete("disabled", 103, true, None, Decision::Apply("deleted"))]
    fn decides_by_the_life_cycle(
        #[case] current: &str,
        #[case] point: u32,
        #[case] success: bool,
        #[case] reason: Option<StatusCode>,
        #[case] expected: Decision,
    ) {
        assert_eq!(
            decide(current, 100, &event(point, success, reason, 100)),
            expected
        );
    }

    #[test]
    fn the_later_switch_between_enabled_and_disabled_wins() {
        assert_eq!(
            decide("enabled", 100, &event(102, true, None, 101)),
            Decision::Apply("disabled")
        );
        assert_eq!(
            decide("disabled", 100, &event(101, true, None, 100)),
            Decision::Apply("enabled"),
            "same second: the one that arrives last"
        );
        assert_eq!(
            decide("enabled", 100, &event(102, true, None, 99)),
            Decision::Ignore("an older switch than the one recorded")
        );
    }

    #[rstest]
    #[case("1970-01-01T00:00:00Z", Some(0))]
    #[case("2000-02-29T12:34:56Z", Some(951_827_696))]
    #[case("2024-12-31T23:59:59Z", Some(1_735_689_599))]
    #[case("2024-13-01T00:00:00Z", None)]
    #[case("2024-01-01 00:00:00Z", None)]
    #[case("2024-01-01T00:00:00", None)]
    #[case("+024-01-01T00:00:00Z", None)]
    fn parses_the_json_binding_timestamp(#[case] text: &str, #[case] secs: Option<i64>) {
        assert_eq!(parse_timestamp(text), secs);
    }

    proptest! {
        #[test]
        fn timestamps_round_trip_with_the_smdp_formatter(secs in 0u64..8_000_000_000) {
            let text = crate::smdp::es2::timestamp(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
            );
            prop_assert_eq!(parse_timestamp(&text), Some(secs as i64));
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,30}") {
            let _ = parse_timestamp(&text);
        }

        /// Whatever order events arrive in, a terminal state stays and the state never
        /// moves backwards except by a failed installation of a downloaded order.
        #[test]
        fn applied_events_only_move_forward(points in proptest::collection::vec(
            (prop_oneof![Just(1u32), Just(3), Just(4), Just(5), Just(101), Just(102), Just(103)], any::<bool>()),
            0..20,
        )) {
            let mut current: &'static str = state::RELEASED;
            let mut at = 0;
            for (i, (point, success)) in points.into_iter().enumerate() {
                let e = event(point, success, None, i as i64);
                if let Decision::Apply(new) = decide(current, at, &e) {
                    prop_assert!(!terminal(current));
                    prop_assert!(
                        rank(new) >= rank(current)
                            || (current == state::DOWNLOADED && new == state::RELEASED)
                    );
                    current = new;
                    at = e.at;
                }
            }
        }
    }
}
