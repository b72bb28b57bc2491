//! One conformance suite for the key-value port, run against every
//! implementation. Time moves with a manual clock where the backend takes one,
//! and by really waiting where the backend keeps its own clock.

use std::sync::Arc;
use std::time::Duration;

use phoneauth::clock::ManualClock;
use phoneauth::store::{CodeCheck, CodeClaim, IndexAdd, MemoryStore, SharedStore};

pub struct Harness {
    pub store: SharedStore,
    pub clock: Option<Arc<ManualClock>>,
    prefix: String,
}

impl Harness {
    pub fn new(store: SharedStore, clock: Option<Arc<ManualClock>>) -> Self {
        Self {
            store,
            clock,
            prefix: format!("conf:{}:", phoneauth::secret::random_hex(6)),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn advance(&self, d: Duration) {
        match &self.clock {
            Some(c) => c.advance(d),
            None => tokio::time::sleep(d).await,
        }
    }
}

const TTL: Duration = Duration::from_millis(1_500);

pub async fn values_live_for_their_ttl(h: &Harness) {
    let k = h.key("ttl");
    h.store.set(&k, b"v1", TTL).await.expect("set");
    assert_eq!(
        h.store.get(&k).await.expect("get").as_deref(),
        Some(&b"v1"[..])
    );
    h.store.set(&k, b"v2", TTL).await.expect("replace");
    assert_eq!(
        h.store.get(&k).await.expect("get").as_deref(),
        Some(&b"v2"[..])
    );
    h.advance(TTL + Duration::from_millis(100)).await;
    assert_eq!(h.store.get(&k).await.expect("get"), None, "expired");
}

pub async fn take_returns_a_value_once(h: &Harness) {
    let k = h.key("take");
    h.store.set(&k, b"v", TTL).await.expect("set");
    assert_eq!(
        h.store.take(&k).await.expect("take").as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(h.store.take(&k).await.expect("take"), None);
    assert_eq!(h.store.take(&h.key("never")).await.expect("take"), None);
}

pub async fn concurrent_takes_let_one_caller_win(h: &Harness) {
    let k = h.key("race");
    h.store
        .set(&k, b"v", Duration::from_secs(30))
        .await
        .expect("set");
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (s, k) = (h.store.clone(), k.clone());
            tokio::spawn(async move { s.take(&k).await.expect("take").is_some() })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1);
}

pub async fn set_nx_keeps_the_first_value_and_reports_its_ttl(h: &Harness) {
    let k = h.key("nx");
    assert_eq!(
        h.store
            .set_nx(&k, b"a", Duration::from_secs(60))
            .await
            .expect("nx"),
        None
    );
    let left = h
        .store
        .set_nx(&k, b"b", Duration::from_secs(60))
        .await
        .expect("nx")
        .expect("exists");
    assert!(
        left > Duration::from_secs(58) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert_eq!(
        h.store.get(&k).await.expect("get").as_deref(),
        Some(&b"a"[..])
    );
    h.store.delete(&k).await.expect("delete");
    assert_eq!(h.store.set_nx(&k, b"c", TTL).await.expect("nx"), None);
}

pub async fn window_counters_count_and_reset(h: &Harness) {
    let k = h.key("ctr");
    for n in 1..=3 {
        let c = h.store.incr_window(&k, TTL).await.expect("incr");
        assert_eq!(c.count, n);
        assert!(c.resets_in <= TTL && c.resets_in > Duration::ZERO);
    }
    h.store.decr(&k).await.expect("decr");
    assert_eq!(h.store.peek_counter(&k).await.expect("peek").count, 2);
    h.advance(TTL + Duration::from_millis(100)).await;
    assert_eq!(h.store.peek_counter(&k).await.expect("peek").count, 0);
    assert_eq!(
        h.store.incr_window(&k, TTL).await.expect("incr").count,
        1,
        "a new window"
    );
    h.store
        .decr(&h.key("absent"))
        .await
        .expect("decr of nothing");
    assert_eq!(
        h.store
            .peek_counter(&h.key("absent"))
            .await
            .expect("peek")
            .count,
        0
    );
}

pub async fn codes_match_once_and_run_out_of_guesses(h: &Harness) {
    let k = h.key("code");
    let mac = [7u8; 32];
    let wrong = [8u8; 32];
    assert_eq!(
        h.store.verify_code(&k, &mac, 3).await.expect("verify"),
        CodeCheck::Missing
    );
    h.store.put_code(&k, &mac, TTL).await.expect("put");
    assert_eq!(
        h.store.verify_code(&k, &wrong, 3).await.expect("v"),
        CodeCheck::Wrong { remaining: 2 }
    );
    assert_eq!(
        h.store.verify_code(&k, &mac, 3).await.expect("v"),
        CodeCheck::Match
    );
    assert_eq!(
        h.store.verify_code(&k, &mac, 3).await.expect("v"),
        CodeCheck::Missing,
        "single use"
    );

    h.store.put_code(&k, &mac, TTL).await.expect("put");
    for remaining in [2, 1, 0] {
        assert_eq!(
            h.store.verify_code(&k, &wrong, 3).await.expect("v"),
            CodeCheck::Wrong { remaining }
        );
    }
    assert_eq!(
        h.store.verify_code(&k, &mac, 3).await.expect("v"),
        CodeCheck::Missing,
        "withdrawn"
    );

    h.store.put_code(&k, &mac, TTL).await.expect("put");
    h.store.verify_code(&k, &wrong, 3).await.expect("v");
    h.store
        .put_code(&k, &mac, TTL)
        .await
        .expect("a new code resets the guesses");
    assert_eq!(
        h.store.verify_code(&k, &wrong, 3).await.expect("v"),
        CodeCheck::Wrong { remaining: 2 }
    );
    h.advance(TTL + Duration::from_millis(100)).await;
    assert_eq!(
        h.store.verify_code(&k, &mac, 3).await.expect("v"),
        CodeCheck::Missing,
        "expired"
    );
}

pub async fn concurrent_right_guesses_match_once(h: &Harness) {
    let k = h.key("code-race");
    let mac = [9u8; 32];
    h.store
        .put_code(&k, &mac, Duration::from_secs(30))
        .await
        .expect("put");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (s, k) = (h.store.clone(), k.clone());
            tokio::spawn(async move {
                s.verify_code(&k, &mac, 5).await.expect("verify") == CodeCheck::Match
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.expect("task"));
    }
    assert_eq!(wins, 1);
}

pub async fn indexes_keep_the_newest_and_hand_back_the_oldest(h: &Harness) {
    let k = h.key("index");
    let add = |member| IndexAdd {
        member,
        max: 3,
        ttl: TTL,
    };
    for (i, m) in ["a", "b", "c"].iter().enumerate() {
        let evicted = h.store.index_add(&k, add(m)).await.expect("add");
        assert!(evicted.is_empty(), "nothing over the cap after {i}");
        // Distinct server-clock scores on Redis.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Re-adding moves a member to the newest place.
    assert!(
        h.store
            .index_add(&k, add("a"))
            .await
            .expect("re-add")
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    let evicted = h.store.index_add(&k, add("d")).await.expect("add");
    assert_eq!(evicted, vec!["b".to_owned()]);
    assert_eq!(
        h.store.index_members(&k).await.expect("members"),
        ["c", "a", "d"]
    );
    h.store.index_remove(&k, "a").await.expect("remove");
    assert_eq!(
        h.store.index_members(&k).await.expect("members"),
        ["c", "d"]
    );
    h.advance(TTL + Duration::from_millis(100)).await;
    assert!(
        h.store.index_members(&k).await.expect("members").is_empty(),
        "expired"
    );
}

pub async fn a_claimed_code_is_held_then_released_or_lost_with_its_lease(h: &Harness) {
    let k = h.key("claim");
    let lease = Duration::from_millis(1_200);
    let claim = |candidate| CodeClaim {
        candidate,
        holder: b"holder-1",
        max_guesses: 5,
        lease,
    };
    h.store
        .put_code(&k, b"right", Duration::from_secs(60))
        .await
        .expect("put");
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"wrong"))
            .await
            .expect("claim"),
        CodeCheck::Wrong { remaining: 4 }
    );
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"right"))
            .await
            .expect("claim"),
        CodeCheck::Match
    );
    // Held: missing to everyone, for a claim or a plain check.
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"right"))
            .await
            .expect("claim"),
        CodeCheck::Missing
    );
    assert_eq!(
        h.store.verify_code(&k, b"right", 5).await.expect("verify"),
        CodeCheck::Missing
    );
    // Only its holder can end a hold; then the same code works again.
    h.store
        .release_code(&k, b"someone else")
        .await
        .expect("release");
    assert_eq!(
        h.store.verify_code(&k, b"right", 5).await.expect("verify"),
        CodeCheck::Missing
    );
    h.store
        .release_code(&k, b"holder-1")
        .await
        .expect("release");
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"right"))
            .await
            .expect("claim"),
        CodeCheck::Match
    );
    // A holder that never comes back loses it when the lease ends.
    h.advance(lease + Duration::from_millis(200)).await;
    assert_eq!(
        h.store.verify_code(&k, b"right", 5).await.expect("verify"),
        CodeCheck::Match
    );
    assert_eq!(
        h.store.verify_code(&k, b"right", 5).await.expect("verify"),
        CodeCheck::Missing,
        "consumed"
    );
    // A right guess held and released costs no guess: four wrong guesses,
    // then a held-and-released right one, and the code still works.
    h.store
        .put_code(&k, b"right", Duration::from_secs(60))
        .await
        .expect("put");
    for remaining in (1..=4).rev() {
        assert_eq!(
            h.store
                .claim_code(&k, claim(b"wrong"))
                .await
                .expect("claim"),
            CodeCheck::Wrong { remaining }
        );
    }
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"right"))
            .await
            .expect("claim"),
        CodeCheck::Match
    );
    h.store
        .release_code(&k, b"holder-1")
        .await
        .expect("release");
    assert_eq!(
        h.store
            .claim_code(&k, claim(b"right"))
            .await
            .expect("claim"),
        CodeCheck::Match,
        "the right code still works after four wrong guesses and a release"
    );
    // While held, a plain check cannot consume it either.
    assert_eq!(
        h.store.verify_code(&k, b"right", 5).await.expect("verify"),
        CodeCheck::Missing
    );
}

pub async fn run_all(h: &Harness) {
    a_claimed_code_is_held_then_released_or_lost_with_its_lease(h).await;
    indexes_keep_the_newest_and_hand_back_the_oldest(h).await;
    values_live_for_their_ttl(h).await;
    take_returns_a_value_once(h).await;
    concurrent_takes_let_one_caller_win(h).await;
    set_nx_keeps_the_first_value_and_reports_its_ttl(h).await;
    window_counters_count_and_reset(h).await;
    codes_match_once_and_run_out_of_guesses(h).await;
    concurrent_right_guesses_match_once(h).await;
    h.store.ping().await.expect("ping");
}

#[tokio::test]
async fn the_memory_store_conforms() {
    let clock = ManualClock::new();
    let store = MemoryStore::new(clock.clone(), 8 << 20);
    run_all(&Harness::new(store, Some(clock))).await;
}
