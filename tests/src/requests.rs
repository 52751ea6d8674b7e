//! Requests as API Gateway and Lambda deliver them.
//!
//! A function sees the same request three ways: through a REST API (payload
//! format 1.0), an HTTP API (2.0), or a Function URL (2.0, `$default`
//! route). [`ApiRequest`] renders one request as the event JSON of each,
//! and turns it into a `lambda_http::Request` with lambda_http's own
//! deserialiser, so that handlers are tested on exactly what they get in
//! production (query parameters and authorizer claims included).

use lambda_http::Request;
use serde_json::{Map, Value, json};

/// The three event shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// API Gateway REST API, proxy integration (payload format 1.0).
    RestV1,
    /// API Gateway HTTP API (payload format 2.0).
    HttpV2,
    /// Lambda Function URL (payload format 2.0, no authorizer claims).
    FunctionUrl,
}

impl Shape {
    /// All three.
    pub const ALL: [Shape; 3] = [Shape::RestV1, Shape::HttpV2, Shape::FunctionUrl];
}

/// An HTTP request, to render as an event.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// `body` is base64, as API Gateway sends a body that is not text.
    base64: bool,
    claims: Option<Map<String, Value>>,
}

impl ApiRequest {
    /// A request with `method` to `path` (no query string).
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: vec![("user-agent".into(), "integration-tests".into())],
            body: None,
            base64: false,
            claims: None,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }

    /// `DELETE path`.
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }

    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(body.to_string());
        self.header("content-type", "application/json")
    }

    /// Sets a raw body.
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    /// Sets a body of arbitrary bytes (not UTF-8, say), which the event
    /// carries base64-encoded, as API Gateway does.
    pub fn binary_body(mut self, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        self.body = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.base64 = true;
        self
    }

    /// Puts authorizer claims in the request context, as API Gateway does
    /// after a Cognito/JWT authorizer (ignored for Function URLs, which
    /// have none).
    pub fn claims(mut self, claims: Value) -> Self {
        self.claims = claims.as_object().cloned();
        self
    }

    /// The event JSON of this request in `shape`.
    pub fn event(&self, shape: Shape) -> Value {
        match shape {
            Shape::RestV1 => self.rest_v1(),
            Shape::HttpV2 => {
                self.http_v2("GET /api/x", "abc123.execute-api.us-east-1.amazonaws.com")
            }
            Shape::FunctionUrl => {
                self.http_v2("$default", "abcdefghij.lambda-url.us-east-1.on.aws")
            }
        }
    }

    /// This request in `shape`, as the function's handler receives it.
    pub fn build(&self, shape: Shape) -> Request {
        let event = self.event(shape).to_string();
        lambda_http::request::from_str(&event)
            .unwrap_or_else(|error| panic!("lambda_http rejected a {shape:?} event: {error}"))
    }

    fn headers_map(&self) -> Map<String, Value> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    }

    fn query_map(&self) -> Option<Map<String, Value>> {
        (!self.query.is_empty()).then(|| {
            self.query
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
    }

    fn raw_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&self.query)
            .finish()
    }

    fn rest_v1(&self) -> Value {
        let multi_query: Option<Map<String, Value>> = self
            .query_map()
            .map(|m| m.into_iter().map(|(k, v)| (k, json!([v]))).collect());
        let multi_headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect();
        let mut authorizer = Value::Null;
        if let Some(claims) = &self.claims {
            authorizer = json!({ "claims": claims, "principalId": claims.get("sub") });
        }
        json!({
            "resource": self.path,
            "path": self.path,
            "httpMethod": self.method,
            "headers": self.headers_map(),
            "multiValueHeaders": multi_headers,
            "queryStringParameters": self.query_map(),
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": null,
            "stageVariables": null,
            "requestContext": {
                "accountId": "123456789012",
                "resourceId": "abc123",
                "stage": "prod",
                "requestId": uuid::Uuid::new_v4().to_string(),
                "identity": { "sourceIp": "127.0.0.1", "userAgent": "integration-tests" },
                "resourcePath": self.path,
                "httpMethod": self.method,
                "apiId": "abc123",
                "protocol": "HTTP/1.1",
                "path": format!("/prod{}", self.path),
                "authorizer": authorizer,
            },
            "body": self.body,
            "isBase64Encoded": self.base64,
        })
    }

    fn http_v2(&self, route_key: &str, domain: &str) -> Value {
        let mut context = json!({
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": domain,
            "domainPrefix": domain.split('.').next(),
            "http": {
                "method": self.method,
                "path": self.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "integration-tests",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": route_key,
            "stage": "$default",
            "time": "12/Mar/2025:19:03:58 +0000",
            "timeEpoch": 1_741_806_238_000_u64,
        });
        if let Some(claims) = &self.claims
            && route_key != "$default"
        {
            context["authorizer"] = json!({ "jwt": { "claims": claims, "scopes": null } });
        }
        json!({
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": self.path,
            "rawQueryString": self.raw_query(),
            "headers": self.headers_map(),
            "queryStringParameters": self.query_map(),
            "requestContext": context,
            "body": self.body,
            "isBase64Encoded": self.base64,
        })
    }
}
