//! Free slots, computed in the client's time zone. Pure: the handlers load hours, time off and
//! busy ranges, and this decides. A slot starts on the staff member's grid (the start of a
//! working window plus whole multiples of the service's duration), ends inside the window, is
//! not in the past or in time off, names a wall-clock time that exists that day (a spring-forward
//! gap has none), and its blocked range (the slot widened by the service's buffers) overlaps no
//! active appointment. A repeated fall-back hour is offered once, at its first occurrence.

use crate::platform::tz::{self, Date, Offsets};

const MINUTE_MS: i64 = 60_000;

/// One weekly working window, in local minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// ISO weekday, Monday 1 … Sunday 7.
    pub weekday: i8,
    pub start_min: i32,
    pub end_min: i32,
}

/// Whole local days off, inclusive.
#[derive(Debug, Clone, Copy)]
pub struct DaysOff {
    pub from: Date,
    pub to: Date,
}

/// What a slot needs of its service.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub duration_min: i32,
    pub buffer_before_min: i32,
    pub buffer_after_min: i32,
}

impl Shape {
    /// The busy range a slot starting at `start_ms` takes.
    pub fn blocked(&self, start_ms: i64) -> (i64, i64) {
        (
            start_ms - i64::from(self.buffer_before_min) * MINUTE_MS,
            start_ms + i64::from(self.duration_min + self.buffer_after_min) * MINUTE_MS,
        )
    }

    pub fn end(&self, start_ms: i64) -> i64 {
        start_ms + i64::from(self.duration_min) * MINUTE_MS
    }
}

/// One staff member's calendar for the computation.
pub struct Calendar<'a> {
    pub tz: &'a dyn Offsets,
    pub windows: &'a [Window],
    pub days_off: &'a [DaysOff],
    /// Blocked ranges of active appointments, UTC milliseconds.
    pub busy: &'a [(i64, i64)],
}

/// A free slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub start_ms: i64,
    pub end_ms: i64,
    pub date: Date,
    pub start_min: i32,
}

/// Why a requested start is not a slot. Each is a 422 with its own code, except `Taken` (409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    InPast,
    OutsideHours,
    OffGrid,
    Taken,
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InPast => "slot_in_past",
            Refusal::OutsideHours => "outside_working_hours",
            Refusal::OffGrid => "off_grid",
            Refusal::Taken => "slot_taken",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            Refusal::InPast => "that time has passed",
            Refusal::OutsideHours => "that time is outside the staff member's working hours",
            Refusal::OffGrid => "slots start at the working window's start plus whole service durations",
            Refusal::Taken => "that slot is no longer free",
        }
    }
}

fn on_day_off(days_off: &[DaysOff], d: Date) -> bool {
    days_off.iter().any(|o| o.from <= d && d <= o.to)
}

fn overlaps(busy: &[(i64, i64)], (from, until): (i64, i64)) -> bool {
    busy.iter().any(|(b_from, b_until)| *b_from < until && *b_until > from)
}

/// Every free slot on the local days `from..=to`, in order.
pub fn slots(cal: &Calendar<'_>, shape: Shape, from: Date, to: Date, now_ms: i64) -> Vec<Slot> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        if !on_day_off(cal.days_off, day) {
            let weekday = day.iso_weekday();
            let mut windows: Vec<&Window> = cal.windows.iter().filter(|w| w.weekday == weekday).collect();
            windows.sort_by_key(|w| w.start_min);
            for w in windows {
                let mut m = w.start_min;
                while m + shape.duration_min <= w.end_min {
                    if let Some(start_ms) = tz::local_to_utc_ms(cal.tz, day, m) {
                        let free = start_ms >= now_ms && !overlaps(cal.busy, shape.blocked(start_ms));
                        // A fold offers its first occurrence only: skip a start that is not the
                        // first instant this wall-clock time names (never true outside a fold).
                        if free && !out.iter().any(|s: &Slot| s.start_ms == start_ms) {
                            out.push(Slot { start_ms, end_ms: shape.end(start_ms), date: day, start_min: m });
                        }
                    }
                    m += shape.duration_min;
                }
            }
        }
        match day.tomorrow() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

