//! TLS to the database: which certificate authorities the functions trust.
//!
//! The URL's `sslmode` and `sslrootcert` work as sqlx reads them: `disable`,
//! `prefer` (the default: TLS if the server offers it, certificate not
//! checked), `require` (TLS, certificate not checked), `verify-ca` (the
//! certificate must chain to a trusted CA) and `verify-full` (and name the
//! host in the URL). The trusted CAs are the Mozilla roots built into sqlx
//! plus, if given, a bundle; a private CA such as Amazon RDS's needs the
//! bundle.
//!
//! `DB_SSL_ROOT_CERT` gives that bundle in the forms a Lambda function can
//! carry it, which a URL's `sslrootcert` (a file path only) cannot:
//!
//! - a path to a PEM file (shipped in the deployment package or a layer);
//! - the PEM text itself, starting with `-----BEGIN` (an environment
//!   variable or a secret holds it; no file needed);
//! - `embedded`: the bundle compiled into the binary at build time from the
//!   file named by `DB_CA_BUNDLE_FILE` (see `shared/build.rs`).
//!
//! It replaces the URL's `sslrootcert`. The bundle is read and checked once,
//! at start, so that a missing file or a value that is not a certificate
//! stops the function at init with an error naming the variable, rather
//! than failing every connection later. Errors never quote the value: it
//! may be a private key pasted by mistake.
//!
//! A bundle is only useful if certificates are checked, so with one the
//! URL's `sslmode` must be `verify-full` (recommended) or `verify-ca`;
//! `require` is taken as `verify-ca`, as libpq does when it has a root
//! certificate; `disable`, `allow` and `prefer` (also the default when the
//! URL says nothing) are refused, since they would ignore the bundle without
//! a word.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::{ConfigError, Env};

/// The variable that names the CA bundle.
pub const ROOT_CERT_VAR: &str = "DB_SSL_ROOT_CERT";

/// The value of [`ROOT_CERT_VAR`] that selects the bundle built in.
pub const EMBEDDED: &str = "embedded";

/// The bundle `build.rs` embedded from `DB_CA_BUNDLE_FILE`; empty when the
/// build named none.
const EMBEDDED_BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/db_ca_bundle.pem"));

/// Where a CA bundle came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCertSource {
    /// A PEM file, read at start.
    File(PathBuf),
    /// PEM text in the variable itself.
    Inline,
    /// The bundle compiled into the binary.
    Embedded,
}

/// A CA bundle, read and checked.
#[derive(Debug, Clone)]
pub struct RootCerts {
    /// Where it came from.
    pub source: RootCertSource,
    /// How many certificates it holds.
    pub count: usize,
    /// The PEM text, handed to sqlx as it is.
    pem: Vec<u8>,
}

/// Applies `DB_SSL_ROOT_CERT`, if set, to `options` parsed from the URL in
/// `url_var`. Without it, the options are returned as the URL made them.
pub(super) fn configure(
    url_var: &'static str,
    options: PgConnectOptions,
    env: &Env<'_>,
) -> Result<PgConnectOptions, ConfigError> {
    let Some(value) = env.get(ROOT_CERT_VAR) else {
        return Ok(options);
    };
    let certs = read_root_certs(&value, EMBEDDED_BUNDLE, |path| std::fs::read(path))?;
    let mode = checked_mode(url_var, options.get_ssl_mode())?;
    Ok(options.ssl_mode(mode).ssl_root_cert_from_pem(certs.pem))
}

/// The `sslmode` to connect with when a CA bundle is given (see the module
/// docs for why weaker modes are refused).
fn checked_mode(url_var: &'static str, mode: PgSslMode) -> Result<PgSslMode, ConfigError> {
    let refused = |name: &str| ConfigError::Invalid {
        var: ROOT_CERT_VAR,
        reason: format!(
            "a CA bundle is only used when certificates are checked, and {url_var} has \
             sslmode={name}: add sslmode=verify-full to {url_var}"
        ),
    };
    match mode {
        PgSslMode::VerifyFull | PgSslMode::VerifyCa => Ok(mode),
        PgSslMode::Require => Ok(PgSslMode::VerifyCa),
        PgSslMode::Prefer => Err(refused("prefer (the default)")),
        PgSslMode::Allow => Err(refused("allow")),
        PgSslMode::Disable => Err(refused("disable")),
    }
}

