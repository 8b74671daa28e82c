//! TLS for the server: its certificate and key, and for mutual TLS the CA that client
//! certificates must be signed by (rustls, through tonic).

use std::path::Path;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::ServeConfig;

/// The TLS settings of `config`, read from their files; `None` without `--tls-cert`.
pub fn server_tls(config: &ServeConfig) -> Result<Option<ServerTlsConfig>, String> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        if config.tls_client_ca.is_some() {
            return Err("--tls-client-ca needs --tls-cert and --tls-key".into());
        }
        return Ok(None);
    };
    let identity = Identity::from_pem(read_pem(cert, "--tls-cert")?, read_pem(key, "--tls-key")?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem(ca, "--tls-client-ca")?));
    }
    Ok(Some(tls))
}

/// The contents of a PEM file named by `flag`; an unreadable file or one that holds no PEM
/// block is an error naming the flag.
pub fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!("{flag} {}: not a PEM file", path.display()));
    }
    Ok(pem)
}
