//! The postcard trap, shown: types that need a self-describing format fail to decode with a
//! clear error under postcard (never garbage), and work under JSON, in the codec and over both
//! transports.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use cairn_rpc::codec::round_trip;
use cairn_rpc::{
    CallContext, Client, ClientConfig, Code, Codec, JsonCodec, LocalServer, Network, PostcardCodec,
    Protocol, Routes, RpcServer, ServerConfig, Service, Status, TcpClient,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::protocol;
use tokio::net::TcpListener;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct WithValue {
    key: String,
    meta: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Num(u64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Skipping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<u32>,
    b: u32,
}

fn sample() -> WithValue {
    WithValue {
        key: "web".into(),
        meta: json!({"version": "1.2", "weights": [1, 2], "nested": {"ok": true}}),
    }
}

#[test]
fn json_round_trips_serde_json_values() {
    assert_eq!(round_trip::<JsonCodec, _>(&sample()).unwrap(), sample());
    assert_eq!(
        round_trip::<JsonCodec, _>(&Untagged::Text("x".into())).unwrap(),
        Untagged::Text("x".into())
    );
    let s = Skipping { a: None, b: 5 };
    assert_eq!(round_trip::<JsonCodec, _>(&s).unwrap(), s);
}

#[test]
fn postcard_refuses_serde_json_values_with_a_clear_error() {
    let bytes = PostcardCodec::encode(&sample()).expect("encoding works; decoding is the trap");
    let err = PostcardCodec::decode::<WithValue>(&bytes).unwrap_err();
    assert_eq!(err.codec, "postcard");
    assert!(err.message.contains("self-describing"), "{err}");
    assert!(err.message.contains("JsonCodec"), "{err}");
    let err = round_trip::<PostcardCodec, _>(&Untagged::Num(3)).unwrap_err();
    assert!(err.message.contains("self-describing"), "{err}");
}

#[test]
fn postcard_with_skip_serializing_if_does_not_round_trip() {
    // The skipped field shifts `b` into `a`'s place: an error or a wrong value, never the
    // original. This is why such types need JsonCodec.
    let s = Skipping { a: None, b: 5 };
    assert_ne!(round_trip::<PostcardCodec, _>(&s).ok(), Some(s));
}

#[test]
fn decoders_reject_trailing_and_truncated_input() {
    let mut bytes = PostcardCodec::encode(&(1u32, "x".to_string())).unwrap();
    bytes.push(0);
    let err = PostcardCodec::decode::<(u32, String)>(&bytes).unwrap_err();
    assert!(err.message.contains("trailing"), "{err}");
    bytes.truncate(2);
    assert!(PostcardCodec::decode::<(u32, String)>(&bytes).is_err());
    assert!(JsonCodec::decode::<WithValue>(b"{\"key\": ").is_err());
}

// The same messages under both codecs.
protocol!(OverJson = "cairn.test.value.v1", JsonCodec, WithValue => WithValue, WithValue);
protocol!(OverPostcard = "cairn.test.value.v1", PostcardCodec, WithValue => WithValue, WithValue);

/// Answers a request with itself, under either codec.
struct Mirror;
impl<P: Protocol<Request = WithValue, Response = WithValue>> Service<P> for Mirror {
    async fn unary(&self, _: CallContext, req: WithValue) -> Result<WithValue, Status> {
        Ok(req)
    }
}

/// A `Mirror` of `P` over TCP, and a client of it.
async fn over_tcp<P: Protocol>() -> (SocketAddr, Client<P>)
where
    Mirror: Service<P>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        RpcServer::new(ServerConfig::default())
            .serve(
                listener,
                Routes::new().route::<P, _>(Arc::new(Mirror)),
                std::future::pending(),
            )
            .await
    });
    let client = Client::new(TcpClient::<P>::new(ClientConfig::default()));
    (addr, client)
}

/// A `Mirror` of `P` at `addr` in a network of its own, and a client of it; the network and
/// the server live as long as the last two parts are held.
fn in_process<P: Protocol>(addr: SocketAddr) -> (Client<P>, Network, LocalServer)
where
    Mirror: Service<P>,
{
    let net = Network::new(1);
    let server = net
        .serve(
            addr,
            Routes::new().route::<P, _>(Arc::new(Mirror)),
            ServerConfig::default(),
        )
        .unwrap();
    let client = Client::new(net.client::<P>(
        SocketAddr::from(([127, 0, 0, 2], 1)),
        ClientConfig::default(),
    ));
    (client, net, server)
}

#[tokio::test]
async fn values_cross_both_transports_with_json_and_fail_clearly_with_postcard() {
    // JSON: works.
    let (addr, client) = over_tcp::<OverJson>().await;
    assert_eq!(client.call(addr, sample()).await.unwrap(), sample());
    let local = SocketAddr::from(([127, 0, 0, 1], 1));
    let (client, _net, _s) = in_process::<OverJson>(local);
    assert_eq!(client.call(local, sample()).await.unwrap(), sample());

    // Postcard: the server cannot decode the request and says why.
    let (addr, client) = over_tcp::<OverPostcard>().await;
    let tcp_err = client.call(addr, sample()).await.unwrap_err();
    let (client, _net, _s) = in_process::<OverPostcard>(local);
    let local_err = client.call(local, sample()).await.unwrap_err();
    for err in [tcp_err, local_err] {
        assert_eq!(
            err.status().map(|s| &s.code),
            Some(&Code::InvalidArgument),
            "{err}"
        );
        assert!(err.to_string().contains("JsonCodec"), "{err}");
    }
}
