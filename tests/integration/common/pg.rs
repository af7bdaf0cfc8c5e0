//! Scratch PostgreSQL databases on the server named by
//! FEDSYNC_TEST_DATABASE_URL: one per test, so tests run in parallel.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub const ENV: &str = "FEDSYNC_TEST_DATABASE_URL";

/// A database created for one test; `drop_database` removes it.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

/// The server URL when PostgreSQL tests are enabled.
pub fn server_url() -> Option<String> {
    std::env::var(ENV).ok().filter(|u| !u.is_empty())
}

impl TestDatabase {
    /// Creates an empty database; `None` when FEDSYNC_TEST_DATABASE_URL is
    /// unset (the caller then runs on SQLite only).
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = server_url()?;
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .expect("FEDSYNC_TEST_DATABASE_URL is reachable");
        let now = chrono::Utc::now().timestamp();
        // Leftovers of crashed runs older than an hour go first.
        let stale: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'fedsync_t_%'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        for (name,) in stale {
            let created: Option<i64> = name
                .strip_prefix("fedsync_t_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|t| t.parse().ok());
            if created.is_some_and(|t| now - t > 3600) {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
        let mut nonce = [0u8; 6];
        getrandom::fill(&mut nonce).unwrap();
        let name = format!("fedsync_t_{now}_{}", hex::encode(nonce));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("can create a test database");
        conn.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("FEDSYNC_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            url: url.to_string(),
            name,
            admin_url,
        })
    }

    pub async fn drop_database(self) {
        if let Ok(mut conn) = PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
            conn.close().await.ok();
        }
    }
}
