//! Time in the organisation's timezone (SPEC §1): timestamps, local days, workdays, periods.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// Parses an input `ts`: RFC 3339 with an offset or `Z`. Epoch milliseconds come as JSON numbers
/// and are handled by [`from_epoch_millis`].
pub fn parse_rfc3339_millis(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Epoch milliseconds, accepted when within years 1970..=9999.
pub fn from_epoch_millis(ms: i64) -> Option<i64> {
    (0..=253_402_300_799_999).contains(&ms).then_some(ms)
}

/// The UTC date (the lake partition `dt`) of an instant in epoch milliseconds.
pub fn utc_date(ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .expect("timestamp in range")
        .date_naive()
}

/// The local day of an instant.
pub fn local_day(ms: i64, tz: Tz) -> NaiveDate {
    tz.timestamp_millis_opt(ms).unwrap().date_naive()
}

/// The first instant (epoch ms) of local day `d`: local midnight, or the first existing local
/// time after it when a daylight-saving change skips midnight.
pub fn local_day_start(d: NaiveDate, tz: Tz) -> i64 {
    let mut t = d.and_time(NaiveTime::MIN);
    // A gap at midnight (some zones change at 00:00): step forward until the time exists.
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&t) {
            chrono::LocalResult::Single(x) => return x.timestamp_millis(),
            chrono::LocalResult::Ambiguous(a, _) => return a.timestamp_millis(),
            chrono::LocalResult::None => t += chrono::Duration::minutes(1),
        }
    }
    tz.from_utc_datetime(&d.and_time(NaiveTime::MIN))
        .timestamp_millis()
}

/// Monday–Friday and not a holiday.
pub fn is_workday(d: NaiveDate, holidays: &[NaiveDate]) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && holidays.binary_search(&d).is_err()
}

/// A period of local days `from..=to` (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate, tz: Tz) -> anyhow::Result<Period> {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
        Ok(Period { from, to, tz })
    }
    /// First instant of the period (epoch ms, inclusive).
    pub fn start_ms(&self) -> i64 {
        local_day_start(self.from, self.tz)
    }
    /// End of the period (epoch ms, exclusive): the start of the day after `to`.
    pub fn end_ms(&self) -> i64 {
        local_day_start(self.to.succ_opt().expect("date in range"), self.tz)
    }
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
    pub fn day_count(&self) -> usize {
        (self.to - self.from).num_days() as usize + 1
    }
}

/// Formats epoch ms as RFC 3339 UTC with milliseconds, `2026-10-01T01:02:03.004Z`.
pub fn format_utc_millis(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses a command-line instant: RFC 3339, or a bare local date/time in `tz`.
pub fn parse_instant(s: &str, tz: Tz) -> anyhow::Result<i64> {
    if let Some(ms) = parse_rfc3339_millis(s) {
        return Ok(ms);
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, f)
            && let Some(x) = tz.from_local_datetime(&n).earliest()
        {
            return Ok(x.timestamp_millis());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(local_day_start(d, tz));
    }
    anyhow::bail!(
        "cannot read the time {s:?}: use RFC 3339 (2026-10-08T00:00:00+08:00) or a local date (2026-10-08)"
    )
}

/// Parses a duration the same way everywhere a person writes one (config, rule headers,
/// `silence add --for`): `30s`, `15m`, `4h`, `1d`, `1h30m`, `1h 30m`, `500ms`, `2days`
/// (humantime's syntax). Refuses zero, which nowhere means anything useful.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("duration {s:?}: {e} (write e.g. \"30s\", \"15m\", \"4h\", \"1d\", \"1h30m\")")
    })?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn london_dst_day_is_25_hours() {
        let tz = chrono_tz::Europe::London;
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        let p = Period::new(d, d, tz).unwrap();
        assert_eq!(p.end_ms() - p.start_ms(), 25 * 3600 * 1000);
    }

    #[test]
    fn half_hour_offsets_and_midnight_gaps() {
        let tz = chrono_tz::Asia::Kolkata;
        let d = NaiveDate::from_ymd_opt(2026, 10, 1).unwrap();
        assert_eq!(
            format_utc_millis(local_day_start(d, tz)),
            "2026-09-30T18:30:00.000Z"
        );
        // Santiago skips 00:00 -> 01:00 on 2026-09-06.
        let tz = chrono_tz::America::Santiago;
        let d = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        let s = local_day_start(d, tz);
        assert_eq!(local_day(s, tz), d);
        assert_eq!(local_day(s - 1, tz), d.pred_opt().unwrap());
    }

    #[test]
    fn ts_forms() {
        assert_eq!(
            parse_rfc3339_millis("2026-10-01T09:01:02.123+08:00"),
            parse_rfc3339_millis("2026-10-01T01:01:02.123Z")
        );
        assert!(parse_rfc3339_millis("yesterday").is_none());
        assert!(from_epoch_millis(-5).is_none());
    }

    #[test]
    fn durations_have_one_syntax() {
        use std::time::Duration;
        for (text, secs) in [
            ("30s", 30),
            ("15m", 900),
            ("1h30m", 5400),
            ("1h 30m", 5400),
            ("1d", 86_400),
            ("2h", 7200),
        ] {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_secs(secs),
                "{text}"
            );
        }
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        for bad in ["", "0m", "5 parsecs", "m5", "-1h"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
