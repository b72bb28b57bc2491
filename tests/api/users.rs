//! One conformance suite for the user repository, run against SQLite,
//! PostgreSQL and MySQL/MariaDB (see `backend_conformance`).

use phoneauth::domain::{Mobile, MobilePolicy};
use phoneauth::users::{self, NewUser, PoolSettings, RepoError, SharedUserRepo, UserChange};
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
    let repo = users::connect(url, PoolSettings::default())
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
            let mut user = new_user(&racer);
            user.name = phoneauth::secret::random_hex(8);
            tokio::spawn(async move { repo.create(&user).await })
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
    account_changes(&repo, &policy).await;
    imports(&repo, &policy).await;
    records(&repo).await;
    repo.ping().await.expect("ping");
}

/// Imported users keep their ids; a row that breaks a constraint is left
/// out and the rest go in; new users get ids after the imported ones.
async fn imports(repo: &SharedUserRepo, policy: &MobilePolicy) {
    use phoneauth::users::ImportedUser;
    let base = 5_000_000 + i64::from(rand_u16()) * 100;
    let user = |id: i64, name: &str| ImportedUser {
        id,
        mobile: Mobile::parse(&fresh_mobile(), policy).expect("mobile"),
        name: name.to_owned(),
        password_hash: "pbkdf2:sha256:150000$salt$00".into(),
        created_at: OffsetDateTime::from_unix_timestamp(1_525_168_800).expect("time"),
    };
    let tag = phoneauth::secret::random_hex(4);
    let batch: Vec<ImportedUser> = (0..3)
        .map(|i| user(base + i, &format!("old-{tag}-{i}")))
        .collect();
    assert_eq!(repo.import(&batch).await.expect("import"), 3);
    assert_eq!(repo.import(&batch).await.expect("again"), 0, "idempotent");
    let mut found = repo
        .by_ids(&[base, base + 1, base + 2, base + 3])
        .await
        .expect("by ids");
    found.sort_by_key(|u| u.id);
    let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
    assert_eq!(ids, vec![base, base + 1, base + 2]);
    assert_eq!(found[1].mobile, batch[1].mobile);
    assert_eq!(found[1].name, batch[1].name);
    assert_eq!(found[1].password_hash, batch[1].password_hash);
    assert_eq!(found[1].created_at.unix_timestamp(), 1_525_168_800);

    // A taken number, a taken name and a taken id are each left out.
    let mut taken_number = user(base + 10, &format!("x-{tag}"));
    taken_number.mobile = batch[0].mobile.clone();
    let taken_name = user(base + 11, &batch[0].name);
    let taken_id = user(base, &format!("y-{tag}"));
    let fine = user(base + 12, &format!("z-{tag}"));
    let mixed = [taken_number, taken_name, taken_id, fine.clone()];
    assert_eq!(repo.import(&mixed).await.expect("mixed"), 1);
    assert_eq!(
        repo.by_id(base + 12).await.expect("read").map(|u| u.mobile),
        Some(fine.mobile)
    );
    assert!(repo.by_id(base + 10).await.expect("read").is_none());

    // The next registration's id comes after the imported ones.
    let next = repo
        .create(&new_user(
            &Mobile::parse(&fresh_mobile(), policy).expect("mobile"),
        ))
        .await
        .expect("create after import");
    assert!(next.id > base + 12, "{} after {}", next.id, base + 12);
}

fn rand_u16() -> u16 {
    u16::from_str_radix(&phoneauth::secret::random_hex(2), 16).expect("hex")
}

