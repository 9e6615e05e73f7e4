//! The API's OpenAPI document, served at `/v1/openapi.json`.
//!
//! It is assembled from the handlers' `#[utoipa::path]` attributes and the request
//! and response types' `ToSchema` derives, so it changes with the code that answers:
//! a new endpoint or field that is not in the document is a missing attribute in
//! the same file, not a second place to remember.

use super::{activity, actors, envelopes, events, health};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wasya node API",
        description = "Submit envelopes, read their outcomes, deploy and manage actors."
    ),
    paths(
        envelopes::submit,
        envelopes::get,
        events::stream,
        envelopes::list_failed,
        envelopes::publish_raw,
        actors::list,
        actors::get,
        actors::put,
        actors::patch,
        actors::delete,
        activity::get,
        health::healthz,
        health::readyz,
        health::metrics,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "envelopes", description = "Submitting envelopes and reading their outcomes"),
        (name = "actors", description = "Deploying components and socket actors"),
        (name = "health", description = "Liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer token that mutating endpoints ask for, and the `401` every
/// endpoint that asks for it answers without it (said here once, not per handler).
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let unauthorized = ResponseBuilder::new()
            .description("Missing or wrong token")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.is_some() {
                    operation
                        .responses
                        .responses
                        .insert("401".into(), unauthorized.clone().into());
                }
            }
        }
    }
}

/// `GET /v1/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_schemas() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/v1/envelopes",
            "/v1/envelopes/{id}",
            "/v1/queues/{actor}/messages",
            "/v1/actors",
            "/v1/actors/{name}",
            "/v1/activity",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is missing");
        }
        for schema in [
            "ActorView",
            "ActorSpec",
            "Deployment",
            "ErrorBody",
            "OutcomeView",
            "ActivityView",
            "Sample",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} is missing"
            );
        }
        let put = &doc["paths"]["/v1/actors/{name}"]["put"];
        assert!(put["requestBody"]["content"]["application/wasm"].is_object());
        assert!(put["requestBody"]["content"]["application/json"].is_object());
        for (path, method) in [
            ("/v1/envelopes", "post"),
            ("/v1/queues/{actor}/messages", "post"),
            ("/v1/actors/{name}", "put"),
            ("/v1/actors/{name}", "delete"),
        ] {
            assert!(
                doc["paths"][path][method]["responses"]["401"].is_object(),
                "{method} {path} does not document its 401"
            );
        }
        assert!(doc["paths"]["/v1/actors"]["get"]["responses"]["401"].is_null());
    }
}
