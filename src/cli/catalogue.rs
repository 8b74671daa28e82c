//! `metric|behavior|endpoint|test-set create|list|get|delete`: one set of commands over the
//! four catalogue services.

use std::path::Path;

use serde_json::Value;

use super::CliError;
use super::args::{CatalogueCommand, CreateArgs, Global};
use super::client::Clients;
use super::json::{ProtoJson, check_json, from_json, read_document, set_flag, set_path, to_json};
use super::output::Output;
use crate::proto::v1 as pb;

/// Page size of `list`: the largest the server serves.
const PAGE_SIZE: i32 = 1000;

/// A kind of catalogue resource.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `Metric`.
    Metric,
    /// `Behavior`.
    Behavior,
    /// `Endpoint`.
    Endpoint,
    /// `TestSet`.
    TestSet,
}

impl Kind {
    /// The proto message name.
    fn message(self) -> &'static str {
        match self {
            Kind::Metric => "Metric",
            Kind::Behavior => "Behavior",
            Kind::Endpoint => "Endpoint",
            Kind::TestSet => "TestSet",
        }
    }

    /// The columns `list` shows to people.
    fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Metric => &["id", "name", "scoreType", "description"],
            Kind::Behavior => &["id", "name", "metrics", "description"],
            Kind::Endpoint => &["id", "name", "description"],
            Kind::TestSet => &["id", "name", "testCount", "description"],
        }
    }
}

/// Runs a catalogue command on resources of `kind`.
pub async fn run(
    global: &Global,
    out: &Output,
    kind: Kind,
    command: CatalogueCommand,
) -> Result<(), CliError> {
    match command {
        CatalogueCommand::Create(args) => {
            // Every resource is read and checked before the first one is sent.
            let resources = resources(kind, &args)?;
            let clients = Clients::connect(global).await?;
            for resource in resources {
                out.value(&create(&clients, kind, resource).await?)?;
            }
        }
        CatalogueCommand::List => {
            let clients = Clients::connect(global).await?;
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let (page, next) = list(&clients, kind, token).await?;
                all.extend(page);
                if next.is_empty() {
                    break;
                }
                token = next;
            }
            out.list(&all, kind.columns())?;
        }
        CatalogueCommand::Get(args) => {
            let clients = Clients::connect(global).await?;
            out.value(&get(&clients, kind, args.reference).await?)?;
        }
        CatalogueCommand::Delete(args) => {
            let clients = Clients::connect(global).await?;
            delete(&clients, kind, args.reference.clone()).await?;
            out.note(format_args!(
                "deleted {} {}",
                kind.message(),
                args.reference
            ))?;
        }
    }
    Ok(())
}

/// The resources to create: the file's (one or a list), with the flags applied to each.
fn resources(kind: Kind, args: &CreateArgs) -> Result<Vec<Value>, CliError> {
    let mut values = match &args.file {
        None => vec![Value::Object(Default::default())],
        Some(path) => match read_document(path)? {
            Value::Array(items) => items,
            one => vec![one],
        },
    };
    if args.name.is_some() && values.len() > 1 {
        return Err(CliError::usage(
            "--name cannot name every resource of a file that holds several",
        ));
    }
    if !args.metrics.is_empty() && matches!(kind, Kind::Metric | Kind::Endpoint) {
        return Err(CliError::usage(format!(
            "--metric applies to behaviours and test sets, not to a {}",
            kind.message()
        )));
    }
    let mut flags = Vec::new();
    flags.extend(
        args.name
            .clone()
            .map(|n| ("name".to_string(), Value::from(n))),
    );
    flags.extend(
        args.description
            .clone()
            .map(|d| ("description".to_string(), Value::from(d))),
    );
    if !args.metrics.is_empty() {
        flags.push(("metrics".to_string(), Value::from(args.metrics.clone())));
    }
    for field in &args.fields {
        flags.push(set_flag(kind.message(), field)?);
    }
    for (index, value) in values.iter_mut().enumerate() {
        if !value.is_object() {
            return Err(CliError::input(format!(
                "resource {} of the file is not an object",
                index + 1
            )));
        }
        for (path, field) in &flags {
            set_path(value, path, field.clone())?;
        }
    }
    check(kind, &values, "resource")?;
    Ok(values)
}

/// Reads every resource as its message, so that a misspelt field is reported before anything
/// is created; `what` names them in errors (`resource 2`).
fn check(kind: Kind, values: &[Value], what: &str) -> Result<(), CliError> {
    values.iter().enumerate().try_for_each(|(index, value)| {
        check_json(
            value.clone(),
            kind.message(),
            &format!("{what} {}", index + 1),
        )
    })
}

/// The sections of a file for `assay create -f`, in the order they are created: what a
/// resource refers to is created before it.
const SECTIONS: [(&str, &str, Kind); 4] = [
    ("metrics", "metrics", Kind::Metric),
    ("behaviors", "behaviors", Kind::Behavior),
    ("endpoints", "endpoints", Kind::Endpoint),
    ("testSets", "test_sets", Kind::TestSet),
];

