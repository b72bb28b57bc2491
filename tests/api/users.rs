//! One conformance suite for the user repository, run against SQLite and
//! PostgreSQL (see `backend_conformance`).

use phoneauth::domain::{Mobile, MobilePolicy};
use phoneauth::users::{self, NewUser, PgSettings, RepoError, SharedUserRepo};
use time::OffsetDateTime;

use crate::helpers::fresh_mobile;

fn new_user(mobile: &Mobile) -> NewUser {
    NewUser {
        mobile: mobile.clone(),
        name: mobile.display(),
        password_hash: "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).expect("time"),
    }
}

async fn open(url: &str) -> SharedUserRepo {
    let repo = users::connect(url, PgSettings::default())
        .await
        .expect("connect");
    repo.migrate().await.expect("migrate");
    repo.migrate().await.expect("migrations are idempotent");
    repo
}

pub async fn run_user_suite(url: &str) {
    let repo = open(url).await;
    let policy = MobilePolicy::default();

    // Create, then find by mobile and by id.
    let raw = fresh_mobile();
    let m = Mobile::parse(&raw, &policy).expect("mobile");
    let created = repo.create(&new_user(&m)).await.expect("create");
    assert_eq!(created.mobile, m);
    assert_eq!(created.name, raw);
    assert!(!created.disabled);
    assert!(created.avatar_url.is_none());
    assert_eq!(created.created_at.unix_timestamp(), 1_700_000_000);
    let by_id = repo.by_id(created.id).await.expect("by id").expect("found");
    assert_eq!(by_id.mobile.e164(), format!("+86{raw}"), "stored as E.164");
    assert!(
        repo.by_id(created.id + 1_000_000)
            .await
            .expect("by id")
            .is_none()
    );

    // Other spellings of the number are the same user.
    for spelling in [format!("+86 {raw}"), format!("0086{raw}")] {
        let same = Mobile::parse(&spelling, &policy).expect("mobile");
        let found = repo.by_mobile(&same).await.expect("lookup").expect("found");
        assert_eq!(found.id, created.id);
        assert!(matches!(
            repo.create(&new_user(&same)).await,
            Err(RepoError::Duplicate)
        ));
    }
    let other = Mobile::parse(&fresh_mobile(), &policy).expect("mobile");
    assert!(repo.by_mobile(&other).await.expect("lookup").is_none());

    // Concurrent creates of one number: exactly one wins, the rest are Duplicate.
    let racer = Mobile::parse(&fresh_mobile(), &policy).expect("mobile");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (repo, racer) = (repo.clone(), racer.clone());
            tokio::spawn(async move { repo.create(&new_user(&racer)).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(RepoError::Duplicate) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    repo.ping().await.expect("ping");
}
