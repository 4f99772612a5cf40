use super::*;

fn ms(text: &str) -> i64 {
    text.parse::<Timestamp>().unwrap().as_millisecond()
}

fn cron(expression: &str, timezone: &str) -> Compiled {
    Trigger::Cron {
        expression: expression.into(),
        timezone: timezone.into(),
    }
    .compile(ms("2026-01-01T00:00:00Z"), 0, 60)
    .unwrap()
}

fn shown(c: &Compiled, from: &str, count: usize) -> Vec<String> {
    c.upcoming(ms(from), count)
        .into_iter()
        .map(|t| show(t, &TimeZone::get("Europe/Berlin").unwrap()))
        .collect()
}

#[test]
fn a_fixed_time_in_the_spring_forward_gap_runs_right_after_it() {
    let c = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        shown(&c, "2026-03-27T12:00:00Z", 3),
        [
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00"
        ]
    );
}

#[test]
fn a_fixed_time_in_the_fall_back_overlap_runs_once() {
    let c = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        shown(&c, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
}

#[test]
fn an_hourly_pattern_follows_the_real_hours_across_both_changes() {
    let c = cron("0 * * * *", "Europe/Berlin");
    // Local days of 23 and 25 hours.
    let spring = c.between(
        ms("2026-03-28T23:00:00Z") - 1,
        ms("2026-03-29T21:59:59Z"),
        0,
    );
    assert_eq!(spring.0, 23);
    let fall = c.between(
        ms("2026-10-24T22:00:00Z") - 1,
        ms("2026-10-25T22:59:59Z"),
        0,
    );
    assert_eq!(fall.0, 25);
}

#[test]
fn intervals_count_slots_arithmetically_and_keep_the_latest() {
    let c = Trigger::Interval {
        every_secs: 3600,
        start_at: Some("2026-12-01T10:00:00Z".into()),
    }
    .compile(ms("2026-12-01T09:00:00Z"), 0, 60)
    .unwrap();
    assert_eq!(
        c.next_after(ms("2026-12-01T09:00:00Z")),
        Some(ms("2026-12-01T10:00:00Z"))
    );
    assert_eq!(
        c.next_after(ms("2026-12-01T10:00:00Z")),
        Some(ms("2026-12-01T11:00:00Z"))
    );
    let (count, kept) = c.between(ms("2026-12-01T10:30:00Z"), ms("2026-12-01T13:30:00Z"), 2);
    assert_eq!(count, 3);
    assert_eq!(
        kept,
        [ms("2026-12-01T12:00:00Z"), ms("2026-12-01T13:00:00Z")]
    );
    let (count, kept) = c.between(ms("2026-12-01T13:30:00Z"), ms("2026-12-01T13:40:00Z"), 5);
    assert_eq!((count, kept.len()), (0, 0));
    let days = c.between(ms("2026-12-01T10:00:00Z"), ms("2036-12-01T10:00:00Z"), 1);
    assert_eq!(days.0, 87_672);
}

#[test]
fn bad_triggers_are_refused_with_what_to_do() {
    let now = ms("2026-12-01T12:00:00Z");
    let refused = |t: Trigger| t.compile(now, now, 60).unwrap_err().0;
    assert!(
        refused(Trigger::Once {
            at: "2026-12-01T11:59:59Z".into()
        })
        .contains("past")
    );
    assert!(
        refused(Trigger::Once {
            at: "tomorrow".into()
        })
        .contains("RFC 3339")
    );
    assert!(
        refused(Trigger::Once {
            at: "2026-12-24T18:00:00".into()
        })
        .contains("offset")
    );
    assert!(
        refused(Trigger::Interval {
            every_secs: 59,
            start_at: None
        })
        .contains("min_interval_secs")
    );
    assert!(
        refused(Trigger::Interval {
            every_secs: -5,
            start_at: None
        })
        .contains("below")
    );
    for bad in [
        "* * * *",
        "61 * * * *",
        "* * * * * *",
        "0 0 31 2 *",
        "nonsense",
        "",
        "@every 5m",
    ] {
        let message = refused(Trigger::Cron {
            expression: bad.into(),
            timezone: "UTC".into(),
        });
        assert!(!message.is_empty(), "{bad}");
    }
    for zone in ["Mars/Olympus", "", "+01:00", "Europe/../../etc/passwd"] {
        let message = refused(Trigger::Cron {
            expression: "0 * * * *".into(),
            timezone: zone.into(),
        });
        assert!(message.contains("IANA"), "{zone}: {message}");
    }
    assert!(
        Trigger::Once {
            at: "2026-12-01T13:00:00+01:00".into()
        }
        .compile(now, now, 60)
        .is_ok()
    );
    assert!(
        Trigger::Cron {
            expression: "@hourly".into(),
            timezone: "America/New_York".into()
        }
        .compile(now, now, 60)
        .is_ok()
    );
}

#[test]
fn jitter_is_fixed_per_slot_and_within_bounds() {
    assert_eq!(jitter_ms("s", 1, 0), 0);
    let all: Vec<i64> = (0..200).map(|slot| jitter_ms("s", slot, 30)).collect();
    assert!(all.iter().all(|j| (0..30_000).contains(j)));
    assert!(all.iter().any(|j| *j != all[0]));
    assert_eq!(jitter_ms("s", 7, 30), jitter_ms("s", 7, 30));
}
