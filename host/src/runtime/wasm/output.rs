//! What crosses the component boundary: an envelope becomes the guest's `message`, and
//! the guest's `output`s become an outcome.
//!
//! Payloads and metadata cross as JSON text, so a guest in any language reads them with
//! its own JSON library; what comes back is checked here (valid JSON, a readable
//! route) and anything else is the actor's `invalid_output`, never a fault of the
//! node. The conversion is a pure function of plain values ([`outcome_of`]), so it is
//! property-tested and fuzzed without a component.

use crate::envelope::{Headers, Route};
use crate::failure::{Failure, Kind};
use crate::route_rules::{Outcome, Output};

/// One result of a guest, as plain values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuestOutput {
    /// The new payload as JSON text.
    pub payload: String,
    /// Envelope mode: the route as the guest changed it.
    pub route: Option<GuestRoute>,
    /// Envelope mode: headers that replace the incoming ones.
    pub headers: Option<Vec<(String, String)>>,
}

/// A route as a guest returns it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GuestRoute {
    /// The actors of the route, by name, in order.
    pub actors: Vec<String>,
    /// Index into `actors` of the actor the envelope goes to next.
    pub current: u32,
    /// `route.metadata` as JSON text.
    pub metadata: Option<String>,
}

/// The outcome of a call that returned `outputs`.
pub fn outcome_of(outputs: Vec<GuestOutput>) -> Outcome {
    let converted: Result<Vec<Output>, String> = outputs
        .into_iter()
        .enumerate()
        .map(|(index, output)| {
            let payload = serde_json::from_str(&output.payload)
                .map_err(|error| format!("output {index}: payload is not JSON: {error}"))?;
            let route = output
                .route
                .map(|route| route_of(route).map_err(|e| format!("output {index}: {e}")))
                .transpose()?;
            let headers = output
                .headers
                .map(|headers| headers.into_iter().collect::<Headers>());
            Ok(Output {
                payload,
                route,
                headers,
                id: None,
                parent_id: None,
            })
        })
        .collect();
    match converted {
        Ok(outputs) => Outcome::Outputs(outputs),
        Err(reason) => Outcome::Failed(Failure::processing(Kind::InvalidOutput, reason)),
    }
}

fn route_of(route: GuestRoute) -> Result<Route, String> {
    let metadata = route
        .metadata
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|error| format!("route.metadata is not JSON: {error}"))?;
    Ok(Route {
        actors: route.actors,
        current: usize::try_from(route.current).unwrap_or(usize::MAX),
        metadata,
    })
}

/// The conversions of one world's records: both worlds share the record shapes, each
/// has its own generated types.
macro_rules! conversions {
    ($types:path) => {
        const _: () = {
            use crate::envelope::Envelope;
            use crate::runtime::wasm::output::GuestOutput;
            use crate::runtime::wasm::output::GuestRoute;
            use $types as types;
            impl From<types::Output> for GuestOutput {
                fn from(output: types::Output) -> Self {
                    GuestOutput {
                        payload: output.payload,
                        route: output.route.map(|route| GuestRoute {
                            actors: route.actors,
                            current: route.current,
                            metadata: route.metadata,
                        }),
                        headers: output.headers.map(|headers| {
                            headers
                                .into_iter()
                                .map(|header| (header.name, header.value))
                                .collect()
                        }),
                    }
                }
            }

            impl From<&Envelope> for types::Message {
                fn from(envelope: &Envelope) -> Self {
                    types::Message {
                        id: envelope.id.clone(),
                        parent_id: envelope.parent_id.clone(),
                        route: types::Route {
                            actors: envelope.route.actors.clone(),
                            current: u32::try_from(envelope.route.current).unwrap_or(u32::MAX),
                            metadata: envelope
                                .route
                                .metadata
                                .as_ref()
                                .map(|metadata| metadata.to_string()),
                        },
                        // The node's fan-out bookkeeping is not the actor's to see.
                        headers: envelope
                            .headers
                            .iter()
                            .filter(|(name, _)| !crate::branch::is_bookkeeping(name))
                            .map(|(name, value)| types::Header {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                        payload: envelope.payload.to_string(),
                    }
                }
            }
        };
    };
}

conversions!(crate::runtime::wasm::bindings::wasya::actor::types);
conversions!(crate::runtime::wasm::bindings_async::wasya::actor::types);
