//! The stack registry: every server the workspace compares, listed once. Tests, benches, the
//! load generator's defaults, `xtask` and the report all take their list from here.
//!
//! Adding a stack is one crate and one line in [`for_each_stack!`]; test files get a module of
//! their tests per stack from [`stack_tests!`](crate::stack_tests).

/// Which row of the tables a stack fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One of the stacks this workspace exists to compare.
    Compared,
    /// A reference row that the compared stacks are judged against.
    Reference,
}

/// A known limitation of a stack's framework that the contract's tests would otherwise fail.
/// The test that meets one checks that the limitation is still there (so it notices a fix)
/// and passes; with `CONFORMANCE_STRICT` set, limitations excuse nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limitation {
    /// A client that never finishes its headers keeps its connection open.
    NoHeaderReadTimeout,
    /// Its HTTP parser itself refuses what the shared HTTP-layer rules refuse (raw non-ASCII
    /// targets, a missing or doubled `Host`, transfer codings other than `chunked`): the same
    /// 400, with the parser's empty body.
    ParserRefusesHeadRules,
    /// Requests its HTTP parser refuses (400, 414, 431) get an empty body, not the JSON error.
    ParserErrorsHaveEmptyBodies,
    /// It answers a request pipelined after one with `Connection: close`.
    PipelinesAfterClose,
    /// It sends `100 Continue` before refusing a request from its head (415, 413).
    ContinuesBeforeRefusing,
    /// A body that stalls within its first bytes holds its connection: the framework reads
    /// them before any application code runs, with no timeout.
    BodyStartUnbounded,
    /// It never closes an idle keep-alive connection.
    NoIdleTimeout,
    /// It refuses `Content-Length` with `Transfer-Encoding: chunked` (400, empty body), where
    /// the others let the transfer coding win and close the connection after.
    RefusesLengthWithChunked,
    /// Its parser answers a request target over 64 KiB with 400, not 414.
    LongUriIs400,
    /// Its JSON parser is not serde_json (which `shared` uses): a body's syntax or type error
    /// gets the same status and JSON error, in the parser's own sentence.
    OwnJsonSentences,
    /// Its HTTP parser takes a request line with two spaces between method and target.
    LenientRequestLine,
    /// Its pool waits ever longer between attempts to reconnect while the database is down
    /// (psycopg's: from 1 s, doubling), so it may serve again several seconds after the
    /// database is back, where the others take under 5.
    PoolBacksOff,
    /// Each worker process serves one connection at a time (gunicorn's sync workers): a
    /// request waits for a free worker behind every connection accepted before it, so
    /// `/sleep` holds its worker, a client slow to send its head holds one for up to the 10 s
    /// header timeout, open idle connections keep new clients waiting, and connections still
    /// waiting for a worker when the server is told to stop are closed unanswered.
    OneConnectionPerWorker,
    /// It closes every connection after one response (`connection: close`): gunicorn's sync
    /// workers keep no connection alive, which would hold a worker while it idles.
    NoKeepAlive,
    /// Its parser refuses a request line over 8,190 bytes (gunicorn's largest
    /// `limit_request_line`) with 414 and the JSON error, where the others take request
    /// targets up to 64 KiB.
    ShortRequestLine,
}

/// What a stack is written in, which says where its executable is (see [`Stack::executable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// A cargo package of the workspace, whose binary has the package's name.
    Rust,
    /// A console script of the Python project in `crates/python` (see [`crate::python`]).
    Python,
}

/// How many worker processes a stack's own documentation recommends for the cores it may
/// use: what the comparison starts it with unless told otherwise (`loadgen --workers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workers {
    /// One per core: each worker serves many connections at once (tokio's and actix's
    /// threads, uvicorn's processes).
    PerCore,
    /// gunicorn's sync workers serve one request each at a time; its documentation's
    /// starting point is (2 x cores) + 1.
    TwicePerCorePlusOne,
}

