//! TLS on the server RPC port: an [`Acceptor`] and a [`Connector`] that run the TCP stream
//! through rustls before HTTP/2 starts. Who is trusted (the CA, whether a client certificate
//! is required, whether the server's name is checked) is decided by the rustls configurations
//! the caller builds; this module only carries them out.
//!
//! Both hold their configuration behind a [`Shared`] handle, so certificates can be
//! replaced while the port keeps serving (`cairn reload`): connections made after the swap
//! use the new ones, established ones keep theirs.
//!
//! A server may take plain-text connections as well ([`Incoming::TlsOrPlain`], when it does
//! not verify incoming connections): the first byte tells them apart (a TLS record starts
//! with 0x16, HTTP/2's preface with `P`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::RwLock;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::io::{Acceptor, BoxIo, Connector};

/// A configuration that can be replaced while in use.
pub type Shared<T> = Arc<RwLock<Arc<T>>>;

/// Wraps `value` in a [`Shared`] handle.
pub fn shared<T>(value: Arc<T>) -> Shared<T> {
    Arc::new(RwLock::new(value))
}

/// The TLS record type of a handshake: the first byte a TLS client sends.
const TLS_HANDSHAKE: u8 = 0x16;

/// What a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// TLS only (the server verifies incoming connections).
    TlsOnly,
    /// TLS, or plain text from peers that do not use TLS.
    TlsOrPlain,
}

/// Server side: TLS with the current configuration.
pub struct TlsAcceptor {
    config: Shared<rustls::ServerConfig>,
    incoming: Incoming,
}

impl TlsAcceptor {
    pub fn new(config: Shared<rustls::ServerConfig>, incoming: Incoming) -> Self {
        TlsAcceptor { config, incoming }
    }
}

impl Acceptor for TlsAcceptor {
    fn accept(&self, peer: SocketAddr, stream: TcpStream) -> BoxFuture<'static, io::Result<BoxIo>> {
        let config = self.config.read().clone();
        let incoming = self.incoming;
        Box::pin(async move {
            let mut first = [0u8; 1];
            let n = stream.peek(&mut first).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before the first byte",
                ));
            }
            if first[0] != TLS_HANDSHAKE {
                return match incoming {
                    Incoming::TlsOrPlain => Ok(Box::new(stream) as BoxIo),
                    Incoming::TlsOnly => Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("{peer} spoke plain text; this server accepts TLS only"),
                    )),
                };
            }
            let tls = tokio_rustls::TlsAcceptor::from(config)
                .accept(stream)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {peer}: {e}")))?;
            Ok(Box::new(tls) as BoxIo)
        })
    }
}

/// Client side: TLS with the current configuration, expecting the server to be `name`.
pub struct TlsConnector {
    config: Shared<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnector {
    /// `name` is what the server's certificate must carry (`server.dc1.consul`) when the
    /// configuration's verifier checks names.
    pub fn new(config: Shared<rustls::ClientConfig>, name: ServerName<'static>) -> Self {
        TlsConnector { config, name }
    }
}

impl Connector for TlsConnector {
    fn connect(
        &self,
        peer: SocketAddr,
        stream: TcpStream,
    ) -> BoxFuture<'static, io::Result<BoxIo>> {
        let config = self.config.read().clone();
        let name = self.name.clone();
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake with {peer}: {e}")))?;
            Ok(Box::new(tls) as BoxIo)
        })
    }
}
