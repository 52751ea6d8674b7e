//! `{email, password}` bodies: read, and for registration, checked against
//! upstream's `authFormSchema` (`z.string().email()`, `z.string().min(6)`)
//! plus the limits of the column and of bcrypt.
//!
//! Each field is read by hand rather than through serde's derive, so that
//! every refusal names its field ("Field email must be a string.") instead
//! of pointing at a line and column.

use email_address::{EmailAddress, Options};
use lambda_http::Request;
use secrecy::SecretString;
use serde_json::{Map, Value};
use shared::http::extract::json_body;
use shared::http::{ApiError, ApiResult};

use crate::password::MAX_PASSWORD_BYTES;

/// The largest body the auth routes read: an e-mail address and a password
/// need a few hundred bytes; anything near this is not a sign-in.
pub const BODY_LIMIT: usize = 16 * 1024;

/// `"User".email` is `varchar(64)`.
pub const MAX_EMAIL_CHARS: usize = 64;

/// Upstream's `z.string().min(6)`.
pub const MIN_PASSWORD_CHARS: usize = 6;

/// An e-mail address and a password, as the client sent them.
///
/// The password is a [`SecretString`]: it prints as `[REDACTED]`, so no
/// log line can carry it, and it is wiped from memory when dropped.
#[derive(Debug)]
pub struct SignInForm {
    /// Compared and stored exactly as given (upstream neither trims nor
    /// lowercases it, and existing rows were written that way).
    pub email: String,
    /// The password in clear.
    pub password: SecretString,
}

impl SignInForm {
    /// The credentials of a sign-in: two strings, nothing more is checked,
    /// so that every pair that is not an account's gets the same 401 (a
    /// guest's `guest-<number>`, which is not an e-mail address, included).
    pub fn for_login(request: &Request) -> ApiResult<Self> {
        let body = object(request)?;
        Ok(Self {
            email: string_field(&body, "email")?.to_owned(),
            password: SecretString::from(string_field(&body, "password")?),
        })
    }

    /// The credentials of a new account, held to upstream's rules and to
    /// the limits of the column and of bcrypt.
    pub fn for_registration(request: &Request) -> ApiResult<Self> {
        let body = object(request)?;
        let email = string_field(&body, "email")?;
        if email.chars().count() > MAX_EMAIL_CHARS {
            return Err(ApiError::bad_request(format!(
                "Field email must be at most {MAX_EMAIL_CHARS} characters long."
            )));
        }
        if !is_email_address(email) {
            return Err(ApiError::bad_request(
                "Field email must be a valid e-mail address.",
            ));
        }
        let password = string_field(&body, "password")?;
        // zod counts UTF-16 code units; so do we, to refuse what it refuses.
        if password.encode_utf16().count() < MIN_PASSWORD_CHARS {
            return Err(ApiError::bad_request(format!(
                "Field password must be at least {MIN_PASSWORD_CHARS} characters long."
            )));
        }
        // bcrypt would silently ignore the rest; refuse instead.
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::bad_request(format!(
                "Field password must be at most {MAX_PASSWORD_BYTES} bytes long (in UTF-8)."
            )));
        }
        Ok(Self {
            email: email.to_owned(),
            password: SecretString::from(password),
        })
    }
}

/// An address as RFC 5322 has it (the `email_address` crate), with a dot in
/// the domain, and without IP-literal domains or display names: close to
/// what upstream's `z.string().email()` accepts, without a hand-made regex.
fn is_email_address(value: &str) -> bool {
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    EmailAddress::parse_with_options(value, options).is_ok()
}

/// The body, which must be a JSON object. (`shared`'s `json_body` refuses
/// other JSON already; the match makes that a checked fact here.)
fn object(request: &Request) -> ApiResult<Map<String, Value>> {
    match json_body::<Value>(request, BODY_LIMIT)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
    }
}

/// A required string field (`null` counts as missing). Other fields are
/// ignored, as upstream's validation ignores them.
fn string_field<'a>(body: &'a Map<String, Value>, name: &str) -> ApiResult<&'a str> {
    match body.get(name) {
        None | Some(Value::Null) => {
            Err(ApiError::bad_request(format!("Field {name} is required.")))
        }
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(ApiError::bad_request(format!(
            "Field {name} must be a string."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_upstream_accepts_are_accepted() {
        for address in [
            "ada@example.com",
            "ada.lovelace+chat@mail.example.co.uk",
            "o'brien@example.ie",
            "x@a.io",
        ] {
            assert!(is_email_address(address), "{address}");
        }
    }

    #[test]
    fn things_that_are_not_addresses_are_refused() {
        for value in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "ada@.example.com",
            "ada@example..com",
            ".ada@example.com",
            "ada lovelace@example.com",
            "Ada <ada@example.com>",
            "ada@[127.0.0.1]",
            "guest-1737000000000",
        ] {
            assert!(!is_email_address(value), "{value:?}");
        }
    }
}
