//! One conformance suite for the user repository, run against SQLite and
//! PostgreSQL (see `backend_conformance`).

use phoneauth::domain::{Mobile, MobilePolicy};
use phoneauth::users::{self, NewUser, PgSettings, RepoError, SharedUserRepo, UserChange};
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
    repo.ping().await.expect("ping");
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
