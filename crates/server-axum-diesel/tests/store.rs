//! The axum router over the deadpool-diesel store, on SQLite, driven with `oneshot`: the diesel
//! layer answers the shared table of cases exactly as the sqlx one does (the router itself is
//! tested in `server-axum`).

#[path = "../../server-axum/tests/oneshot/mod.rs"]
mod oneshot;

#[tokio::test]
async fn answers_the_shared_cases() {
    let (_dir, database) = harness::native::sqlite();
    let store = server_axum_diesel::connect(&database, 2)
        .await
        .expect("SQLite opens");
    let app = server_axum::app(store);
    harness::native::assert_answers("axum-diesel", &oneshot::answers(&app).await);
}
