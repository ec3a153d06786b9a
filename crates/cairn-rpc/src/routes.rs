//! [`Routes`]: the protocols one server answers, each with its service. One port (or one
//! in-process address) can carry several protocols, such as forwarding and Raft on 8300. A call
//! names its protocol in its path, and the server dispatches on that name.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::protocol::{CallKind, DynService, Protocol, Service};
use crate::tcp::call::{handle_call, IncomingCall};

/// The services of one server, by protocol name. Build with [`Routes::new`] and
/// [`Routes::route`]; hand to [`crate::RpcServer::serve`] or [`crate::Network::serve`].
#[derive(Clone, Default)]
pub struct Routes {
    by_name: HashMap<&'static str, Arc<dyn Route>>,
}

impl std::fmt::Debug for Routes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

/// One protocol's service, with the protocol's types erased so that routes of different
/// protocols fit in one map.
pub(crate) trait Route: Send + Sync + 'static {
    /// Serves one TCP call of this protocol.
    fn handle_tcp(&self, call: IncomingCall) -> BoxFuture<'static, ()>;

    /// For the in-process transport, which recovers the typed service.
    fn as_any(&self) -> &dyn Any;
}

struct ProtocolRoute<P: Protocol> {
    service: Arc<dyn DynService<P>>,
}

impl<P: Protocol> Route for ProtocolRoute<P> {
    fn handle_tcp(&self, call: IncomingCall) -> BoxFuture<'static, ()> {
        Box::pin(handle_call::<P>(call, self.service.clone()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Routes {
    /// No protocols yet.
    pub fn new() -> Self {
        Routes::default()
    }

    /// Serves protocol `P` with `service` (replacing an earlier service for the same
    /// [`Protocol::NAME`]).
    pub fn route<P: Protocol, S: Service<P>>(mut self, service: Arc<S>) -> Self {
        let service: Arc<dyn DynService<P>> = service;
        self.by_name
            .insert(P::NAME, Arc::new(ProtocolRoute::<P> { service }));
        self
    }

    /// The protocol names served.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<&Arc<dyn Route>> {
        self.by_name.get(name)
    }

    /// The typed service for `P`: `None` if no protocol of that name is served, `Some(None)`
    /// if one is but with other types (another codec or message set).
    pub(crate) fn service<P: Protocol>(&self) -> Option<Option<Arc<dyn DynService<P>>>> {
        let route = self.by_name.get(P::NAME)?;
        Some(
            route
                .as_any()
                .downcast_ref::<ProtocolRoute<P>>()
                .map(|r| r.service.clone()),
        )
    }
}

/// Splits a call path `/<protocol>/<unary|stream>`.
pub(crate) fn parse_path(path: &str) -> Option<(&str, CallKind)> {
    let (name, kind) = path.strip_prefix('/')?.rsplit_once('/')?;
    let kind = match kind {
        "unary" => CallKind::Unary,
        "stream" => CallKind::Stream,
        _ => return None,
    };
    Some((name, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_protocol_and_kind() {
        assert_eq!(
            parse_path("/cairn.raft.v1/unary"),
            Some(("cairn.raft.v1", CallKind::Unary))
        );
        assert_eq!(parse_path("/a/b/stream"), Some(("a/b", CallKind::Stream)));
        assert_eq!(parse_path("/cairn.raft.v1/other"), None);
        assert_eq!(parse_path("cairn.raft.v1/unary"), None);
        assert_eq!(parse_path("/"), None);
        assert_eq!(parse_path(""), None);
    }
}