impl Workers {
    /// The workers for `cores` cores (at least one core counted).
    pub fn for_cores(self, cores: usize) -> usize {
        let cores = cores.max(1);
        match self {
            Self::PerCore => cores,
            Self::TwicePerCorePlusOne => 2 * cores + 1,
        }
    }
}

/// One stack: its executable (a cargo package's binary, or a Python console script, of the
/// same name), its name as printed in the start-up line, and what the tables should know
/// about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stack {
    /// The Rust identifier test modules use, e.g. `axum_sqlx`.
    pub module: &'static str,
    /// The cargo package and binary, e.g. `server-axum`, or the Python console script.
    pub package: &'static str,
    /// The name in the start-up line and in every record, e.g. `axum-sqlx`.
    pub name: &'static str,
    /// Framework and database layer, for people: `axum + sqlx`.
    pub title: &'static str,
    pub kind: Kind,
    pub limitations: &'static [Limitation],
    pub runtime: Runtime,
    pub workers: Workers,
}

/// Calls `$callback!` with the registry: one `module { ... }` entry per stack. The one place
/// the list of stacks is written; [`STACKS`] and the test modules are made from it.
#[macro_export]
macro_rules! for_each_stack {
    ($callback:path $(, $extra:tt)?) => {
        $callback! { $($extra)?
            axum_sqlx { package: "server-axum", name: "axum-sqlx", title: "axum + sqlx",
                kind: Compared, limitations: [] }
            axum_diesel { package: "server-axum-diesel", name: "axum-diesel", title: "axum + diesel",
                kind: Compared, limitations: [] }
            rocket_diesel { package: "server-rocket", name: "rocket-diesel", title: "Rocket + diesel",
                kind: Compared, limitations: [NoHeaderReadTimeout, ParserErrorsHaveEmptyBodies,
                    ContinuesBeforeRefusing, BodyStartUnbounded, NoIdleTimeout] }
            actix_sqlx { package: "server-actix", name: "actix-sqlx", title: "actix-web + sqlx",
                kind: Compared, limitations: [ParserRefusesHeadRules, ParserErrorsHaveEmptyBodies,
                    PipelinesAfterClose, RefusesLengthWithChunked, LongUriIs400] }
            hyper_raw { package: "server-hyper", name: "hyper-raw", title: "hyper, no framework",
                kind: Reference, limitations: [] }
            fastapi_sqlalchemy { package: "server-fastapi", name: "fastapi-sqlalchemy",
                title: "FastAPI + SQLAlchemy (uvicorn)", kind: Reference,
                limitations: [OwnJsonSentences, LenientRequestLine, RefusesLengthWithChunked],
                runtime: Python }
            blacksheep_sqlalchemy { package: "server-blacksheep", name: "blacksheep-sqlalchemy",
                title: "BlackSheep + SQLAlchemy (uvicorn)", kind: Reference,
                limitations: [OwnJsonSentences, LenientRequestLine, RefusesLengthWithChunked],
                runtime: Python }
            django_ninja { package: "server-django-ninja", name: "django-ninja",
                title: "django-ninja + Django ORM (uvicorn)", kind: Reference,
                limitations: [OwnJsonSentences, LenientRequestLine, RefusesLengthWithChunked,
                    PoolBacksOff],
                runtime: Python }
            flask_sqlalchemy { package: "server-flask", name: "flask-sqlalchemy",
                title: "Flask + SQLAlchemy (gunicorn sync)", kind: Reference,
                limitations: [OwnJsonSentences, RefusesLengthWithChunked, OneConnectionPerWorker,
                    NoKeepAlive, ShortRequestLine],
                runtime: Python, workers: TwicePerCorePlusOne }
        }
    };
}