/// Reads the bundle that `value` names: `embedded`, PEM text, or a path
/// (read with `read_file`). `embedded` is the build's bundle.
pub fn read_root_certs(
    value: &str,
    embedded: &[u8],
    read_file: impl Fn(&Path) -> std::io::Result<Vec<u8>>,
) -> Result<RootCerts, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        var: ROOT_CERT_VAR,
        reason,
    };
    let value = value.trim();
    let (source, pem) = if value == EMBEDDED {
        if embedded.is_empty() {
            return Err(invalid(
                "`embedded` asks for the CA bundle built into the binary, and this build has \
                 none: build with DB_CA_BUNDLE_FILE=/path/to/bundle.pem"
                    .into(),
            ));
        }
        (RootCertSource::Embedded, embedded.to_vec())
    } else if value.starts_with("-----BEGIN") {
        (RootCertSource::Inline, value.as_bytes().to_vec())
    } else {
        let path = PathBuf::from(value);
        let pem = read_file(&path).map_err(|error| {
            invalid(format!(
                "it is not PEM text (which starts with -----BEGIN) nor `embedded`, so it is \
                 taken as a file, and {} cannot be read ({error})",
                path.display()
            ))
        })?;
        (RootCertSource::File(path), pem)
    };
    let count = check_certificates(&pem).map_err(|problem| {
        let what = match &source {
            RootCertSource::File(path) => format!("the file {}", path.display()),
            RootCertSource::Inline => "the PEM text".to_owned(),
            RootCertSource::Embedded => "the embedded bundle".to_owned(),
        };
        invalid(format!("{what} {problem}"))
    })?;
    Ok(RootCerts { source, count, pem })
}

