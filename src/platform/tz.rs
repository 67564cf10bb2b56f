//! Civil time in IANA time zones. The tz database itself comes from the platform (`ports::Zones`:
//! the Workers runtime's ICU through `Intl` at the edge), so the Worker carries no copy of it;
//! this module turns a zone's UTC offsets into local dates and wall-clock times, and back.
//! Instants are UTC milliseconds; local times are a date plus minutes after midnight.

use std::fmt;

use super::ports::Zones;

const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: i32,
    month: u8,
    day: u8,
}

fn leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        ((1..=9999).contains(&year) && day >= 1 && day <= days_in_month(year, month)).then_some(Date {
            year,
            month,
            day,
        })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    /// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
    pub fn days(self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01 (`civil_from_days`).
    pub fn from_days(days: i64) -> Option<Date> {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date::new(i32::try_from(year).ok()?, month, day)
    }

    pub fn tomorrow(self) -> Option<Date> {
        Date::from_days(self.days() + 1)
    }

    /// ISO weekday, Monday = 1 … Sunday = 7.
    pub fn iso_weekday(self) -> i8 {
        // 1970-01-01 was a Thursday (4).
        ((self.days() + 3).rem_euclid(7) + 1) as i8
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A local calendar date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Date::new(digits(&s[..4])? as i32, digits(&s[5..7])? as u8, digits(&s[8..])? as u8)
}

/// An RFC 3339 instant (`2027-03-14T07:00:00Z`, `…+01:00`, optional fraction) as UTC milliseconds.
pub fn parse_instant(s: &str) -> Option<i64> {
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    if !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = parse_date(&s[..10])?;
    let (h, m, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let f = &frac[..n];
        ms = i64::from(digits(&format!("{:0<3}", &f[..n.min(3)]))?);
        rest = &frac[n..];
    }
    let offset_min: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            let (oh, om) = (i64::from(digits(&o[1..3])?), i64::from(digits(&o[4..6])?));
            if oh > 23 || om > 59 {
                return None;
            }
            if o.starts_with('-') {
                -(oh * 60 + om)
            } else {
                oh * 60 + om
            }
        }
        _ => return None,
    };
    let local = date.days() * DAY_MS + i64::from(h * 3600 + m * 60 + sec) * 1000 + ms;
    Some(local - offset_min * MINUTE_MS)
}

/// UTC milliseconds as RFC 3339, `YYYY-MM-DDTHH:MM:SSZ` (milliseconds only when present).
pub fn instant_string(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rem = ms.rem_euclid(DAY_MS);
    let date = Date::from_days(days).map(|d| d.to_string()).unwrap_or_default();
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    if milli == 0 {
        format!("{date}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{date}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
    }
}

/// A zone's offsets, however they are known.
pub trait Offsets {
    /// Minutes east of UTC at the instant.
    fn offset_min(&self, utc_ms: i64) -> Option<i32>;
}

/// A named zone whose offsets the platform knows.
pub struct Zone<'a, Z: Zones + ?Sized> {
    zones: &'a Z,
    name: String,
}

