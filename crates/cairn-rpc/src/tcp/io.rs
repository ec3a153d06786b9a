//! The seam where TLS wraps the TCP stream: the server runs each accepted stream through an
//! [`Acceptor`], the client each connected stream through a [`Connector`]. [`PlainTcp`] passes
//! the stream through; [`super::tls`] returns a `tokio_rustls` stream instead (its handshake
//! runs inside the server's handshake timeout and the client's connect timeout).

use std::io;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream the HTTP/2 layer can run over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// Server side: turns an accepted TCP stream into the stream HTTP/2 runs over.
pub trait Acceptor: Send + Sync + 'static {
    fn accept(&self, peer: SocketAddr, stream: TcpStream) -> BoxFuture<'static, io::Result<BoxIo>>;
}

/// Client side: turns a connected TCP stream into the stream HTTP/2 runs over.
pub trait Connector: Send + Sync + 'static {
    fn connect(&self, peer: SocketAddr, stream: TcpStream)
        -> BoxFuture<'static, io::Result<BoxIo>>;
}

/// No TLS: the TCP stream as is.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainTcp;

impl Acceptor for PlainTcp {
    fn accept(
        &self,
        _peer: SocketAddr,
        stream: TcpStream,
    ) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move { Ok(Box::new(stream) as BoxIo) })
    }
}

impl Connector for PlainTcp {
    fn connect(
        &self,
        _peer: SocketAddr,
        stream: TcpStream,
    ) -> BoxFuture<'static, io::Result<BoxIo>> {
        Box::pin(async move { Ok(Box::new(stream) as BoxIo) })
    }
}
