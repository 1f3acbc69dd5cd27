//! The comparison's scenarios in short, on every stack at once as a comparison runs them:
//! PostgreSQL across a network (a delay proxy in front of it, a pool size given), the
//! open-loop ladder (a capacity probe, then fixed offered rates) and the deployment (nginx in
//! front of the server, pgbouncer behind it). Seconds long, and they assert what the records
//! and the report must hold, never a timing.

use std::time::Duration;

use harness::DbKind;
use harness::deploy::PoolMode;
use harness::server::ServerSpec;
use loadgen::cell::{self, CellPlan, Contender, Context, Design, Template};
use loadgen::engine::{LoadConfig, LoadModel};
use loadgen::measure::MeasureOptions;
use loadgen::record::{self, DbNetwork, Deployment, LoadModelKind, Provenance};
use loadgen::workload::WorkloadKind;

#[test]
fn network_open_loop_and_deployment_scenarios_in_short() {
    let admin = harness::db::test_admin_url().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.jsonl");
    let contenders: Vec<Contender> = harness::STACKS
        .iter()
        .map(|stack| Contender {
            name: stack.name.to_owned(),
            server: ServerSpec {
                workers: 1,
                ..ServerSpec::new(conformance::binary(stack))
            },
        })
        .collect();
    let design = Design {
        trial: Duration::from_millis(100),
        trial_warmup: Duration::from_millis(50),
        min_rounds: 2,
        max_rounds: 2,
        budget: Duration::from_secs(10),
        // Debug builds on a busy test machine: no trial is redone for noise.
        steal_limit: 1.0,
        other_limit: 1.0,
        ..Design::default()
    };
    let options = MeasureOptions {
        load: LoadConfig {
            timeout: Duration::from_secs(30),
            ..LoadConfig::default()
        },
        threads: 2,
        seed: 200,
        delete_seed: 0,
        seed_connections: 4,
        ..MeasureOptions::default()
    };
    let provenance = Provenance::default();
    let ctx = Context {
        design: &design,
        contenders: &contenders,
        baseline: 0,
        options: &options,
        provenance: &provenance,
        records: &records,
        run: "scenarios-test",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let network = DbNetwork {
        rtt_us: 1_000,
        pool: 2,
    };
    let read = CellPlan {
        db: DbKind::Postgres,
        workload: WorkloadKind::Read,
        model: LoadModel::Closed,
        connections: 4,
        network: Some(network),
        deployment: None,
    };
    let (across, rates) = runtime.block_on(async {
        let template = Template::create(
            DbKind::Postgres,
            &contenders[0].server,
            Some(&admin),
            &options,
        )
        .await
        .unwrap_or_else(|e| panic!("seeding: {e:#}"));
        let across = cell::run_cell(&read, &template, &ctx, &|_, _| {})
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", read.name()));
        let loopback = CellPlan {
            network: None,
            ..read.clone()
        };
        let probed = cell::probe_capacity(&loopback, &template, &ctx)
            .await
            .unwrap_or_else(|e| panic!("probing: {e:#}"));
        assert!(
            probed.len() == contenders.len() && probed.iter().all(|(_, t)| *t > 0.0),
            "a throughput for every stack: {probed:?}"
        );
        let rates = cell::ladder(probed.iter().map(|(_, t)| *t).fold(0.0, f64::max), 3);
        let open = CellPlan {
            model: LoadModel::Open { rate: rates[0] },
            ..loopback
        };
        cell::run_cell(&open, &template, &ctx, &|_, _| {})
            .await
            .unwrap_or_else(|e| panic!("{}: {e:#}", open.name()));
        let [direct, _, _, behind] = Deployment::all(PoolMode::Session);
        for deployment in [direct, behind] {
            let plan = CellPlan {
                network: None,
                deployment: Some(deployment),
                ..read.clone()
            };
            let cell = cell::run_cell(&plan, &template, &ctx, &|_, _| {})
                .await
                .unwrap_or_else(|e| panic!("{}: {e:#}", plan.name()));
            assert!(cell.unclean_shutdowns.is_empty(), "{cell:?}");
        }
        (across, rates)
    });
    assert!(across.unclean_shutdowns.is_empty(), "{across:?}");
    assert_eq!(across.stacks.len(), harness::STACKS.len());

    let all = record::read_all(&records).unwrap();
    let counted: Vec<_> = all.iter().filter(|r| r.counts()).collect();
    for stack in harness::STACKS {
        let mine = |r: &&&record::Record| r.stack == stack.name;
        let through_proxy: Vec<_> = counted
            .iter()
            .filter(mine)
            .filter(|r| r.db_network == Some(network))
            .collect();
        assert_eq!(through_proxy.len(), 2, "{}: two counted rounds", stack.name);
        for r in &through_proxy {
            assert_eq!(
                r.server_pool_size,
                Some(2),
                "{}: the pool asked for",
                stack.name
            );
        }
        served_cleanly(&through_proxy, &format!("{} across a network", stack.name));
        let behind: Vec<_> = counted
            .iter()
            .filter(mine)
            .filter(|r| {
                r.deployment
                    .is_some_and(|d| d.nginx && d.pgbouncer.is_some())
            })
            .collect();
        assert_eq!(behind.len(), 2, "{}: two rounds behind nginx", stack.name);
        served_cleanly(
            &behind,
            &format!("{} behind nginx, with pgbouncer", stack.name),
        );
        let open: Vec<_> = counted
            .iter()
            .filter(mine)
            .filter(|r| r.load_model == LoadModelKind::Open)
            .collect();
        assert_eq!(open.len(), 2, "{}: two open-loop rounds", stack.name);
        assert!(open.iter().all(|r| r.target_rate == Some(rates[0])));
        // The probe's trials are recorded and not counted.
        assert!(all.iter().any(|r| {
            r.stack == stack.name
                && r.trial
                    .as_ref()
                    .is_some_and(|t| t.discarded.as_deref() == Some(cell::PROBE))
        }));
    }
    let out = loadgen::report::render_report(&records, dir.path()).unwrap();
    let md = std::fs::read_to_string(&out.summary).unwrap();
    assert!(md.contains("## The database across a network"), "{md}");
    assert!(md.contains("## Latency at a fixed offered rate"), "{md}");
    assert!(
        md.contains("## The deployment the published comparisons used"),
        "{md}"
    );
    assert!(md.contains("nginx+pgbouncer(session): ratio"), "{md}");
}

/// Every one of `records` answered some requests, all of them well.
fn served_cleanly(records: &[&&record::Record], what: &str) {
    for r in records {
        assert_eq!(r.results.errors_total, 0, "{what}: {:?}", r.results.errors);
        assert!(r.results.ok > 0, "{what}: no answers");
    }
}
