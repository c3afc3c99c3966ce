//! The shared rate-limit statement gives the answers of the rule it implements
//! (`ee_core::rate_limit::Gcra`): a seeded random walk of requests against a few keys and
//! limits, one key or two per statement, compared step by step with the rule.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use ee_core::rate_limit::Gcra;
use ee_store::rate_limits;
use ee_store::testing::TestDatabase;

/// xorshift64*: a fixed sequence, so a failure can be replayed.
struct Walk(u64);

impl Walk {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

#[tokio::test]
async fn the_statement_answers_as_the_rule_does() {
    let test_db = TestDatabase::create().await.unwrap();
    let db = test_db.connect().await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let keys = [
        "credential:a",
        "credential:b",
        "client:127.0.0.1",
        "client:::1",
    ];
    let limits = [
        Gcra::per_minute(1),
        Gcra::per_minute(5),
        Gcra::per_minute(120),
    ];
    let mut model: HashMap<&str, i64> = HashMap::new();
    let mut walk = Walk(0x9E37_79B9_7F4A_7C15);
    let mut now = 1_700_000_000_000_i64;
    let (mut allowed, mut refused) = (0, 0);
    for step in 0..1_500 {
        now += [0, 1, 50, 500, 2_000, 30_000][walk.next(6) as usize];
        let first = walk.next(keys.len() as u64) as usize;
        let mut asked = vec![(keys[first], limits[walk.next(3) as usize])];
        if walk.next(2) == 0 {
            let second = (first + 1 + walk.next(keys.len() as u64 - 1) as usize) % keys.len();
            asked.push((keys[second], limits[walk.next(3) as usize]));
        }
        let got = rate_limits::take(&mut conn, now, &asked).await.unwrap();
        let expected: Vec<Option<i64>> = asked
            .iter()
            .map(
                |(key, limit)| match limit.decide(model.get(key).copied(), now) {
                    Ok(tat) => {
                        model.insert(key, tat);
                        None
                    }
                    Err(wait) => Some(wait),
                },
            )
            .collect();
        assert_eq!(got, expected, "step {step} at {now}: {asked:?}");
        for g in &got {
            if g.is_some() {
                refused += 1
            } else {
                allowed += 1
            }
        }
    }
    // The walk went both ways.
    assert!(
        allowed > 300 && refused > 300,
        "{allowed} allowed, {refused} refused"
    );
    // Keys back at their full burst are forgotten, the others kept.
    let purged = rate_limits::purge(&mut conn, now + 3_600_000)
        .await
        .unwrap();
    assert_eq!(purged, model.len() as u64);
    drop(conn);
    db.close().await;
    test_db.drop_database().await.unwrap();
}