/// Whether `start_ms` is a bookable slot, ignoring other appointments (the insert decides those),
/// or why not.
pub fn check(cal: &Calendar<'_>, shape: Shape, start_ms: i64, now_ms: i64) -> Result<Slot, Refusal> {
    if start_ms < now_ms {
        return Err(Refusal::InPast);
    }
    let (day, minute) = tz::utc_ms_to_local(cal.tz, start_ms).ok_or(Refusal::OutsideHours)?;
    if on_day_off(cal.days_off, day) {
        return Err(Refusal::OutsideHours);
    }
    let weekday = day.iso_weekday();
    let window = cal
        .windows
        .iter()
        .filter(|w| w.weekday == weekday)
        .find(|w| w.start_min <= minute && minute + shape.duration_min <= w.end_min)
        .ok_or(Refusal::OutsideHours)?;
    let on_grid = (minute - window.start_min) % shape.duration_min == 0
        && tz::local_to_utc_ms(cal.tz, day, minute) == Some(start_ms)
        && start_ms % MINUTE_MS == 0;
    if !on_grid {
        return Err(Refusal::OffGrid);
    }
    Ok(Slot { start_ms, end_ms: shape.end(start_ms), date: day, start_min: minute })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tz::FixedRules;

    fn d(s: &str) -> Date {
        tz::parse_date(s).unwrap()
    }

    fn at(s: &str) -> i64 {
        tz::parse_instant(s).unwrap()
    }

    /// 2027's rules: New York EDT 03-14 07:00Z to 11-07 06:00Z; Berlin CEST 03-28 01:00Z to 10-31 01:00Z.
    fn zone(name: &str) -> FixedRules {
        match name {
            "America/New_York" => FixedRules {
                standard: -300,
                summer: -240,
                summers: vec![(at("2027-03-14T07:00:00Z"), at("2027-11-07T06:00:00Z"))],
            },
            _ => FixedRules {
                standard: 60,
                summer: 120,
                summers: vec![(at("2027-03-28T01:00:00Z"), at("2027-10-31T01:00:00Z"))],
            },
        }
    }

    const HOUR: Shape = Shape { duration_min: 60, buffer_before_min: 0, buffer_after_min: 0 };

    /// Every day of the week, 00:00-06:00 local: wide enough to straddle every DST change.
    fn small_hours() -> Vec<Window> {
        (1..=7).map(|weekday| Window { weekday, start_min: 0, end_min: 6 * 60 }).collect()
    }

    fn starts(name: &str, day: &str) -> Vec<String> {
        let tz = zone(name);
        let windows = small_hours();
        let cal = Calendar { tz: &tz, windows: &windows, days_off: &[], busy: &[] };
        slots(&cal, HOUR, d(day), d(day), 0).iter().map(|s| tz::instant_string(s.start_ms)).collect()
    }

    #[test]
    fn new_york_spring_forward_has_no_two_oclock_slot() {
        assert_eq!(
            starts("America/New_York", "2027-03-14"),
            [
                "2027-03-14T05:00:00Z",
                "2027-03-14T06:00:00Z",
                "2027-03-14T07:00:00Z",
                "2027-03-14T08:00:00Z",
                "2027-03-14T09:00:00Z"
            ]
        );
    }

    #[test]
    fn new_york_fall_back_offers_one_oclock_once() {
        assert_eq!(
            starts("America/New_York", "2027-11-07"),
            [
                "2027-11-07T04:00:00Z",
                "2027-11-07T05:00:00Z",
                "2027-11-07T07:00:00Z",
                "2027-11-07T08:00:00Z",
                "2027-11-07T09:00:00Z",
                "2027-11-07T10:00:00Z"
            ]
        );
    }

    #[test]
    fn berlin_spring_forward_and_fall_back() {
        assert_eq!(
            starts("Europe/Berlin", "2027-03-28"),
            [
                "2027-03-27T23:00:00Z",
                "2027-03-28T00:00:00Z",
                "2027-03-28T01:00:00Z",
                "2027-03-28T02:00:00Z",
                "2027-03-28T03:00:00Z"
            ]
        );
        assert_eq!(
            starts("Europe/Berlin", "2027-10-31"),
            [
                "2027-10-30T22:00:00Z",
                "2027-10-30T23:00:00Z",
                "2027-10-31T00:00:00Z",
                "2027-10-31T02:00:00Z",
                "2027-10-31T03:00:00Z",
                "2027-10-31T04:00:00Z"
            ]
        );
    }

    #[test]
    fn an_ordinary_day_is_six_slots_either_side_of_a_change() {
        assert_eq!(starts("America/New_York", "2027-03-13").len(), 6);
        assert_eq!(starts("America/New_York", "2027-03-15")[0], "2027-03-15T04:00:00Z", "EDT now");
    }

    #[test]
    fn busy_ranges_buffers_time_off_and_the_past_remove_slots() {
        let tz = zone("Europe/Berlin");
        let windows = [Window { weekday: 1, start_min: 9 * 60, end_min: 12 * 60 }];
        // Monday 2027-06-07, CEST (UTC+2): 09:00 local = 07:00Z. One appointment 10:00-11:00 local.
        let busy = [(at("2027-06-07T08:00:00Z"), at("2027-06-07T09:00:00Z"))];
        let cal = Calendar { tz: &tz, windows: &windows, days_off: &[], busy: &busy };
        let shape = Shape { duration_min: 30, buffer_before_min: 0, buffer_after_min: 15 };
        let got: Vec<String> = slots(&cal, shape, d("2027-06-07"), d("2027-06-07"), 0)
            .iter()
            .map(|s| tz::local_label(&tz, s.start_ms))
            .collect();
        // 09:30 would block until 10:15 and collide; 10:00 and 10:30 are taken.
        assert_eq!(got, ["2027-06-07T09:00", "2027-06-07T11:00", "2027-06-07T11:30"]);
        let later = slots(&cal, shape, d("2027-06-07"), d("2027-06-07"), at("2027-06-07T09:10:00Z"));
        assert_eq!(later.len(), 1, "only 11:30 is still ahead");
        let off = [DaysOff { from: d("2027-06-07"), to: d("2027-06-07") }];
        let cal = Calendar { tz: &tz, windows: &windows, days_off: &off, busy: &[] };
        assert!(slots(&cal, shape, d("2027-06-07"), d("2027-06-13"), 0).is_empty());
    }

    #[test]
    fn a_requested_start_is_checked_with_a_reason() {
        let tz = zone("America/New_York");
        let windows = [Window { weekday: 3, start_min: 9 * 60, end_min: 17 * 60 }];
        let cal = Calendar { tz: &tz, windows: &windows, days_off: &[], busy: &[] };
        // Wednesday 2027-06-09, EDT (UTC-4).
        assert!(check(&cal, HOUR, at("2027-06-09T13:00:00Z"), 0).is_ok(), "09:00 local");
        assert_eq!(check(&cal, HOUR, at("2027-06-09T13:30:00Z"), 0), Err(Refusal::OffGrid));
        assert_eq!(check(&cal, HOUR, at("2027-06-09T12:00:00Z"), 0), Err(Refusal::OutsideHours), "08:00 local");
        assert_eq!(check(&cal, HOUR, at("2027-06-09T20:30:00Z"), 0), Err(Refusal::OutsideHours), "ends after 17:00");
        assert_eq!(check(&cal, HOUR, at("2027-06-10T13:00:00Z"), 0), Err(Refusal::OutsideHours), "Thursday");
        assert_eq!(check(&cal, HOUR, at("2027-06-09T13:00:00Z"), at("2027-06-09T14:00:00Z")), Err(Refusal::InPast));
        assert_eq!(check(&cal, HOUR, at("2027-06-09T13:00:30Z"), 0), Err(Refusal::OffGrid), "seconds");
    }
}
