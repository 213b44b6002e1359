//! The synthetic IF-MIB device for benchmarks: the system group, ifNumber, and ifTable +
//! ifXTable with `ifaces` interfaces of realistic values, the octet and packet counters
//! (Counter32 and the Counter64 HC ones) advancing with time. No recording file needed.

use lookout_snmp::{Oid, Value};

use crate::recording::{Builder, Dynamic, Recording};

const SYSTEM: [u32; 7] = [1, 3, 6, 1, 2, 1, 1];
const IF_NUMBER: [u32; 9] = [1, 3, 6, 1, 2, 1, 2, 1, 0];
const IF_ENTRY: [u32; 9] = [1, 3, 6, 1, 2, 1, 2, 2, 1];
const IFX_ENTRY: [u32; 10] = [1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

/// Builds the synthetic device (name `synthetic-ifmib-<ifaces>`).
pub fn ifmib(ifaces: u32) -> Recording {
    let mut b = Builder::new(format!("synthetic-ifmib-{ifaces}"));
    let s = |n: u32| Oid::new(&SYSTEM).join(&[n, 0]);
    let text = |t: String| Value::OctetString(t.into_bytes());
    b.push(
        s(1).as_slice(),
        text(format!(
            "Lookout simulated switch, {ifaces} x 10GbE, lookout-snmpsim {}",
            env!("CARGO_PKG_VERSION")
        )),
    );
    b.push(
        s(2).as_slice(),
        Value::ObjectId(Oid::new(&[1, 3, 6, 1, 4, 1, 8072, 3, 2, 10])),
    );
    b.push(s(3).as_slice(), Value::TimeTicks(123_456));
    b.push(s(4).as_slice(), text("noc@example.invalid".into()));
    b.push(s(5).as_slice(), text(format!("sim-ifmib-{ifaces}")));
    b.push(s(6).as_slice(), text("rack 1, row 2, lab".into()));
    b.push(s(7).as_slice(), Value::Integer(72));
    b.push(&IF_NUMBER, Value::Integer(i64::from(ifaces)));

    for i in 1..=ifaces {
        let i64v = u64::from(i);
        // Every 8th port is down; its counters stand still.
        let up = i % 8 != 0;
        let k = if up { 1 } else { 0 };
        // Octet rates between ~10 kB/s and ~100 MB/s, packets ~1/800 of octets.
        let octets = k * (10_000 + (i64v * 7_919_993) % 100_000_000);
        let pkts = octets / 800 + k;
        let c32 = |base: u64, rate: u64| {
            (
                Value::Counter32(base as u32),
                Dynamic::Counter32 {
                    base: base as u32,
                    rate: rate as u32,
                },
            )
        };
        let c64 =
            |base: u64, rate: u64| (Value::Counter64(base), Dynamic::Counter64 { base, rate });
        let col = |c: u32| Oid::new(&IF_ENTRY).join(&[c, i]);
        let xcol = |c: u32| Oid::new(&IFX_ENTRY).join(&[c, i]);
        let st = |b: &mut Builder, o: Oid, v: Value| b.push_static(o.as_slice(), v);
        let dy =
            |b: &mut Builder, o: Oid, (v, d): (Value, Dynamic)| b.push_dynamic(o.as_slice(), v, d);

        st(&mut b, col(1), Value::Integer(i64::from(i)));
        st(&mut b, col(2), text(format!("TenGigabitEthernet1/0/{i}")));
        st(&mut b, col(3), Value::Integer(6));
        st(&mut b, col(4), Value::Integer(9216));
        st(&mut b, col(5), Value::Gauge32(u32::MAX));
        st(
            &mut b,
            col(6),
            Value::OctetString(vec![0x00, 0x1b, 0x21, 0x3c, (i >> 8) as u8, i as u8]),
        );
        st(&mut b, col(7), Value::Integer(1));
        st(&mut b, col(8), Value::Integer(if up { 1 } else { 2 }));
        st(&mut b, col(9), Value::TimeTicks(1_000 + i * 17));
        let base = i64v * 1_000_003;
        dy(&mut b, col(10), c32(base, octets));
        dy(&mut b, col(11), c32(base / 7, pkts));
        dy(&mut b, col(12), c32(base / 97, pkts / 50));
        dy(&mut b, col(13), c32(i64v, k));
        dy(&mut b, col(14), c32(i64v / 3, 0));
        dy(&mut b, col(15), c32(0, 0));
        dy(&mut b, col(16), c32(base * 3, octets * 2));
        dy(&mut b, col(17), c32(base / 5, pkts * 2));
        dy(&mut b, col(18), c32(base / 89, pkts / 40));
        dy(&mut b, col(19), c32(i64v * 2, k));
        dy(&mut b, col(20), c32(0, 0));
        st(&mut b, col(21), Value::Gauge32(0));
        st(&mut b, col(22), Value::ObjectId(Oid::new(&[0, 0])));

        st(&mut b, xcol(1), text(format!("Te1/0/{i}")));
        dy(&mut b, xcol(2), c32(base / 300, pkts / 100));
        dy(&mut b, xcol(3), c32(base / 200, pkts / 60));
        dy(&mut b, xcol(4), c32(base / 310, pkts / 120));
        dy(&mut b, xcol(5), c32(base / 210, pkts / 70));
        // HC counters start high so that they are past 2^32, as on a real long-lived port.
        let hc = (1u64 << 33) + base * 1_000;
        dy(&mut b, xcol(6), c64(hc, octets));
        dy(&mut b, xcol(7), c64(hc / 800, pkts));
        dy(&mut b, xcol(8), c64(hc / 300_000, pkts / 100));
        dy(&mut b, xcol(9), c64(hc / 200_000, pkts / 60));
        dy(&mut b, xcol(10), c64(hc * 3, octets * 2));
        dy(&mut b, xcol(11), c64(hc / 400, pkts * 2));
        dy(&mut b, xcol(12), c64(hc / 310_000, pkts / 120));
        dy(&mut b, xcol(13), c64(hc / 210_000, pkts / 70));
        st(&mut b, xcol(14), Value::Integer(1));
        st(&mut b, xcol(15), Value::Gauge32(10_000));
        st(&mut b, xcol(16), Value::Integer(2));
        st(&mut b, xcol(17), Value::Integer(1));
        st(&mut b, xcol(18), text(format!("uplink to rack {i}")));
        st(&mut b, xcol(19), Value::TimeTicks(0));
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Clock;

    #[test]
    fn shape() {
        let r = ifmib(48);
        assert_eq!(r.len(), 8 + 48 * (22 + 19));
        for i in 1..r.len() {
            assert!(r.oid(i - 1) < r.oid(i));
        }
        let hc = Oid::new(&IFX_ENTRY).join(&[6, 1]);
        let i = r.find(hc.as_slice()).unwrap_or(0);
        let a = r.value(i, Clock { elapsed_ms: 0 }).as_u64().unwrap_or(0);
        let b = r.value(i, Clock { elapsed_ms: 1000 }).as_u64().unwrap_or(0);
        assert!(b > a && a > u64::from(u32::MAX));
    }
}
