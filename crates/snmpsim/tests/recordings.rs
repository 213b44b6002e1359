//! Every snmpsim-data recording parses: how many records, how many lines were skipped.
//! By default the recordings up to 1 MB compressed (100 of 116, ~100 MB of text);
//! `LOOKOUT_SNMPSIM_PARSE_ALL=1` parses all of them (1.5 GB of text: use --release).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use lookout_snmpsim::{find_recordings, Recording};

#[test]
fn every_snmpsim_data_recording_parses() {
    let Some(data) = common::snmpsim_data() else {
        return;
    };
    let all = std::env::var("LOOKOUT_SNMPSIM_PARSE_ALL").as_deref() == Ok("1");
    let list = find_recordings(&data).unwrap();
    assert!(
        list.len() >= 100,
        "snmpsim-data has {} recordings",
        list.len()
    );
    let (mut files, mut lines, mut records, mut skipped, mut variations) = (0, 0, 0, 0, 0);
    let mut with_skips = Vec::new();
    for (name, path) in &list {
        let size = std::fs::metadata(path).unwrap().len();
        if !all && size > 1_000_000 {
            continue;
        }
        let r = Recording::load(path, name.clone()).unwrap();
        let s = &r.stats;
        assert!(s.records > 0, "{name}: no records");
        // Sorted and unique: what GETNEXT relies on.
        for i in 1..r.len() {
            assert!(r.oid(i - 1) < r.oid(i), "{name}: order at {i}");
        }
        // A recording is data from a real agent: a bad line is an exception, never the rule.
        assert!(s.skipped * 100 <= s.lines, "{name}: {s:?}");
        if s.skipped > 0 {
            with_skips.push(format!("{name}: {} of {}", s.skipped, s.lines));
        }
        files += 1;
        lines += s.lines;
        records += s.records;
        skipped += s.skipped;
        variations += s.variations;
    }
    eprintln!(
        "snmpsim-data: {files} of {} recordings parsed: {lines} lines, {records} records, {skipped} lines skipped, {variations} variation records; with skipped lines: {with_skips:?}",
        list.len()
    );
    assert!(files >= 100);
}