/// Checks that `pem` holds at least one certificate and that every
/// certificate in it is one rustls can trust (the check sqlx would make at
/// each connect); returns how many there are. Other PEM sections (a key
/// pasted along) are skipped, as sqlx skips them. The problem never quotes
/// the text.
fn check_certificates(pem: &[u8]) -> Result<usize, String> {
    let mut store = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert =
            cert.map_err(|_| format!("is not valid PEM (certificate {} is damaged)", index + 1))?;
        store.add(cert).map_err(|error| {
            format!(
                "holds something that is not a CA certificate (certificate {}: {error})",
                index + 1
            )
        })?;
    }
    match store.len() {
        0 => Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()),
        count => Ok(count),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA certificate in PEM, made fresh (so that no test file expires).
    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("a certificate").pem()
    }

    fn no_file(_: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::ErrorKind::NotFound.into())
    }

    fn message(result: Result<RootCerts, ConfigError>) -> String {
        result.expect_err("must be refused").to_string()
    }

    #[test]
    fn pem_text_in_the_variable_is_the_bundle() {
        let pem = format!("{}{}", ca_pem(), ca_pem());
        let certs = read_root_certs(&format!("\n{pem}"), b"", no_file).expect("valid");
        assert_eq!(certs.source, RootCertSource::Inline);
        assert_eq!(certs.count, 2);
        assert_eq!(certs.pem, pem.trim().as_bytes());
    }

    #[test]
    fn a_path_is_read_as_a_pem_file() {
        let pem = ca_pem();
        let certs = read_root_certs("/etc/ssl/rds.pem", b"", |path| {
            assert_eq!(path, Path::new("/etc/ssl/rds.pem"));
            Ok(pem.clone().into_bytes())
        })
        .expect("valid");
        assert_eq!(
            certs.source,
            RootCertSource::File(PathBuf::from("/etc/ssl/rds.pem"))
        );
        assert_eq!(certs.count, 1);
    }

    #[test]
    fn a_real_file_on_disk_is_read() {
        let path = std::env::temp_dir().join(format!("ca-{}.pem", uuid::Uuid::new_v4()));
        std::fs::write(&path, ca_pem()).expect("write the test CA");
        let result = read_root_certs(&path.to_string_lossy(), b"", |p| std::fs::read(p));
        let _ = std::fs::remove_file(&path);
        assert_eq!(result.expect("valid").count, 1);
    }

    #[test]
    fn embedded_selects_the_built_in_bundle() {
        let pem = ca_pem();
        let certs = read_root_certs(" embedded ", pem.as_bytes(), no_file).expect("valid");
        assert_eq!(certs.source, RootCertSource::Embedded);
        assert_eq!(certs.count, 1);
    }

    #[test]
    fn the_bundle_this_build_embedded_if_any_is_usable() {
        // Empty unless built with DB_CA_BUNDLE_FILE; then `embedded` must
        // find its certificates.
        let result = read_root_certs(EMBEDDED, EMBEDDED_BUNDLE, no_file);
        if EMBEDDED_BUNDLE.is_empty() {
            assert!(message(result).contains("DB_CA_BUNDLE_FILE"));
        } else {
            assert!(result.expect("the embedded bundle is valid").count > 0);
        }
    }

    #[test]
    fn embedded_without_a_built_in_bundle_says_how_to_build_one() {
        let err = message(read_root_certs("embedded", b"", no_file));
        assert!(err.starts_with("DB_SSL_ROOT_CERT is invalid"), "{err}");
        assert!(err.contains("DB_CA_BUNDLE_FILE"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_variable_and_the_path() {
        let err = message(read_root_certs("/nowhere/ca.pem", b"", no_file));
        assert!(err.starts_with("DB_SSL_ROOT_CERT is invalid"), "{err}");
        assert!(err.contains("/nowhere/ca.pem cannot be read"), "{err}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let err = message(read_root_certs("/etc/ssl/rds.pem", b"", |_| {
            Ok(b"not a certificate".to_vec())
        }));
        assert!(err.starts_with("DB_SSL_ROOT_CERT is invalid"), "{err}");
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn text_that_is_not_a_certificate_is_refused_without_being_quoted() {
        let key = rcgen::KeyPair::generate().expect("a key").serialize_pem();
        let damaged = "-----BEGIN CERTIFICATE-----\nc2VjcmV0LXRleHQ=\n-----END CERTIFICATE-----\n";
        let unterminated = "-----BEGIN CERTIFICATE-----\nc2VjcmV0LXRleHQ=\n";
        for (value, expected) in [
            (key.as_str(), "holds no PEM certificate"),
            (damaged, "not a CA certificate"),
            (unterminated, "is not valid PEM"),
        ] {
            let err = message(read_root_certs(value, b"", no_file));
            assert!(err.starts_with("DB_SSL_ROOT_CERT is invalid"), "{err}");
            assert!(err.contains(expected), "{err}");
            // Neither the key nor the base64 of the damaged text.
            assert!(!err.contains("c2VjcmV0"), "{err}");
            let body = key.lines().nth(1).unwrap_or_default();
            assert!(!err.contains(body), "{err}");
        }
    }

    #[test]
    fn a_bundle_needs_a_mode_that_checks_certificates() {
        // PgSslMode has no PartialEq.
        let mode = |m| checked_mode("POSTGRES_URL", m).expect("accepted");
        assert!(matches!(mode(PgSslMode::VerifyFull), PgSslMode::VerifyFull));
        assert!(matches!(mode(PgSslMode::VerifyCa), PgSslMode::VerifyCa));
        // libpq's rule: `require` with a root certificate checks the chain.
        assert!(matches!(mode(PgSslMode::Require), PgSslMode::VerifyCa));
        for mode in [PgSslMode::Prefer, PgSslMode::Allow, PgSslMode::Disable] {
            let err = checked_mode("DATABASE_URL", mode)
                .expect_err("refused")
                .to_string();
            assert!(err.starts_with("DB_SSL_ROOT_CERT is invalid"), "{err}");
            assert!(
                err.contains("add sslmode=verify-full to DATABASE_URL"),
                "{err}"
            );
        }
    }

    fn configured(vars: &[(&str, &str)]) -> Result<PgConnectOptions, ConfigError> {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let url = lookup("POSTGRES_URL").unwrap_or_default();
        let options: PgConnectOptions = url.parse().expect("a test URL");
        configure("POSTGRES_URL", options, &Env(&lookup))
    }

    #[test]
    fn without_the_variable_the_url_decides() {
        let options = configured(&[(
            "POSTGRES_URL",
            "postgres://app:pw@db.example.com/chat?sslmode=verify-ca",
        )])
        .expect("valid");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));
    }

    #[test]
    fn the_url_sslmode_is_kept_or_raised_with_a_bundle() {
        let pem = ca_pem();
        let options = configured(&[
            (
                "POSTGRES_URL",
                "postgres://app:s3cr3t-pw@db.example.com/chat?sslmode=require",
            ),
            (ROOT_CERT_VAR, &pem),
        ])
        .expect("valid");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyCa));

        let err = configured(&[
            (
                "POSTGRES_URL",
                "postgres://app:s3cr3t-pw@db.example.com/chat",
            ),
            (ROOT_CERT_VAR, &pem),
        ])
        .expect_err("prefer ignores a bundle")
        .to_string();
        assert!(err.contains("sslmode=prefer (the default)"), "{err}");
        assert!(!err.contains("s3cr3t-pw"), "{err}");
    }
}
