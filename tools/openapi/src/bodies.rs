//! Request bodies, and the answers that are not table rows.
//!
//! Each mirrors what a function reads or writes (named on each type); the
//! functions keep theirs private, as they parse leniently to give
//! upstream's messages. These describe what a valid request is.

use serde::Serialize;
use shared::db::models::Chat;
use shared::http::UserType;
use utoipa::ToSchema;
use uuid::Uuid;

/// `POST /api/auth/register` and `/login` (`auth::credentials`).
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    /// An e-mail address of at most 64 characters.
    #[schema(format = "email", max_length = 64)]
    pub email: String,
    /// At least 6 characters and at most 72 bytes.
    #[schema(min_length = 6, max_length = 72)]
    pub password: String,
}

/// The signed-in user (`auth`'s `SessionUser`).
#[derive(Serialize, ToSchema)]
pub struct SessionUser {
    /// The user's id.
    pub id: Uuid,
    /// Their e-mail address, or `guest-<digits>`.
    pub email: String,
    /// Guest or regular.
    #[serde(rename = "type")]
    pub user_type: UserType,
}

/// What guest sign-in, register and login answer (`auth`'s `SignedIn`).
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// The session token, for `Authorization: Bearer`.
    pub token: String,
    /// Who signed in.
    pub user: SessionUser,
}

/// `GET /api/auth/session` (`auth`'s `Session`).
#[derive(Serialize, ToSchema)]
pub struct Session {
    /// The caller.
    pub user: SessionUser,
    /// When the token expires; `null` for API Gateway authorizer claims.
    #[schema(format = DateTime)]
    pub expires: Option<String>,
}

/// `GET /api/history` (`shared::db::queries::chat::ChatPage`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatPage {
    /// Newest first.
    pub chats: Vec<Chat>,
    /// Whether more chats lie beyond this page.
    pub has_more: bool,
}

/// `DELETE /api/history` (`history`'s `Deleted`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    /// How many chats went.
    pub deleted_count: i64,
}

/// A vote's direction.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VoteDirection {
    /// 👍
    Up,
    /// 👎
    Down,
}

/// `PATCH /api/vote` (`vote`'s `VoteBody`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoteRequest {
    /// The chat.
    pub chat_id: Uuid,
    /// A message of that chat.
    pub message_id: Uuid,
    /// Up or down.
    #[serde(rename = "type")]
    pub direction: VoteDirection,
}

/// A document's kind.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    /// Prose.
    Text,
    /// A program.
    Code,
    /// A picture.
    Image,
    /// A spreadsheet.
    Sheet,
}

/// `POST /api/document` (`document`'s `DocumentBody`).
#[derive(Serialize, ToSchema)]
pub struct DocumentRequest {
    /// Its title (no NUL characters).
    pub title: String,
    /// Its content (no NUL characters).
    pub content: String,
    /// Its kind.
    pub kind: DocumentKind,
}

/// A chat's visibility.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone may read it.
    Public,
    /// Only its owner.
    Private,
}

/// The only role a new message may have.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// The user's.
    User,
}

/// An image's media type.
#[derive(Serialize, ToSchema)]
pub enum ImageType {
    /// JPEG.
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// PNG.
    #[serde(rename = "image/png")]
    Png,
}

/// A part of a new message (`chat::request`'s `PartBody`).
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Part {
    /// Text.
    Text {
        /// 1 to 2000 UTF-16 code units.
        #[schema(min_length = 1, max_length = 2000)]
        text: String,
    },
    /// An image.
    File {
        /// JPEG or PNG.
        #[serde(rename = "mediaType")]
        media_type: ImageType,
        /// 1 to 100 characters.
        #[schema(min_length = 1, max_length = 100)]
        name: String,
        /// Where it is: a URL.
        url: String,
    },
}

/// The user's new message (`chat::request`'s `MessageBody`).
#[derive(Serialize, ToSchema)]
pub struct NewMessage {
    /// Its id, chosen by the client.
    pub id: Uuid,
    /// Always `user`.
    pub role: UserRole,
    /// At least one part.
    #[schema(min_items = 1)]
    pub parts: Vec<Part>,
}

/// `POST /api/chat` (`chat::request`'s `Body`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    /// The chat's id, chosen by the client for a new chat.
    pub id: Uuid,
    /// The new message.
    pub message: NewMessage,
    /// The client's model choice.
    pub selected_chat_model: String,
    /// The visibility of a new chat.
    pub selected_visibility_type: Visibility,
}

/// One server-sent event of a streamed answer: `data` is a chunk of the AI
/// SDK's UI message stream as JSON, or `[DONE]` at the end.
#[derive(Serialize, ToSchema)]
pub struct StreamEvent {
    /// The chunk.
    pub data: String,
    /// The event's name, when it has one.
    pub event: Option<String>,
}
