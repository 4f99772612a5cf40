//! Sending one checked plugin request: connect to an address the policy already
//! approved (never a second lookup, so DNS rebinding cannot swap it), TLS with the
//! URL's name, then HTTP/1.1 over that connection. Shaped like wasmtime-wasi-http's
//! `default_send_request`, which resolves the name itself.

use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// A connection, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// What `send_request` hands back to wasmtime-wasi-http: the response and a
/// future that drives the connection until the body is read.
pub(super) type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
);

/// Send `request` to one of `addrs` (tried in order), naming `host` for TLS.
pub(super) async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    addrs: Vec<SocketAddr>,
    host: String,
) -> Result<Sent, Error> {
    let https = request.uri().scheme() == Some(&http::uri::Scheme::HTTPS);
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(Duration::from_secs(600));
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));
    let mut last = Error::ConnectionRefused;
    let mut connected = None;
    for addr in addrs {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                connected = Some(stream);
                break;
            }
            Ok(Err(e)) => last = Error::Connect(e),
            Err(_) => last = Error::ConnectionTimeout,
        }
    }
    let tcp = connected.ok_or(last)?;
    let stream: Box<dyn Stream> = if https {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(bare.to_string())?,
        };
        let connector = tokio_rustls::TlsConnector::from(crate::net::tls_config());
        Box::new(connector.connect(name, tcp).await.map_err(Error::Tls)?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries only the path (the authority is in `Host`).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let send = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
    tokio::pin!(send);
    // Drive the connection while waiting for the response head.
    let response = loop {
        if conn_done {
            break (&mut send).await;
        }
        tokio::select! {
            r = &mut send => break r,
            done = &mut conn => {
                conn_done = true;
                done?;
            }
        }
    }
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io = async move {
        if conn_done {
            return Ok(());
        }
        conn.await.map_err(|e| {
            if e.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(e)
            }
        })
    };
    Ok((response, Box::new(io)))
}
