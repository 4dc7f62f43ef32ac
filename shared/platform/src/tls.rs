//! Transport security from configuration (`tls`): with a certificate and key the
//! servers speak TLS (rustls); with a CA as well they require every client to present
//! a certificate that CA signed (mutual TLS), which is how the services know each
//! other. The services' own calls (event relays, logistics → customers) go to
//! `https://` URLs with the CA and present the same certificate. Plaintext stays the
//! default for `distnet up` on loopback; `distnet certs` makes a development CA and
//! certificates.

use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::settings::{ServiceEndpoint, TlsSettings};

fn read(path: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} at {path}"))
}

impl TlsSettings {
    /// Whether the servers speak TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_path.is_empty() && !self.key_path.is_empty()
    }
}

/// The servers' TLS configuration, or `None` for plaintext.
pub fn server_config(settings: &TlsSettings) -> anyhow::Result<Option<ServerTlsConfig>> {
    if !settings.enabled() {
        return Ok(None);
    }
    let identity = Identity::from_pem(
        read(&settings.cert_path, "certificate")?,
        read(&settings.key_path, "private key")?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if !settings.client_ca_path.is_empty() {
        config = config.client_ca_root(Certificate::from_pem(read(
            &settings.client_ca_path,
            "client CA",
        )?));
    }
    Ok(Some(config))
}

/// An endpoint for `url` with the service's timeouts; `https://` URLs verify the
/// server against `tls.ca_path` and present the service's certificate.
pub fn endpoint(url: &str, settings: &TlsSettings, timeout: Duration) -> anyhow::Result<Endpoint> {
    let mut endpoint = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout);
    if url.starts_with("https://") {
        endpoint = endpoint.tls_config(client_config(settings)?)?;
    }
    Ok(endpoint)
}

/// An endpoint for this host's own server of `service` — bound to `bound` (the
/// server's `server.host`; loopback for a wildcard) on its port, as a probe inside
/// its pod reaches it — speaking as the service's URL says: for an `https://` URL,
/// TLS as [`endpoint`], the certificate verified for that URL's host (the name the
/// certificate carries, not the address dialled).
pub fn local_endpoint(
    service: &ServiceEndpoint,
    bound: &str,
    settings: &TlsSettings,
    timeout: Duration,
) -> anyhow::Result<Endpoint> {
    anyhow::ensure!(
        service.port != 0,
        "the service's port is picked at start (0): set services.<name>.port"
    );
    let address = match bound.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => "127.0.0.1".to_string(),
        "::" => "[::1]".to_string(),
        ip if ip.contains(':') => format!("[{ip}]"),
        host => host.to_string(),
    };
    let https = service.url.starts_with("https://");
    let scheme = if https { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}:{}", service.port))?
        .connect_timeout(timeout)
        .timeout(timeout);
    if https {
        let url: tonic::codegen::http::Uri = service
            .url
            .parse()
            .with_context(|| format!("the service URL {}", service.url))?;
        let host = url
            .host()
            .with_context(|| format!("the service URL {} has no host", service.url))?;
        // An IPv6 literal comes bracketed; the certificate names the address bare.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        endpoint = endpoint.tls_config(client_config(settings)?.domain_name(host))?;
    }
    Ok(endpoint)
}

/// The services' client side of TLS: the CA (`tls.ca_path`) and, when the servers
/// speak TLS, their certificate as the client's.
fn client_config(settings: &TlsSettings) -> anyhow::Result<ClientTlsConfig> {
    let mut config = ClientTlsConfig::new();
    if !settings.ca_path.is_empty() {
        config = config.ca_certificate(Certificate::from_pem(read(&settings.ca_path, "CA")?));
    }
    if settings.enabled() {
        config = config.identity(Identity::from_pem(
            read(&settings.cert_path, "certificate")?,
            read(&settings.key_path, "private key")?,
        ));
    }
    Ok(config)
}