macro_rules! registry {
    (@runtime) => { Runtime::Rust };
    (@runtime $runtime:ident) => { Runtime::$runtime };
    (@workers) => { Workers::PerCore };
    (@workers $workers:ident) => { Workers::$workers };
    ($($module:ident {
        package: $package:literal, name: $name:literal, title: $title:literal,
        kind: $kind:ident, limitations: [$($limitation:ident),*] $(, runtime: $runtime:ident)?
        $(, workers: $workers:ident)?
    })*) => {
        /// Every stack, in the order tests, benches and the comparison run them.
        pub const STACKS: &[Stack] = &[$(Stack {
            module: stringify!($module),
            package: $package,
            name: $name,
            title: $title,
            kind: Kind::$kind,
            limitations: &[$(Limitation::$limitation),*],
            runtime: registry!(@runtime $($runtime)?),
            workers: registry!(@workers $($workers)?),
        }),*];
    };
}

for_each_stack!(registry);

/// Writes a test module per stack: each line `name: function(args);` becomes a test `name`
/// in every module, calling the test file's `function(stack, args)` with that module's stack:
///
/// ```text
/// harness::stack_tests! {
///     conformance_sqlite: conformance(DbKind::Sqlite);
///     graceful_shutdown: graceful_shutdown();
/// }
/// ```
///
/// makes `axum_sqlx::conformance_sqlite`, `axum_diesel::conformance_sqlite`, ..., so
/// `cargo test -- axum_sqlx::` runs one stack's tests.
#[macro_export]
macro_rules! stack_tests {
    ($($tests:tt)*) => {
        $crate::for_each_stack!($crate::__stack_test_modules, { $($tests)* });
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stack_test_modules {
    ($tests:tt $($module:ident $entry:tt)*) => {
        $( $crate::__stack_test_module!($module $tests); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stack_test_module {
    ($module:ident { $($test:ident: $function:ident($($arg:expr),* $(,)?);)* }) => {
        mod $module {
            #[allow(unused_imports, reason = "the tests' arguments name the file's imports")]
            use super::*;

            $(
                #[test]
                fn $test() {
                    super::$function($crate::stacks::by_module(stringify!($module)) $(, $arg)*);
                }
            )*
        }
    };
}

/// The stack whose test module is `module`; panics on an unknown one (a bug in the macros).
pub fn by_module(module: &str) -> &'static Stack {
    STACKS
        .iter()
        .find(|s| s.module == module)
        .unwrap_or_else(|| panic!("no stack has the test module {module:?}"))
}

/// The stack called `wanted`, by stack name (`axum-sqlx`) or package (`server-axum`).
pub fn find(wanted: &str) -> Option<&'static Stack> {
    STACKS
        .iter()
        .find(|s| s.name == wanted || s.package == wanted)
}

/// The stacks named in `wanted` (stack or package names), in the order given; all of them
/// when `wanted` is empty. An unknown name is an error that lists the known ones.
pub fn select(wanted: &[String]) -> Result<Vec<&'static Stack>, String> {
    if wanted.is_empty() {
        return Ok(STACKS.iter().collect());
    }
    wanted
        .iter()
        .map(|w| {
            find(w).ok_or_else(|| {
                format!(
                    "unknown stack {w:?}; known: {}",
                    STACKS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// The stacks in the roles the published comparisons gave them, which the report compares
/// every stack against (each checked to be in the registry).
pub mod roles {
    /// The Python baseline of the published comparisons: FastAPI + SQLAlchemy.
    pub const PYTHON_BASELINE: &str = "fastapi-sqlalchemy";
    /// The framework-free Rust limit: hyper and the database drivers, no framework, no ORM.
    pub const RUST_LIMIT: &str = "hyper-raw";
    /// The stack the published todo benchmark's figures are for, against FastAPI.
    pub const PUBLISHED_TODO: &str = "axum-diesel";
    /// The pair the published `/async` and `/fibonacci` probes compared: axum, BlackSheep.
    pub const PROBE_PAIR: (&str, &str) = ("axum-sqlx", "blacksheep-sqlalchemy");
}

/// The variable that turns every known limitation back into a failure.
pub const STRICT_VAR: &str = "CONFORMANCE_STRICT";

impl Stack {
    /// The executable that runs this stack: a Rust stack's binary in `profile_dir` (say
    /// `target/debug`), a Python stack's console script in the reference environment, the
    /// same for every profile.
    pub fn executable(&self, profile_dir: &std::path::Path) -> std::path::PathBuf {
        match self.runtime {
            Runtime::Rust => profile_dir.join(self.package),
            Runtime::Python => crate::python::script(self.package),
        }
    }

    /// Whether this stack's framework has `limitation`.
    pub fn has(&self, limitation: Limitation) -> bool {
        self.limitations.contains(&limitation)
    }

    /// Whether a check is excused by `limitation`: the stack has it and `CONFORMANCE_STRICT`
    /// is not set.
    pub fn excused(&self, limitation: Limitation) -> bool {
        self.has(limitation) && std::env::var_os(STRICT_VAR).is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_consistent() {
        let mut seen = HashSet::new();
        for stack in STACKS {
            for key in [stack.module, stack.package, stack.name] {
                assert!(seen.insert(key), "{key} is used twice");
            }
            assert_eq!(stack.module, stack.name.replace('-', "_"), "{stack:?}");
            assert!(stack.package.starts_with("server-"), "{stack:?}");
        }
    }

    #[test]
    fn the_roles_are_registered_stacks() {
        let (subject, reference) = roles::PROBE_PAIR;
        for name in [
            roles::PYTHON_BASELINE,
            roles::RUST_LIMIT,
            roles::PUBLISHED_TODO,
            subject,
            reference,
        ] {
            assert!(find(name).is_some(), "{name} is not in the registry");
        }
        assert_eq!(
            find(roles::RUST_LIMIT).map(|s| s.kind),
            Some(Kind::Reference)
        );
        assert_eq!(
            find(roles::PYTHON_BASELINE).map(|s| s.kind),
            Some(Kind::Reference)
        );
    }

    #[test]
    fn workers_follow_each_servers_documentation() {
        assert_eq!(Workers::PerCore.for_cores(2), 2);
        assert_eq!(Workers::PerCore.for_cores(0), 1);
        assert_eq!(Workers::TwicePerCorePlusOne.for_cores(1), 3);
        assert_eq!(Workers::TwicePerCorePlusOne.for_cores(4), 9);
        let sync: Vec<&str> = STACKS
            .iter()
            .filter(|s| s.workers == Workers::TwicePerCorePlusOne)
            .map(|s| s.name)
            .collect();
        assert!(
            sync.iter()
                .all(|name| find(name).is_some_and(|s| s.has(Limitation::OneConnectionPerWorker))),
            "only a stack whose worker serves one connection at a time runs more workers than cores: {sync:?}"
        );
    }

    #[test]
    fn stacks_are_found_by_name_or_package() {
        assert_eq!(find("axum-sqlx").map(|s| s.package), Some("server-axum"));
        assert_eq!(find("server-rocket").map(|s| s.name), Some("rocket-diesel"));
        assert_eq!(find("nope"), None);
        assert_eq!(select(&[]).unwrap().len(), STACKS.len());
        let two = select(&["actix-sqlx".into(), "server-axum".into()]).unwrap();
        assert_eq!(
            two.iter().map(|s| s.name).collect::<Vec<_>>(),
            ["actix-sqlx", "axum-sqlx"]
        );
        let err = select(&["nope".into()]).unwrap_err();
        assert!(err.contains("axum-sqlx"), "{err}");
    }

    #[test]
    fn limitations_are_excused_unless_strict() {
        let rocket = find("rocket-diesel").unwrap();
        assert!(rocket.has(Limitation::NoHeaderReadTimeout));
        let axum = find("axum-sqlx").unwrap();
        assert!(!axum.has(Limitation::NoHeaderReadTimeout));
        assert!(!axum.excused(Limitation::NoHeaderReadTimeout));
    }

    /// Called by the test in each stack's module, with that module's stack and the argument.
    fn knows_its_stack(stack: &Stack, argument: &[u8]) {
        assert_eq!(argument, b"passed on");
        assert!(STACKS.contains(stack));
    }

    stack_tests! {
        each_module_knows_its_stack: knows_its_stack(b"passed on");
    }
}
