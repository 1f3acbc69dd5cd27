//! The SQL every server runs: the migrations and, for the sqlx servers, one statement per
//! operation for each database. The diesel servers build the same statements with diesel's DSL
//! (see `diesel_store`).

/// The statements for one database.
#[derive(Debug)]
pub struct Statements {
    pub migrate: &'static str,
    pub insert: &'static str,
    pub select: &'static str,
    pub update: &'static str,
    pub delete: &'static str,
    pub list: &'static str,
    pub ping: &'static str,
}

pub const SQLITE: Statements = Statements {
    migrate: include_str!("../migrations/sqlite/0001_create_tasks.sql"),
    insert: "INSERT INTO tasks (name, done) VALUES (?1, ?2) RETURNING id, name, done",
    select: "SELECT id, name, done FROM tasks WHERE id = ?1",
    update: "UPDATE tasks SET name = ?1, done = ?2 WHERE id = ?3 RETURNING id, name, done",
    delete: "DELETE FROM tasks WHERE id = ?1",
    list: "SELECT id, name, done FROM tasks ORDER BY id LIMIT ?1 OFFSET ?2",
    ping: "SELECT 1",
};

pub const POSTGRES: Statements = Statements {
    migrate: include_str!("../migrations/postgres/0001_create_tasks.sql"),
    insert: "INSERT INTO tasks (name, done) VALUES ($1, $2) RETURNING id, name, done",
    select: "SELECT id, name, done FROM tasks WHERE id = $1",
    update: "UPDATE tasks SET name = $1, done = $2 WHERE id = $3 RETURNING id, name, done",
    delete: "DELETE FROM tasks WHERE id = $1",
    list: "SELECT id, name, done FROM tasks ORDER BY id LIMIT $1 OFFSET $2",
    ping: "SELECT 1",
};

/// Run on every new SQLite connection by every server: WAL journal, `synchronous=NORMAL`,
/// `busy_timeout=5000`, foreign keys on. The busy timeout comes first so that switching to WAL
/// waits for other connections instead of failing.
pub const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";
