//! Per-second rates from two readings of an interface counter (sans-IO, no clock).
//!
//! The rule, shared by every backend:
//! - a counter that went up gives `(new - old) / seconds`;
//! - a counter that went backwards gives **no rate** (`None`), because from two readings a
//!   wrap cannot be told from an agent reboot or a counter reset, and a guess gives the huge
//!   spikes LibreNMS users know. The one exception is a 32-bit counter (the octet and packet
//!   counters when the poll did not use the HC columns, and the error counters, which IF-MIB
//!   only defines as Counter32): when both readings fit in 32 bits it is taken as a single
//!   wrap at 2^32, and for octets the resulting rate must not exceed the interface speed
//!   (else it is treated as a reset);
//! - a missing reading on either side, a change between HC and non-HC counters, or a
//!   non-positive period gives no rate.

/// Whether the counter is a Counter64 that cannot wrap in practice or a Counter32 that can.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    Bits32,
    Bits64,
}

/// Rate of one counter between two readings `seconds` apart. `max_per_second`, when
/// known, bounds what a 32-bit wrap may imply (e.g. ifSpeed/8 for octets).
pub(crate) fn counter_rate(
    old: Option<u64>,
    new: Option<u64>,
    seconds: f64,
    width: Width,
    max_per_second: Option<f64>,
) -> Option<f64> {
    let (old, new) = (old?, new?);
    if !(seconds.is_finite() && seconds > 0.0) {
        return None;
    }
    if new >= old {
        return Some((new - old) as f64 / seconds);
    }
    let max32 = u64::from(u32::MAX);
    if width == Width::Bits32 && old <= max32 && new <= max32 {
        let delta = (max32 - old) + new + 1;
        let rate = delta as f64 / seconds;
        if max_per_second.is_some_and(|max| rate > max * 1.1) {
            return None;
        }
        return Some(rate);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_counter_gives_rate() {
        assert_eq!(
            counter_rate(Some(1000), Some(4000), 300.0, Width::Bits64, None),
            Some(10.0)
        );
        assert_eq!(
            counter_rate(Some(5), Some(5), 300.0, Width::Bits64, None),
            Some(0.0)
        );
    }

    #[test]
    fn values_above_2_pow_63_work() {
        let old = u64::MAX - 3000;
        assert_eq!(
            counter_rate(Some(old), Some(u64::MAX), 300.0, Width::Bits64, None),
            Some(10.0)
        );
    }

    #[test]
    fn backwards_hc_counter_gives_none() {
        assert_eq!(
            counter_rate(Some(10_000), Some(5), 300.0, Width::Bits64, None),
            None
        );
        assert_eq!(
            counter_rate(Some(u64::MAX), Some(0), 300.0, Width::Bits64, None),
            None
        );
    }

    #[test]
    fn counter32_wrap_is_a_wrap() {
        let old = u64::from(u32::MAX) - 99;
        // 100 to reach 2^32, then 200 more.
        assert_eq!(
            counter_rate(Some(old), Some(200), 10.0, Width::Bits32, None),
            Some(30.0)
        );
    }

    #[test]
    fn counter32_wrap_faster_than_the_link_is_a_reset() {
        // Agent reboot: 4e9 -> 1000 in 300 s would be ~1 MB/s; a 1 Mbit/s link moves 125 kB/s.
        assert_eq!(
            counter_rate(
                Some(4_000_000_000),
                Some(1000),
                300.0,
                Width::Bits32,
                Some(125_000.0)
            ),
            None
        );
        // Without a known speed the wrap is accepted.
        assert!(
            counter_rate(Some(4_000_000_000), Some(1000), 300.0, Width::Bits32, None).is_some()
        );
    }

    #[test]
    fn counter32_with_a_64_bit_value_is_not_a_wrap() {
        assert_eq!(
            counter_rate(Some(1 << 40), Some(5), 300.0, Width::Bits32, None),
            None
        );
    }

    #[test]
    fn missing_or_bad_inputs_give_none() {
        assert_eq!(
            counter_rate(None, Some(5), 300.0, Width::Bits64, None),
            None
        );
        assert_eq!(
            counter_rate(Some(5), None, 300.0, Width::Bits64, None),
            None
        );
        assert_eq!(
            counter_rate(Some(1), Some(5), 0.0, Width::Bits64, None),
            None
        );
        assert_eq!(
            counter_rate(Some(1), Some(5), -3.0, Width::Bits64, None),
            None
        );
        assert_eq!(
            counter_rate(Some(1), Some(5), f64::NAN, Width::Bits64, None),
            None
        );
    }
}
