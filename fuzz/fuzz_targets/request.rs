//! Requests as the functions parse them, from arbitrary bytes: whole API
//! Gateway events (any of the shapes `lambda_http` accepts), then the
//! caller, the query parameters and the JSON body the handlers read from
//! them; and arbitrary bodies of `POST /api/chat`. Whatever comes in, the
//! parsers answer a value or an error, and never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::http::extract;

/// The body limit the functions use.
const LIMIT: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let auth = chat_backend_fuzz::auth();
    let request = if mode % 2 == 0 {
        // A whole event, as Lambda hands it over.
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match lambda_http::request::from_str(text) {
            Ok(request) => request,
            Err(_) => return,
        }
    } else {
        // A well-formed event whose body is the input.
        let body = String::from_utf8_lossy(rest).into_owned();
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": "/api/chat",
            "rawQueryString": "id=1&limit=x",
            "headers": {"content-type": "application/json", "authorization": "Bearer x.y.z"},
            "requestContext": {
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "http": {"method": "POST", "path": "/api/chat", "protocol": "HTTP/1.1",
                         "sourceIp": "127.0.0.1", "userAgent": "fuzz"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 0
            },
            "body": body,
            "isBase64Encoded": false
        });
        match lambda_http::request::from_str(&event.to_string()) {
            Ok(request) => request,
            Err(error) => panic!("a well-formed event was refused: {error}"),
        }
    };
    let _ = shared::http::identity::identify(&request, &auth);
    for name in [
        "id",
        "chatId",
        "documentId",
        "limit",
        "starting_after",
        "timestamp",
    ] {
        if let Some(value) = extract::query_param(&request, name) {
            let _ = extract::parse_uuid(&value, name);
        }
    }
    let _ = extract::json_body::<serde_json::Value>(&request, LIMIT);
    let _ = chat::request::ChatRequest::from_request(&request, LIMIT);
});
