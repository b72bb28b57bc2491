//! The store and user-repository conformance suites against the shared
//! backends: Redis single node and Cluster; SQLite, PostgreSQL and
//! MySQL/MariaDB.

use crate::backends::{
    fresh_mysql_database, fresh_pg_schema, fresh_prefix, mysql_url, postgres_url,
    redis_cluster_url, redis_store, redis_url,
};
use crate::helpers::TempDir;
use crate::store::{Harness, run_all};
use crate::users::run_user_suite;

#[tokio::test]
async fn the_redis_store_conforms() {
    let Some(url) = redis_url() else { return };
    run_all(&Harness::new(
        redis_store(&url, &fresh_prefix()).await,
        None,
    ))
    .await;
}

#[tokio::test]
async fn the_redis_cluster_store_conforms() {
    let Some(url) = redis_cluster_url() else {
        return;
    };
    run_all(&Harness::new(
        redis_store(&url, &fresh_prefix()).await,
        None,
    ))
    .await;
}

#[tokio::test]
async fn the_sqlite_user_repository_conforms() {
    let dir = TempDir::new();
    let url = format!("sqlite://{}", dir.0.join("users.db").display());
    run_user_suite(&url).await;
}

#[tokio::test]
async fn the_postgres_user_repository_conforms() {
    let Some(base) = postgres_url() else { return };
    run_user_suite(&fresh_pg_schema(&base).await).await;
}

#[tokio::test]
async fn the_mysql_user_repository_conforms() {
    let Some(base) = mysql_url() else { return };
    run_user_suite(&fresh_mysql_database(&base).await).await;
}
