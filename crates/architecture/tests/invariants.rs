//! The architecture invariants of `ARCHITECTURE.md` that a dependency graph can show, checked
//! on `cargo metadata` (normal dependencies only: dev-dependencies may use anything).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Packages by name: their normal (non-dev, non-build) dependencies, by package name.
struct Graph {
    deps: BTreeMap<String, BTreeSet<String>>,
    workspace: BTreeSet<String>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let name_of: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let workspace = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| name_of[id.as_str().unwrap()].to_string())
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let from = name_of[node["id"].as_str().unwrap()].to_string();
        let normal = node["deps"].as_array().unwrap().iter().filter(|d| {
            d["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null())
        });
        let set = deps.entry(from).or_default();
        for d in normal {
            set.insert(name_of[d["pkg"].as_str().unwrap()].to_string());
        }
    }
    Graph { deps, workspace }
}

impl Graph {
    /// Every package `root` depends on, directly or not, through normal dependencies.
    fn closure(&self, root: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![root.to_string()];
        while let Some(p) = stack.pop() {
            for d in self.deps.get(&p).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    stack.push(d.clone());
                }
            }
        }
        seen
    }

    /// Workspace packages that depend directly on a package `matching`.
    fn direct_users(&self, matching: impl Fn(&str) -> bool) -> BTreeSet<String> {
        self.workspace
            .iter()
            .filter(|w| self.deps.get(*w).into_iter().flatten().any(|d| matching(d)))
            .cloned()
            .collect()
    }
}

fn is_aws(name: &str) -> bool {
    name.starts_with("aws-") || name.starts_with("aws_")
}

fn is_lambda(name: &str) -> bool {
    name.starts_with("lambda_") || name.starts_with("lambda-")
}

#[test]
fn the_core_crates_know_nothing_of_aws_lambda_or_an_async_runtime() {
    let g = graph();
    for core in ["contact-lens", "master-csv", "model", "store", "env-config"] {
        assert!(g.workspace.contains(core), "no package {core}");
        let bad: Vec<String> = g
            .closure(core)
            .into_iter()
            .filter(|d| is_aws(d) || is_lambda(d) || d == "tokio")
            .collect();
        assert!(
            bad.is_empty(),
            "{core} depends (directly or not) on {bad:?}: the core crates must not know AWS, \
             Lambda or tokio (ARCHITECTURE.md, invariants)"
        );
    }
}

#[test]
fn only_the_lambda_and_cli_binaries_depend_on_the_lambda_runtime() {
    let g = graph();
    only(
        g.direct_users(is_lambda),
        &["ingest", "classify"],
        "lambda_*: only the Lambda binaries' packages may",
    );
}

#[test]
fn only_the_adapter_crates_depend_on_the_aws_sdk() {
    let g = graph();
    // store-s3: the S3 adapter; classify: the SageMaker adapters (endpoint, transform jobs);
    // ingest and calltype: binaries wiring clients; moto-harness and bench: tests and benches.
    only(
        g.direct_users(|d| d.starts_with("aws-sdk-")),
        &[
            "store-s3",
            "classify",
            "ingest",
            "calltype",
            "moto-harness",
            "bench",
        ],
        "an aws-sdk-* crate: only the adapter crates may",
    );
}

/// Asserts that `users` are all in `allowed`, naming the others.
fn only(users: BTreeSet<String>, allowed: &[&str], what: &str) {
    let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
    let others: Vec<&String> = users.difference(&allowed).collect();
    assert!(others.is_empty(), "{others:?} depend on {what}");
}

/// The graph walk itself: a package the test knows depends on AWS is seen to.
#[test]
fn the_check_sees_a_dependency_on_aws_where_there_is_one() {
    let g = graph();
    assert!(g.closure("store-s3").contains("aws-sdk-s3"));
    assert!(g.closure("classify").iter().any(|d| is_lambda(d)));
    assert!(!g.closure("master-csv").contains("store-s3"));
}
