//! What the fuzz targets share: the configuration the functions would read
//! from their environment, built once.

use std::sync::OnceLock;

use shared::config::{AuthConfig, Config};

/// The user the token target issues tokens to.
pub const USER: uuid::Uuid = uuid::Uuid::from_u128(0x5a1e_0000_0000_4000_8000_0000_0000_0001);

/// The session-token settings of a function started with an `AUTH_SECRET`.
pub fn auth() -> AuthConfig {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let lookup = |name: &str| match name {
                "POSTGRES_URL" => Some("postgres://fuzz@127.0.0.1:1/fuzz".to_owned()),
                "AUTH_SECRET" => Some("fuzz-secret-0123456789abcdef-0123456789".to_owned()),
                _ => None,
            };
            Config::from_lookup("fuzz", lookup).expect("a valid configuration")
        })
        .auth
        .clone()
}
