//! The body of `POST /api/chat`, validated as upstream's zod schema does
//! (`app/(chat)/api/chat/schema.ts`): fields it does not know are dropped,
//! anything else wrong is a 400 `bad_request:api`, with a cause saying what.

use serde::Deserialize;
use serde_json::{Value, json};
use shared::http::{ApiError, ApiResult};
use uuid::Uuid;

/// Longest text part, in UTF-16 code units (zod counts JavaScript's
/// string length).
pub const MAX_TEXT_UNITS: usize = 2000;

/// Longest file name.
pub const MAX_FILE_NAME_UNITS: usize = 100;

/// A valid chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The chat's id (the client picks it for a new chat).
    pub chat_id: Uuid,
    /// The user's new message.
    pub message: UserMessage,
    /// The client's model choice.
    pub selected_model: String,
    /// `public` or `private`, for a new chat.
    pub visibility: &'static str,
}

/// The user's message.
#[derive(Debug, Clone, PartialEq)]
pub struct UserMessage {
    /// Its id (the client picks it).
    pub id: Uuid,
    /// Its parts, as they are saved: only the fields the schema knows.
    pub parts: Vec<Value>,
    /// Its text parts, joined, for the model.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    id: String,
    message: Option<MessageBody>,
    selected_chat_model: String,
    selected_visibility_type: String,
}

#[derive(Deserialize)]
struct MessageBody {
    id: String,
    role: String,
    parts: Vec<PartBody>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum PartBody {
    Text {
        text: String,
    },
    File {
        #[serde(rename = "mediaType")]
        media_type: String,
        name: String,
        url: String,
    },
}

impl ChatRequest {
    /// Reads and validates the request's body.
    pub fn from_request(request: &lambda_http::Request, limit: usize) -> ApiResult<Self> {
        let body: Body = shared::http::extract::json_body(request, limit)?;
        let chat_id = uuid(&body.id, "id")?;
        let visibility = match body.selected_visibility_type.as_str() {
            "public" => "public",
            "private" => "private",
            _ => {
                return Err(invalid(
                    "selectedVisibilityType must be \"public\" or \"private\".",
                ));
            }
        };
        // Upstream also accepts `messages` without `message`, for tool
        // approvals; this backend has no tools to approve.
        let message = body
            .message
            .ok_or_else(|| invalid("Field message is required."))?;
        if message.role != "user" {
            return Err(invalid("message.role must be \"user\"."));
        }
        let message_id = uuid(&message.id, "message.id")?;
        if message.parts.is_empty() {
            return Err(invalid("message.parts must not be empty."));
        }
        let mut parts = Vec::with_capacity(message.parts.len());
        let mut texts = Vec::new();
        for part in message.parts {
            parts.push(validated_part(part, &mut texts)?);
        }
        Ok(Self {
            chat_id,
            message: UserMessage {
                id: message_id,
                parts,
                text: texts.join("\n"),
            },
            selected_model: body.selected_chat_model,
            visibility,
        })
    }
}

/// A part as it is saved, once valid; a text part's text also goes to
/// `texts`, for the model.
fn validated_part(part: PartBody, texts: &mut Vec<String>) -> ApiResult<Value> {
    match part {
        PartBody::Text { text } => {
            let units = text.encode_utf16().count();
            if units == 0 || units > MAX_TEXT_UNITS {
                return Err(invalid(format!(
                    "A text part must have 1 to {MAX_TEXT_UNITS} characters."
                )));
            }
            let saved = json!({"type": "text", "text": text});
            texts.push(text);
            Ok(saved)
        }
        PartBody::File {
            media_type,
            name,
            url,
        } => {
            if !matches!(media_type.as_str(), "image/jpeg" | "image/png") {
                return Err(invalid(
                    "A file part's mediaType must be image/jpeg or image/png.",
                ));
            }
            let units = name.encode_utf16().count();
            if units == 0 || units > MAX_FILE_NAME_UNITS {
                return Err(invalid(format!(
                    "A file part's name must have 1 to {MAX_FILE_NAME_UNITS} characters."
                )));
            }
            if url::Url::parse(&url).is_err() {
                return Err(invalid("A file part's url must be a URL."));
            }
            Ok(json!({"type": "file", "mediaType": media_type, "name": name, "url": url}))
        }
    }
}

fn invalid(cause: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::bad_request(cause)
}

fn uuid(value: &str, name: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(value).map_err(|_| invalid(format!("{name} must be a UUID.")))
}
