//! TLS: the server serves over TLS with `--tls-cert`/`--tls-key`, and with `--tls-client-ca`
//! only to clients with a certificate that CA signed; the CLI reaches it with `--ca-cert`.
//! Certificates are made at run time.

use std::path::{Path, PathBuf};

use assay::config::ServeConfig;
use assay::proto::v1 as pb;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::sync::oneshot;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, as PEM
/// files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let issuer = Issuer::new(ca_params, ca_key);
        let write =
            |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write");
        write("ca.pem", ca.pem());
        for (name, names) in [
            ("server", vec!["127.0.0.1".to_string(), "localhost".into()]),
            ("client", vec!["client".into()]),
        ] {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(names)
                .expect("params")
                .signed_by(&key, &issuer)
                .expect("signed");
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read")
    }
}

/// A server over TLS (mutual when `mutual`); its address and a sender that stops it.
async fn serve_tls(
    pki: &Pki,
    db: &Path,
    mutual: bool,
) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = ServeConfig::new(addr, format!("sqlite://{}", db.display()));
    config.tls_cert = Some(pki.path("server.pem"));
    config.tls_key = Some(pki.path("server.key"));
    config.tls_client_ca = mutual.then(|| pki.path("ca.pem"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        assay::server::serve(config, listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("server failed");
    });
    (addr, stop)
}

/// Lists metrics over a TLS channel trusting the test CA, with the client certificate or not.
async fn list_over_tls(
    pki: &Pki,
    addr: std::net::SocketAddr,
    with_client_cert: bool,
) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pki.read("ca.pem")))
        .domain_name("localhost");
    if with_client_cert {
        tls = tls.identity(Identity::from_pem(
            pki.read("client.pem"),
            pki.read("client.key"),
        ));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))?;
    pb::metric_service_client::MetricServiceClient::new(channel)
        .list_metrics(pb::ListMetricsRequest::default())
        .await
        .map(drop)
        .map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn the_server_serves_over_tls_and_the_cli_trusts_its_ca() {
    let pki = Pki::new();
    let (addr, _stop) = serve_tls(&pki, &pki.path("assay.db"), false).await;
    list_over_tls(&pki, addr, false)
        .await
        .expect("a call over TLS");

    let cli = |args: Vec<String>| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_assay"))
            .args([
                "metric",
                "list",
                "--server",
                &format!("https://localhost:{}", addr.port()),
            ])
            .args(args)
            .env("ASSAY_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output()
    };
    let trusted = cli(vec![
        "--ca-cert".into(),
        pki.path("ca.pem").display().to_string(),
    ])
    .await
    .expect("run");
    assert_eq!(
        trusted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    // Without the CA, the system's roots do not know the server's certificate.
    let untrusted = cli(vec![]).await.expect("run");
    assert_eq!(
        untrusted.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&untrusted.stderr)
    );
}

#[tokio::test]
async fn with_a_client_ca_only_clients_with_a_certificate_are_served() {
    let pki = Pki::new();
    let (addr, _stop) = serve_tls(&pki, &pki.path("assay.db"), true).await;
    list_over_tls(&pki, addr, true)
        .await
        .expect("a call with a client certificate");
    assert!(
        list_over_tls(&pki, addr, false).await.is_err(),
        "a call without one was served"
    );
}
