//! actix-web-native tests with `actix_web::test` (no socket): resources, default services,
//! extractors and the error responder, over a SQLite `SqlxDb`.

use actix_web::test;
use actix_web::web::Data;
use shared::sqlx_store::SqlxDb;

#[actix_web::test]
async fn answers_the_shared_cases() {
    let (_dir, database) = harness::native::sqlite();
    let db = SqlxDb::connect(&database, 2).await.expect("SQLite opens");
    let app = test::init_service(server_actix::app(Data::new(db))).await;
    let mut answers = Vec::new();
    for case in harness::native::cases() {
        let mut request = test::TestRequest::default()
            .method(case.method.parse().expect("a method"))
            .uri(case.uri)
            .insert_header(("host", "localhost"));
        if let Some(body) = case.json {
            request = request
                .insert_header(("content-type", "application/json"))
                .set_payload(body);
        }
        let response = test::call_service(&app, request.to_request()).await;
        let status = response.status().as_u16();
        answers.push((status, test::read_body(response).await.to_vec()));
    }
    harness::native::assert_answers("actix-sqlx", &answers);
}
