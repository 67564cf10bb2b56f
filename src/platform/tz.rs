//! Civil time in IANA time zones, over jiff's bundled copy of the tz database (a Worker has no
//! zoneinfo). Instants are UTC milliseconds; local times are a date plus minutes after midnight.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

/// A time zone by its IANA name (`America/New_York`), or None if the name is unknown.
pub fn zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    TimeZone::get(name).ok()
}

/// A local calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 10 {
        return None;
    }
    s.parse::<Date>().ok()
}

/// The instant a local wall-clock time names. A time skipped by a spring-forward gap names no
/// instant (None); a time repeated by a fall-back names two, and the first is taken.
pub fn local_to_utc_ms(tz: &TimeZone, date: Date, minutes: i32) -> Option<i64> {
    if !(0..24 * 60).contains(&minutes) {
        return None;
    }
    let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
    let dt = DateTime::from_parts(date, time);
    let offset = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Gap { .. } => return None,
        AmbiguousOffset::Fold { before, .. } => before,
    };
    offset.to_timestamp(dt).ok().map(|t| t.as_millisecond())
}

/// The local date and minutes after midnight of an instant.
pub fn utc_ms_to_local(tz: &TimeZone, ms: i64) -> Option<(Date, i32)> {
    let dt = tz.to_datetime(Timestamp::from_millisecond(ms).ok()?);
    Some((dt.date(), i32::from(dt.hour()) * 60 + i32::from(dt.minute())))
}

/// `YYYY-MM-DDTHH:MM` in the zone, for showing a slot as the client's clock reads it.
pub fn local_label(tz: &TimeZone, ms: i64) -> String {
    utc_ms_to_local(tz, ms).map(|(d, m)| format!("{d}T{:02}:{:02}", m / 60, m % 60)).unwrap_or_default()
}

/// An RFC 3339 instant (`2027-03-14T07:00:00Z`, any offset) as UTC milliseconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    if s.len() > 40 {
        return None;
    }
    s.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

/// UTC milliseconds as RFC 3339 with a `Z`.
pub fn instant_string(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// ISO weekday, Monday = 1 … Sunday = 7.
pub fn iso_weekday(d: Date) -> i8 {
    d.weekday().to_monday_one_offset()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        parse_date(s).unwrap()
    }

    #[test]
    fn spring_forward_skips_the_missing_hour_and_fall_back_takes_the_first() {
        let ny = zone("America/New_York").unwrap();
        // 2027-03-14: 02:00 EST jumps to 03:00 EDT.
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-03-14"), 60).unwrap()), "2027-03-14T06:00:00Z");
        assert_eq!(local_to_utc_ms(&ny, d("2027-03-14"), 150), None, "02:30 does not exist");
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-03-14"), 180).unwrap()), "2027-03-14T07:00:00Z");
        // 2027-11-07: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-11-07"), 90).unwrap()), "2027-11-07T05:30:00Z");
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-11-07"), 120).unwrap()), "2027-11-07T07:00:00Z");
        let berlin = zone("Europe/Berlin").unwrap();
        assert_eq!(local_to_utc_ms(&berlin, d("2027-03-28"), 150), None);
        assert_eq!(instant_string(local_to_utc_ms(&berlin, d("2027-10-31"), 150).unwrap()), "2027-10-31T00:30:00Z");
        assert_eq!(
            utc_ms_to_local(&berlin, parse_instant("2027-10-31T01:30:00Z").unwrap()),
            Some((d("2027-10-31"), 150))
        );
    }

    #[test]
    fn names_dates_and_instants_are_parsed_strictly() {
        assert!(zone("Europe/Berlin").is_some());
        for bad in ["", "Mars/Olympus", "../../etc/passwd", "Europe/Berlin\0", &"A".repeat(100)] {
            assert!(zone(bad).is_none(), "{bad:?}");
        }
        assert!(parse_date("2027-02-29").is_none());
        assert!(parse_date("2028-02-29").is_some());
        assert!(parse_date("2027-3-1").is_none());
        assert_eq!(parse_instant("2027-03-14T07:00:00+01:00"), parse_instant("2027-03-14T06:00:00Z"));
        assert!(parse_instant("2027-03-14 07:00").is_none());
        assert_eq!(iso_weekday(d("2027-03-14")), 7);
    }
}
