//! The store's one error type: what failed, on which table and rows, and the database's own
//! reason underneath. Business outcomes (duplicates, conflicts) are not errors: they are data in
//! the results.

use std::fmt;

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend this store has.
    #[error("unsupported database URL '{url}': {why}")]
    Url { url: String, why: &'static str },

    /// The database could not be opened or created.
    #[error("cannot open the {backend} database at '{url}': {source}")]
    Open {
        backend: Backend,
        /// With any password removed.
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// A migration failed; the database is left at the last version that applied.
    #[error("cannot migrate the {backend} database: {source}")]
    Migrate {
        backend: Backend,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A statement failed (the transaction it belonged to is rolled back, so nothing of it is
    /// stored).
    #[error("{table}: {doing}: {source}")]
    Db {
        table: &'static str,
        /// What the store was doing, with the ids or batch positions involved.
        doing: String,
        #[source]
        source: sqlx::Error,
    },

    /// The caller asked for something the store refuses before touching the database.
    #[error("{table}: {why}")]
    Invalid { table: &'static str, why: String },

    /// A stored value cannot be read back into its type (edited by hand, or a bug).
    #[error("{table}: row '{key}': {why}")]
    Corrupt {
        table: &'static str,
        key: String,
        why: String,
    },
}

impl StoreError {
    pub(crate) fn db(
        table: &'static str,
        doing: impl Into<String>,
    ) -> impl FnOnce(sqlx::Error) -> StoreError {
        let doing = doing.into();
        move |source| StoreError::Db {
            table,
            doing,
            source,
        }
    }
}

/// The URL as it may be shown in an error or a log: without a password.
pub fn redact_url(url: &str) -> String {
    redact(url)
}

pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                url.to_string()
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("/var/lib/wabill.db"), "/var/lib/wabill.db");
    }
}
