use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_while_the_process_is_up() {
    let app = spawn_app().await;
    app.store.set_down(true);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readyz_is_503_while_the_store_or_database_is_down_and_recovers() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.store.set_down(true);
    let resp = app.get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["failing"], "store");
    app.store.set_down(false);
    app.users.set_down(true);
    assert_eq!(app.get("/readyz").await.status(), 503);
    app.users.set_down(false);
    assert_eq!(app.get("/readyz").await.status(), 200);
}