/// What the database keeps besides users: lists, audit events, token keys
/// and the webhook outbox, the same in every database.
async fn records(repo: &SharedUserRepo) {
    use phoneauth::users::{AuditEvent, AuditQuery, ListEntry, OutboxMessage, TokenKey};
    let entry = ListEntry {
        list: "block".into(),
        kind: "prefix".into(),
        value: format!("86138{}", rand_u16()),
    };
    let (count, seq) = repo.list_signature().await.expect("signature");
    assert!(repo.add_list_entry(&entry, 1).await.expect("add"));
    assert!(!repo.add_list_entry(&entry, 2).await.expect("add again"));
    let (count2, seq2) = repo.list_signature().await.expect("signature");
    assert_eq!(count2, count + 1);
    assert!(seq2 > seq);
    assert!(repo.list_entries().await.expect("entries").contains(&entry));
    assert!(repo.remove_list_entry(&entry).await.expect("remove"));
    assert!(!repo.remove_list_entry(&entry).await.expect("remove again"));

    let user_id = i64::from(rand_u16()) + 900_000_000;
    let event = |name: &str, at_ms: i64| AuditEvent {
        at_ms,
        event: name.into(),
        user_id: Some(user_id),
        mobile: Some("138****5678".into()),
        country: Some("CN".into()),
        detail: Some("d".into()),
        ..AuditEvent::default()
    };
    let now = OffsetDateTime::now_utc().unix_timestamp() * 1000;
    for (name, at) in [
        ("logged_in", now - 10),
        ("login_failed", now - 5),
        ("logged_in", now),
    ] {
        repo.append_audit(&event(name, at)).await.expect("append");
    }
    let query = |user: Option<i64>, event: Option<&str>| AuditQuery {
        since_ms: now - 60_000,
        user_id: user,
        event: event.map(str::to_owned),
        limit: 10,
    };
    let mine = repo
        .audit(&query(Some(user_id), None))
        .await
        .expect("audit");
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[0].at_ms, now, "newest first");
    let logins = repo
        .audit(&query(Some(user_id), Some("logged_in")))
        .await
        .expect("audit");
    assert_eq!(logins.len(), 2);
    assert!(
        repo.audit(&query(None, Some("logged_in")))
            .await
            .expect("audit")
            .len()
            >= 2
    );
    let counts = repo.audit_counts(now - 60_000).await.expect("counts");
    assert!(
        counts
            .iter()
            .any(|c| c.event == "login_failed" && c.count >= 1)
    );

    let key = TokenKey {
        kid: phoneauth::secret::random_hex(8),
        sealed: "sealed".into(),
        created_ms: now,
    };
    repo.add_token_key(&key).await.expect("add key");
    assert!(repo.token_keys().await.expect("keys").contains(&key));

    // The outbox: a due message is claimed once until its lease ends.
    let msg = OutboxMessage {
        id: 0,
        msg_id: format!("msg_{}", phoneauth::secret::random_hex(8)),
        endpoint: "http://127.0.0.1:9/hook".into(),
        event: "logged_in".into(),
        payload: "{}".into(),
        created_ms: now,
        attempts: 0,
    };
    // Far in the future, so no other test's messages are due with it.
    let t = now + 10 * 365 * 86_400_000;
    repo.enqueue_webhook(&msg, t).await.expect("enqueue");
    assert!(
        repo.claim_webhooks(t - 1, 1000, 10)
            .await
            .expect("claim")
            .is_empty(),
        "not due"
    );
    let claimed = repo.claim_webhooks(t, 1000, 10).await.expect("claim");
    let mine: Vec<_> = claimed.iter().filter(|m| m.msg_id == msg.msg_id).collect();
    assert_eq!(mine.len(), 1);
    assert!(
        repo.claim_webhooks(t, 1000, 10)
            .await
            .expect("claim")
            .iter()
            .all(|m| m.msg_id != msg.msg_id),
        "leased"
    );
    repo.settle_webhook(mine[0].id, t + 5000, None)
        .await
        .expect("retry later");
    assert!(
        repo.claim_webhooks(t + 4999, 1000, 10)
            .await
            .expect("claim")
            .iter()
            .all(|m| m.msg_id != msg.msg_id)
    );
    let again = repo
        .claim_webhooks(t + 5000, 1000, 10)
        .await
        .expect("claim");
    let again: Vec<_> = again.iter().filter(|m| m.msg_id == msg.msg_id).collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    repo.settle_webhook(again[0].id, 0, Some(t + 5001))
        .await
        .expect("done");
    assert!(
        repo.claim_webhooks(t + 999_999, 1000, 10)
            .await
            .expect("claim")
            .iter()
            .all(|m| m.msg_id != msg.msg_id),
        "delivered"
    );
    assert!(repo.prune_audit(0).await.is_ok());
}

