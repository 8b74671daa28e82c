//! PostgreSQL databases for tests: each test creates one with a random name on the server at
//! `ASSAY_TEST_POSTGRES_URL` (default: the local server every machine of the project runs, trust
//! auth) and drops it when done, so tests and runs never share state.

use sqlx::{Connection, PgConnection};

/// The server tests create their databases on, as a URL of its maintenance database.
fn server_url() -> String {
    std::env::var("ASSAY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database that exists for the life of this value.
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates an empty database with a random name.
    pub async fn create() -> TestDatabase {
        let name = format!("assay_test_{}", uuid::Uuid::new_v4().simple());
        let server = server_url();
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("connect to PostgreSQL at {server}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        // The same server and options (a socket `host`, `sslmode`), another database.
        let mut url = url::Url::parse(&server).expect("ASSAY_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        let url = url.to_string();
        TestDatabase { name, url }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    /// Drops the database, closing whatever connections are still open on it. Drop cannot wait
    /// on the test's runtime, so it runs on a thread and a runtime of its own.
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&server_url()).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}
