//! Skew_Time and Master_Down_Interval (RFC 3768 §6.1, RFC 5798 §6.1), in
//! integer nanoseconds so results are exact to the nanosecond (keepalived
//! truncates the same values to microseconds).

use std::time::Duration;

use crate::packet::Version;

/// Skew_Time: v2 `(256 − priority) / 256` s, v3
/// `(256 − priority) × Master_Adver_Interval / 256`, floored to the nanosecond.
/// Lower priorities wait longer, so the best backup takes over first.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    skew_of(version, 256 - u128::from(priority), master_adver_interval)
}

/// keepalived's `VRRP_TIMER_SKEW_MIN`: the skew of priority 255 (1/256 of
/// the base), used for the shortened first down timer of `state MASTER`.
pub fn min_skew_time(version: Version, master_adver_interval: Duration) -> Duration {
    skew_of(version, 1, master_adver_interval)
}

/// Master_Down_Interval: `adverts × Master_Adver_Interval + Skew_Time`; the
/// RFC's `adverts` is 3 (keepalived's `down_timer_adverts`).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
    adverts: u32,
) -> Duration {
    master_adver_interval * adverts + skew_time(version, priority, master_adver_interval)
}

fn skew_of(version: Version, factor: u128, master_adver_interval: Duration) -> Duration {
    let base = match version {
        // v2 skews by seconds whatever the interval.
        Version::V2 => Duration::from_secs(1),
        Version::V3 => master_adver_interval,
    };
    let nanos = factor * base.as_nanos() / 256;
    // factor ≤ 256 and base ≤ 255 s: far inside u64.
    Duration::from_nanos(nanos as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn v2_priority_100_one_second() {
        // 156/256 s = 0.609375 s exactly.
        assert_eq!(
            skew_time(Version::V2, 100, SECOND),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, SECOND, 3),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn v2_skew_ignores_interval() {
        let three = Duration::from_secs(3);
        assert_eq!(
            skew_time(Version::V2, 100, three),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, three, 3),
            Duration::from_micros(9_609_375)
        );
    }

    #[test]
    fn v3_priority_100_one_second() {
        assert_eq!(
            skew_time(Version::V3, 100, SECOND),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, SECOND, 3),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn v3_priority_100_fifty_ms() {
        let interval = Duration::from_millis(50);
        // 156 × 50 ms / 256 = 30.46875 ms (keepalived: 30468 µs).
        assert_eq!(
            skew_time(Version::V3, 100, interval),
            Duration::from_nanos(30_468_750)
        );
        assert_eq!(
            master_down_interval(Version::V3, 100, interval, 3),
            Duration::from_nanos(180_468_750)
        );
    }

    #[test]
    fn extremes() {
        // Owner: 1/256 s; lowest priority: 255/256 s.
        assert_eq!(
            skew_time(Version::V2, 255, SECOND),
            Duration::from_nanos(3_906_250)
        );
        assert_eq!(
            skew_time(Version::V2, 1, SECOND),
            Duration::from_nanos(996_093_750)
        );
        assert_eq!(
            min_skew_time(Version::V2, SECOND),
            Duration::from_nanos(3_906_250)
        );
        let max_v3 = Duration::from_millis(40_950);
        assert_eq!(
            min_skew_time(Version::V3, max_v3),
            Duration::from_nanos(159_960_937)
        );
        assert_eq!(
            master_down_interval(Version::V3, 1, max_v3, 3),
            Duration::from_nanos(122_850_000_000 + 40_790_039_062)
        );
    }

    #[test]
    fn adverts_multiplier() {
        assert_eq!(
            master_down_interval(Version::V2, 100, SECOND, 1),
            Duration::from_micros(1_609_375)
        );
    }
}