impl<'a, Z: Zones + ?Sized> Zone<'a, Z> {
    /// The zone by name, canonicalised (`america/new_york` → `America/New_York`), if it exists.
    pub fn get(zones: &'a Z, name: &str) -> Option<Self> {
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b))
        {
            return None;
        }
        let name = zones.canonical_zone(name)?;
        Some(Zone { zones, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<Z: Zones + ?Sized> Offsets for Zone<'_, Z> {
    fn offset_min(&self, utc_ms: i64) -> Option<i32> {
        self.zones.utc_offset_min(&self.name, utc_ms)
    }
}

/// The instant a local wall-clock time names. A time skipped by a spring-forward gap names no
/// instant (None); a time repeated by a fall-back names two, and the first is taken. Assumes at
/// most one offset change within a day either side, as every real zone has.
pub fn local_to_utc_ms(tz: &dyn Offsets, date: Date, minutes: i32) -> Option<i64> {
    if !(0..24 * 60).contains(&minutes) {
        return None;
    }
    let naive = date.days() * DAY_MS + i64::from(minutes) * MINUTE_MS;
    let mut found: Option<i64> = None;
    for probe in [naive - DAY_MS, naive + DAY_MS] {
        let t = naive - i64::from(tz.offset_min(probe)?) * MINUTE_MS;
        if tz.offset_min(t)? as i64 * MINUTE_MS == naive - t {
            found = Some(found.map_or(t, |f| f.min(t)));
        }
    }
    found
}

/// The local date and minutes after midnight of an instant.
pub fn utc_ms_to_local(tz: &dyn Offsets, ms: i64) -> Option<(Date, i32)> {
    let local = ms + i64::from(tz.offset_min(ms)?) * MINUTE_MS;
    Some((Date::from_days(local.div_euclid(DAY_MS))?, (local.rem_euclid(DAY_MS) / MINUTE_MS) as i32))
}

/// `YYYY-MM-DDTHH:MM` on the zone's clock.
pub fn local_label(tz: &dyn Offsets, ms: i64) -> String {
    utc_ms_to_local(tz, ms).map(|(d, m)| format!("{d}T{:02}:{:02}", m / 60, m % 60)).unwrap_or_default()
}

/// Offsets of a zone given as rules, for tests: a standard offset, and a summer offset between
/// two instants of each year.
#[cfg(test)]
pub struct FixedRules {
    pub standard: i32,
    pub summer: i32,
    /// (start, end) instants of summer time.
    pub summers: Vec<(i64, i64)>,
}

#[cfg(test)]
impl Offsets for FixedRules {
    fn offset_min(&self, utc_ms: i64) -> Option<i32> {
        Some(if self.summers.iter().any(|(a, b)| *a <= utc_ms && utc_ms < *b) { self.summer } else { self.standard })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        parse_date(s).unwrap()
    }

    fn at(s: &str) -> i64 {
        parse_instant(s).unwrap()
    }

    /// New York in 2027: EDT from 2027-03-14 07:00Z to 2027-11-07 06:00Z.
    pub fn new_york() -> FixedRules {
        FixedRules {
            standard: -300,
            summer: -240,
            summers: vec![(at("2027-03-14T07:00:00Z"), at("2027-11-07T06:00:00Z"))],
        }
    }

    #[test]
    fn dates_round_trip_through_day_numbers() {
        for s in ["1970-01-01", "2000-02-29", "2027-03-14", "1999-12-31", "2400-02-29", "0001-01-01", "9999-12-31"] {
            assert_eq!(Date::from_days(d(s).days()).unwrap(), d(s), "{s}");
        }
        assert_eq!(d("1970-01-01").days(), 0);
        assert_eq!(d("2027-03-14").iso_weekday(), 7);
        assert_eq!(d("2027-06-07").iso_weekday(), 1);
        assert_eq!(d("2027-12-31").tomorrow().unwrap(), d("2028-01-01"));
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-00-10",
            "27-03-31",
            "2027/03/31",
            "2027-3-31",
            "+027-03-31",
            "2027-03-3a",
            "0000-01-01",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn instants_parse_strictly_and_print_in_utc() {
        assert_eq!(at("2027-03-14T07:00:00+01:00"), at("2027-03-14T06:00:00Z"));
        assert_eq!(at("2027-03-14T07:00:00.250Z") - at("2027-03-14T07:00:00Z"), 250);
        assert_eq!(instant_string(at("2027-03-14T06:00:00-05:30")), "2027-03-14T11:30:00Z");
        assert_eq!(instant_string(0), "1970-01-01T00:00:00Z");
        for bad in [
            "2027-03-14 07:00",
            "2027-03-14T07:00Z",
            "2027-03-14T24:00:00Z",
            "2027-03-14T07:00:00",
            "2027-03-14T07:00:00+1:00",
            "2027-02-30T07:00:00Z",
        ] {
            assert!(parse_instant(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn spring_forward_skips_the_missing_hour_and_fall_back_takes_the_first() {
        let ny = new_york();
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-03-14"), 60).unwrap()), "2027-03-14T06:00:00Z");
        assert_eq!(local_to_utc_ms(&ny, d("2027-03-14"), 150), None, "02:30 does not exist");
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-03-14"), 180).unwrap()), "2027-03-14T07:00:00Z");
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-11-07"), 90).unwrap()), "2027-11-07T05:30:00Z");
        assert_eq!(instant_string(local_to_utc_ms(&ny, d("2027-11-07"), 120).unwrap()), "2027-11-07T07:00:00Z");
        assert_eq!(utc_ms_to_local(&ny, at("2027-11-07T06:30:00Z")), Some((d("2027-11-07"), 90)), "the second 01:30");
        assert_eq!(local_label(&ny, at("2027-06-09T14:00:00Z")), "2027-06-09T10:00");
    }
}
