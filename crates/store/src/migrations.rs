//! The schema migrations of each backend, embedded in the binary at build time (the SQL files
//! under `crates/store/migrations/{sqlite,postgres}/`), and run by sqlx's migrator on open.
//!
//! They are embedded by hand rather than with `sqlx::migrate!` so that the crate needs no sqlx
//! macros (and no database, nor migration directory, at build or run time). To add one: add
//! the file and a line below; never edit a released migration (sqlx checks their checksums).

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

type Source = &'static [(i64, &'static str, &'static str)];

pub(crate) const SQLITE: Source = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "service",
        include_str!("../migrations/sqlite/0002_service.sql"),
    ),
    (
        3,
        "tenants",
        include_str!("../migrations/sqlite/0003_tenants.sql"),
    ),
    (
        4,
        "alerts",
        include_str!("../migrations/sqlite/0004_alerts.sql"),
    ),
    (
        5,
        "charge_agent",
        include_str!("../migrations/sqlite/0005_charge_agent.sql"),
    ),
    (
        6,
        "events_id_hash",
        include_str!("../migrations/sqlite/0006_events_id_hash.sql"),
    ),
    (
        7,
        "audit",
        include_str!("../migrations/sqlite/0007_audit.sql"),
    ),
    (
        8,
        "meta_messages",
        include_str!("../migrations/sqlite/0008_meta_messages.sql"),
    ),
    (
        9,
        "calls",
        include_str!("../migrations/sqlite/0009_calls.sql"),
    ),
];

pub(crate) const POSTGRES: Source = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "service",
        include_str!("../migrations/postgres/0002_service.sql"),
    ),
    (
        3,
        "tenants",
        include_str!("../migrations/postgres/0003_tenants.sql"),
    ),
    (
        4,
        "alerts",
        include_str!("../migrations/postgres/0004_alerts.sql"),
    ),
    (
        5,
        "charge_agent",
        include_str!("../migrations/postgres/0005_charge_agent.sql"),
    ),
    (
        6,
        "audit",
        include_str!("../migrations/postgres/0006_audit.sql"),
    ),
    (
        7,
        "meta_messages",
        include_str!("../migrations/postgres/0007_meta_messages.sql"),
    ),
    (
        8,
        "calls",
        include_str!("../migrations/postgres/0008_calls.sql"),
    ),
];

#[derive(Debug)]
struct Embedded(Source);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 'static>,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

pub(crate) async fn migrator(source: Source) -> Migrator {
    Migrator::new(Embedded(source))
        .await
        .expect("embedded migrations always resolve")
}