/// `create -f FILE`: resources of every kind from one file with the sections `metrics`,
/// `behaviors`, `endpoints` and `testSets`; all are checked before the first is created.
pub async fn create_all(global: &Global, out: &Output, path: &Path) -> Result<(), CliError> {
    let Value::Object(mut document) = read_document(path)? else {
        return Err(CliError::input(format!(
            "{}: expected an object with the lists metrics, behaviors, endpoints, testSets",
            path.display()
        )));
    };
    let mut batches = Vec::new();
    for (json_name, proto_name, kind) in SECTIONS {
        let section = document
            .remove(json_name)
            .or_else(|| document.remove(proto_name));
        let values = match section {
            None => continue,
            Some(Value::Array(values)) => values,
            Some(_) => {
                return Err(CliError::input(format!(
                    "{}: {json_name} must be a list",
                    path.display()
                )));
            }
        };
        check(kind, &values, &format!("{}: {json_name}:", path.display()))?;
        batches.push((kind, values));
    }
    if let Some(unknown) = document.keys().next() {
        return Err(CliError::input(format!(
            "{}: unknown section {unknown:?} (expected metrics, behaviors, endpoints, testSets)",
            path.display()
        )));
    }
    let clients = Clients::connect(global).await?;
    for (kind, values) in batches {
        for value in values {
            out.value(&create(&clients, kind, value).await?)?;
        }
    }
    Ok(())
}

/// Creates one resource; returns it as the server stored it.
async fn create(clients: &Clients, kind: Kind, value: Value) -> Result<ProtoJson, CliError> {
    let what = "resource";
    Ok(match kind {
        Kind::Metric => {
            let metric = Some(from_json(value, "Metric", what)?);
            let created = clients
                .metrics()
                .create_metric(pb::CreateMetricRequest { metric })
                .await?;
            to_json(created.get_ref(), "Metric")
        }
        Kind::Behavior => {
            let behavior = Some(from_json(value, "Behavior", what)?);
            let created = clients
                .behaviors()
                .create_behavior(pb::CreateBehaviorRequest { behavior })
                .await?;
            to_json(created.get_ref(), "Behavior")
        }
        Kind::Endpoint => {
            let endpoint = Some(from_json(value, "Endpoint", what)?);
            let created = clients
                .endpoints()
                .create_endpoint(pb::CreateEndpointRequest { endpoint })
                .await?;
            to_json(created.get_ref(), "Endpoint")
        }
        Kind::TestSet => {
            let test_set = Some(from_json(value, "TestSet", what)?);
            let created = clients
                .test_sets()
                .create_test_set(pb::CreateTestSetRequest { test_set })
                .await?;
            to_json(created.get_ref(), "TestSet")
        }
    })
}

/// One page of resources and the token of the next.
async fn list(
    clients: &Clients,
    kind: Kind,
    page_token: String,
) -> Result<(Vec<ProtoJson>, String), CliError> {
    Ok(match kind {
        Kind::Metric => {
            let page = clients
                .metrics()
                .list_metrics(pb::ListMetricsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await?
                .into_inner();
            (all_json(&page.metrics, "Metric"), page.next_page_token)
        }
        Kind::Behavior => {
            let page = clients
                .behaviors()
                .list_behaviors(pb::ListBehaviorsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await?
                .into_inner();
            (all_json(&page.behaviors, "Behavior"), page.next_page_token)
        }
        Kind::Endpoint => {
            let page = clients
                .endpoints()
                .list_endpoints(pb::ListEndpointsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await?
                .into_inner();
            (all_json(&page.endpoints, "Endpoint"), page.next_page_token)
        }
        Kind::TestSet => {
            let page = clients
                .test_sets()
                .list_test_sets(pb::ListTestSetsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                })
                .await?
                .into_inner();
            (all_json(&page.test_sets, "TestSet"), page.next_page_token)
        }
    })
}

/// Messages as proto JSON.
fn all_json<M: prost::Message>(messages: &[M], name: &str) -> Vec<ProtoJson> {
    messages.iter().map(|m| to_json(m, name)).collect()
}

/// One resource by id or name.
async fn get(clients: &Clients, kind: Kind, reference: String) -> Result<ProtoJson, CliError> {
    Ok(match kind {
        Kind::Metric => to_json(
            clients
                .metrics()
                .get_metric(pb::GetMetricRequest { metric: reference })
                .await?
                .get_ref(),
            "Metric",
        ),
        Kind::Behavior => to_json(
            clients
                .behaviors()
                .get_behavior(pb::GetBehaviorRequest {
                    behavior: reference,
                })
                .await?
                .get_ref(),
            "Behavior",
        ),
        Kind::Endpoint => to_json(
            clients
                .endpoints()
                .get_endpoint(pb::GetEndpointRequest {
                    endpoint: reference,
                })
                .await?
                .get_ref(),
            "Endpoint",
        ),
        Kind::TestSet => to_json(
            clients
                .test_sets()
                .get_test_set(pb::GetTestSetRequest {
                    test_set: reference,
                })
                .await?
                .get_ref(),
            "TestSet",
        ),
    })
}

/// Deletes one resource by id or name.
async fn delete(clients: &Clients, kind: Kind, reference: String) -> Result<(), CliError> {
    match kind {
        Kind::Metric => {
            clients
                .metrics()
                .delete_metric(pb::DeleteMetricRequest { metric: reference })
                .await?;
        }
        Kind::Behavior => {
            clients
                .behaviors()
                .delete_behavior(pb::DeleteBehaviorRequest {
                    behavior: reference,
                })
                .await?;
        }
        Kind::Endpoint => {
            clients
                .endpoints()
                .delete_endpoint(pb::DeleteEndpointRequest {
                    endpoint: reference,
                })
                .await?;
        }
        Kind::TestSet => {
            clients
                .test_sets()
                .delete_test_set(pb::DeleteTestSetRequest {
                    test_set: reference,
                })
                .await?;
        }
    }
    Ok(())
}
