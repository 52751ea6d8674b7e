//! Reading requests without trusting them: query parameters, JSON bodies,
//! methods and ids, each failing with the upstream `bad_request:api` body.

use std::fmt;
use std::marker::PhantomData;

use http::Method;
use lambda_http::{Body, Request, RequestExt};
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use super::{ApiError, ApiResult};

/// The largest JSON body any route accepts. The chat route's messages are
/// at most 2,000 characters of text plus file parts by URL; a document can
/// be longer, so routes may pass their own limit.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// A query parameter, as API Gateway parsed it (or, for a request built by
/// hand, as the URI carries it). Blank values count as absent, as
/// upstream's `searchParams.get(..) || default`.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    let value = match request.query_string_parameters_ref() {
        Some(params) => params.first(name).map(str::to_owned),
        None => request.uri().query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        }),
    };
    value.filter(|v| !v.is_empty())
}

/// Refuses methods the route does not serve (405, `Allow: allow`).
pub fn require_method(request: &Request, allowed: &[Method], allow: &'static str) -> ApiResult<()> {
    if allowed.contains(request.method()) {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(allow))
    }
}

/// Parses an id, naming the parameter when it is not a UUID.
pub fn parse_uuid(value: &str, name: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(value.trim())
        .map_err(|_| ApiError::bad_request(format!("Parameter {name} must be a UUID.")))
}

/// A required UUID query parameter.
pub fn uuid_param(request: &Request, name: &str) -> ApiResult<Uuid> {
    let value = query_param(request, name)
        .ok_or_else(|| ApiError::bad_request(format!("Parameter {name} is required.")))?;
    parse_uuid(&value, name)
}

/// Parses the JSON body, which must be an object, into `T` (fields `T` does
/// not know are ignored, as upstream's validation ignores them), refusing
/// bodies over `limit` bytes.
pub fn json_body<T: DeserializeOwned>(request: &Request, limit: usize) -> ApiResult<T> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(ApiError::payload_too_large(limit));
    }
    if bytes.is_empty() {
        return Err(ApiError::bad_request("The request body is empty."));
    }
    serde_json::from_slice::<JsonObject<T>>(bytes)
        .map(|JsonObject(body)| body)
        .map_err(|error| {
            // serde's message names the field and the expected type (and may
            // quote the caller's own value back, bounded here).
            let what = match error.classify() {
                serde_json::error::Category::Data => {
                    let mut detail = error.to_string();
                    if detail.len() > 200 {
                        let cut = (0..=200)
                            .rev()
                            .find(|&i| detail.is_char_boundary(i))
                            .unwrap_or(0);
                        detail.truncate(cut);
                        detail.push('…');
                    }
                    format!("Invalid request body: {detail}.")
                }
                _ => "The request body is not valid JSON.".to_owned(),
            };
            ApiError::bad_request(what)
        })
}

/// `T`, read only from a JSON object.
///
/// serde's derived `Deserialize` also accepts a struct written as an array
/// of its fields in order (`["<chatId>", "<messageId>", "up"]`). Upstream
/// destructures the parsed body, so an array there has no fields at all;
/// we refuse anything but an object, with serde's usual cause.
struct JsonObject<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(JsonObject)
    }
}
