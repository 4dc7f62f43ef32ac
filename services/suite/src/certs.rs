//! `distnet certs`: a development certificate authority and the certificates the
//! suite needs for mutual TLS — one for the services (server and client use, named
//! for `localhost`, `127.0.0.1` and each service) and one for an operator's client
//! (grpcurl `-cacert ca.pem -cert client.pem -key client.key`). For development and
//! tests only: production certificates come from the operator's own CA.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// The files written, by role.
pub struct CertFiles {
    pub ca: PathBuf,
    pub service_cert: PathBuf,
    pub service_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn write(dir: &Path, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Makes a CA, a service certificate for `hosts` and an operator's client
/// certificate in `dir`.
pub fn make(dir: &Path, hosts: &[String]) -> anyhow::Result<CertFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "distnet development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;

    let leaf = |names: Vec<String>, common_name: &str, usages: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        anyhow::Ok((cert.pem(), key.serialize_pem()))
    };
    let mut names: Vec<String> = hosts.to_vec();
    for service in ["customers", "accreditation", "allocation", "logistics"] {
        names.push(service.to_string());
    }
    let (service_cert, service_key) = leaf(
        names,
        "distnet services",
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    let (client_cert, client_key) = leaf(
        vec!["operator".to_string()],
        "distnet operator",
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;

    Ok(CertFiles {
        ca: write(dir, "ca.pem", &ca.pem())?,
        service_cert: write(dir, "service.pem", &service_cert)?,
        service_key: write(dir, "service.key", &service_key)?,
        client_cert: write(dir, "client.pem", &client_cert)?,
        client_key: write(dir, "client.key", &client_key)?,
    })
}