/// SPEC §9's changes: each one, its unique constraints, and a mobile change
/// racing a registration of the same number (exactly one wins).
async fn account_changes(repo: &SharedUserRepo, policy: &MobilePolicy) {
    let fresh = || Mobile::parse(&fresh_mobile(), policy).expect("mobile");
    let a = repo.create(&new_user(&fresh())).await.expect("create a");
    let b = repo.create(&new_user(&fresh())).await.expect("create b");

    let name = format!("name-{}", phoneauth::secret::random_hex(4));
    assert!(
        repo.update(a.id, UserChange::Name(&name))
            .await
            .expect("rename")
    );
    assert!(matches!(
        repo.update(b.id, UserChange::Name(&name)).await,
        Err(RepoError::NameTaken)
    ));
    assert!(
        !repo
            .update(i64::MAX, UserChange::Name("nobody"))
            .await
            .expect("no row")
    );

    assert!(
        repo.update(a.id, UserChange::Password("$new"))
            .await
            .expect("password")
    );
    assert_eq!(
        repo.by_id(a.id).await.expect("a").expect("a").password_hash,
        "$new"
    );

    // A mobile change: the default name follows the number.
    let moved = fresh();
    let (old, new) = (b.mobile.display(), moved.display());
    let change = UserChange::Mobile {
        mobile: &moved,
        rename: Some((&old, &new)),
    };
    assert!(repo.update(b.id, change).await.expect("move"));
    let b2 = repo.by_id(b.id).await.expect("b").expect("b");
    assert_eq!(
        (b2.mobile.clone(), b2.name.clone()),
        (moved.clone(), new.clone())
    );
    let onto_a = UserChange::Mobile {
        mobile: &a.mobile,
        rename: None,
    };
    assert!(matches!(
        repo.update(b.id, onto_a).await,
        Err(RepoError::Duplicate)
    ));

    let identity = UserChange::Identity {
        real_name: "张三",
        sealed: "sealed",
        masked: "110105********002X",
    };
    assert!(repo.update(a.id, identity).await.expect("identity"));
    assert!(!repo.update(a.id, identity).await.expect("only once"));
    let a2 = repo.by_id(a.id).await.expect("a").expect("a");
    assert_eq!(a2.real_name.as_deref(), Some("张三"));
    assert_eq!(a2.id_card_masked.as_deref(), Some("110105********002X"));

    assert!(
        repo.update(a.id, UserChange::Avatar(Some("x.png")))
            .await
            .expect("avatar")
    );
    assert!(
        repo.update(a.id, UserChange::Avatar(None))
            .await
            .expect("no avatar")
    );

    // Deletion returns the row and frees the number and the name.
    let gone = repo.delete(a.id).await.expect("delete").expect("was there");
    assert_eq!(gone.id, a.id);
    assert!(repo.delete(a.id).await.expect("delete again").is_none());
    assert!(repo.by_mobile(&a.mobile).await.expect("lookup").is_none());
    let mut again = new_user(&a.mobile);
    again.name = name;
    assert!(
        repo.create(&again).await.is_ok(),
        "number and name are free again"
    );

    // A mobile change racing a registration of the number.
    for _ in 0..10 {
        let target = fresh();
        let mut newcomer = new_user(&target);
        newcomer.name = phoneauth::secret::random_hex(8);
        let change = UserChange::Mobile {
            mobile: &target,
            rename: None,
        };
        let (created, moved) = tokio::join!(repo.create(&newcomer), repo.update(b.id, change));
        let wins = usize::from(created.is_ok()) + usize::from(matches!(moved, Ok(true)));
        assert_eq!(
            wins,
            1,
            "created: {:?}, moved: {:?}",
            created.map(|u| u.id),
            moved
        );
        assert!(matches!(created, Ok(_) | Err(RepoError::Duplicate)));
        assert!(matches!(moved, Ok(true) | Err(RepoError::Duplicate)));
    }
}

/// An imported user (here inserted as `phoneauth import-users` will) logs in
/// with the old site's password; the hash then becomes argon2id.
#[tokio::test]
async fn a_werkzeug_hash_logs_in_and_is_replaced_by_argon2id() {
    use phoneauth::users::UserRepo;
    let app = crate::helpers::spawn_app().await;
    let raw = fresh_mobile();
    let m = Mobile::parse(&raw, &MobilePolicy::default()).expect("mobile");
    // Made by werkzeug 0.16.1, the tutorial sites' era, for "correct horse".
    let werkzeug = "pbkdf2:sha256:150000$2KIA59Su$dc28c153b02a85e78bedc8e6b3ce1b4ba9d9dcfd3f984fca192eed4c3ff3c08f";
    let mut user = new_user(&m);
    user.password_hash = werkzeug.into();
    let created = app.users.create(&user).await.expect("imported");
    assert_eq!(app.login(&raw, "not the password").await["errno"], "4004");
    assert_eq!(app.login(&raw, "correct horse").await["errno"], "0");
    let after = app
        .users
        .by_id(created.id)
        .await
        .expect("read")
        .expect("user");
    assert!(
        after.password_hash.starts_with("$argon2id$"),
        "{}",
        after.password_hash
    );
    assert_eq!(
        app.login(&raw, "correct horse").await["errno"],
        "0",
        "the new hash works"
    );
    assert_eq!(app.login(&raw, "not the password").await["errno"], "4004");
}
