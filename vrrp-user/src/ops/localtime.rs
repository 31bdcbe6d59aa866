//! Local wall-clock time in the shapes keepalived and syslog print it.

use std::time::{SystemTime, UNIX_EPOCH};

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i32,
    /// 0..=11
    pub month: usize,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub microsecond: u32,
    /// 0 = Sunday
    pub weekday: usize,
}

/// Seconds since the epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl LocalTime {
    /// `unix` (seconds since the epoch) in the local time zone (TZ, /etc/localtime).
    pub fn from_unix(unix: f64) -> Self {
        let secs = unix.floor();
        let microsecond = ((unix - secs) * 1e6).round().min(999_999.0) as u32;
        let t = secs as libc::time_t;
        // SAFETY: tm is plain data that localtime_r fills in; both pointers
        // are valid for the call.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        if !ok {
            return LocalTime {
                year: 1970,
                month: 0,
                day: 1,
                hour: 0,
                minute: 0,
                second: 0,
                microsecond: 0,
                weekday: 4,
            };
        }
        LocalTime {
            year: tm.tm_year + 1900,
            month: tm.tm_mon.clamp(0, 11) as usize,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
            microsecond,
            weekday: tm.tm_wday.clamp(0, 6) as usize,
        }
    }

    /// keepalived's `ctime_us_r`: "Mon Nov 30 20:36:19.282836 2026".
    pub fn ctime_us(&self) -> String {
        format!(
            "{} {} {:2} {:02}:{:02}:{:02}.{:06} {}",
            DAYS[self.weekday],
            MONTHS[self.month],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
            self.year
        )
    }

    /// keepalived's log file stamp: "Mon Nov 30 20:36:19 2026".
    pub fn ctime(&self) -> String {
        format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            DAYS[self.weekday],
            MONTHS[self.month],
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.year
        )
    }

    /// RFC 3164's TIMESTAMP, as glibc's syslog() writes it: "Nov  3 20:36:19".
    pub fn syslog(&self) -> String {
        format!(
            "{} {:2} {:02}:{:02}:{:02}",
            MONTHS[self.month], self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_keepalived_and_syslog() {
        let t = LocalTime {
            year: 2026,
            month: 10,
            day: 3,
            hour: 20,
            minute: 6,
            second: 9,
            microsecond: 282_836,
            weekday: 2,
        };
        assert_eq!(t.ctime_us(), "Tue Nov  3 20:06:09.282836 2026");
        assert_eq!(t.ctime(), "Tue Nov  3 20:06:09 2026");
        assert_eq!(t.syslog(), "Nov  3 20:06:09");
    }

    #[test]
    fn converts_through_the_local_zone() {
        // Whatever the zone, a time and the same time a day later differ
        // by one day of the week and keep the microseconds.
        let a = LocalTime::from_unix(1_796_070_979.282_836);
        let b = LocalTime::from_unix(1_796_070_979.282_836 + 86_400.0);
        assert_eq!((a.weekday + 1) % 7, b.weekday);
        assert_eq!(a.microsecond, 282_836);
        assert_eq!((a.hour, a.minute, a.second), (b.hour, b.minute, b.second));
    }
}
