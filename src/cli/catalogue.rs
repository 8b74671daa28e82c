//! `metric|behavior|endpoint|test-set create|list|get|delete`: one set of commands over the
//! four catalogue services.

use serde_json::Value;

use super::CliError;
use super::args::{CatalogueCommand, CreateArgs, Global};
use super::client::Clients;
use super::json::{ProtoJson, from_json, key_value, read_document, set_path, to_json};
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
            let clients = Clients::connect(&global.server).await?;
            for resource in resources {
                out.value(&create(&clients, kind, resource).await?)?;
            }
        }
        CatalogueCommand::List => {
            let clients = Clients::connect(&global.server).await?;
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
            let clients = Clients::connect(&global.server).await?;
            out.value(&get(&clients, kind, args.reference).await?)?;
        }
        CatalogueCommand::Delete(args) => {
            let clients = Clients::connect(&global.server).await?;
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
        flags.push(key_value(field, "--set")?);
    }
    for (index, value) in values.iter_mut().enumerate() {
        if !value.is_object() {
            return Err(CliError::usage(format!(
                "resource {} of the file is not an object",
                index + 1
            )));
        }
        for (path, field) in &flags {
            set_path(value, path, field.clone())?;
        }
    }
    // Converting now reports a misspelt field before anything is created.
    for (index, value) in values.iter().enumerate() {
        let what = format!("resource {}", index + 1);
        match kind {
            Kind::Metric => from_json::<pb::Metric>(value.clone(), "Metric", &what).map(drop)?,
            Kind::Behavior => {
                from_json::<pb::Behavior>(value.clone(), "Behavior", &what).map(drop)?
            }
            Kind::Endpoint => {
                from_json::<pb::Endpoint>(value.clone(), "Endpoint", &what).map(drop)?
            }
            Kind::TestSet => from_json::<pb::TestSet>(value.clone(), "TestSet", &what).map(drop)?,
        }
    }
    Ok(values)
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
