//! `GET /v1/snapshot` (save) and `PUT /v1/snapshot` (restore), in Consul's shape.
//!
//! Save reads the state after the same barrier as a default (leader) read, unless
//! `?stale`, and answers the archive of [`crate::snapshot_archive`] with
//! `X-Consul-Index`. Restore reads and verifies the whole archive first (sizes, gzip
//! bomb limit, checksums, version, decoding), and only then proposes one
//! [`Command::Restore`] through Raft, so every server switches to the restored state at
//! the same log index; a bad archive is a 400 and changes nothing.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cairn_state::{Command, Outcome};

use crate::query::Query;
use crate::reply::{status_read, Consistency, HttpError, ReadMeta};
use crate::snapshot_archive::{self as archive, ArchiveLimits};
use crate::App;

/// Limits on a restore. `state.bin` travels as one Raft entry, which must fit in the
/// server port's 4 MiB message limit with room to spare.
pub const RESTORE_LIMITS: ArchiveLimits = ArchiveLimits {
    max_compressed: 16 << 20,
    max_decompressed: 64 << 20,
    max_state: 3 << 20,
};

/// `GET /v1/snapshot`.
pub async fn save(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().snapshot())?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let consistency = q.consistency()?;
    app.read_ready()?;
    if consistency != Consistency::Stale {
        app.barrier(consistency).await?;
    }
    let (bin, index) = {
        let st = app.state().read();
        (archive::encode_state(&st), st.last_index())
    };
    let bin = bin.map_err(|e| HttpError::internal(e.to_string()))?;
    let (term, now) = (app.raft_term(), app.now_ms());
    let bytes = tokio::task::spawn_blocking(move || archive::write_archive(&bin, index, term, now))
        .await
        .map_err(|e| HttpError::internal(e.to_string()))?
        .map_err(|e| HttpError::internal(format!("writing snapshot archive: {e}")))?;
    let meta = ReadMeta {
        index,
        contact: app.leader_contact(),
        consistency,
    };
    Ok(status_read(
        StatusCode::OK,
        bytes,
        "application/x-gzip",
        &meta,
    ))
}

/// `PUT /v1/snapshot`.
pub async fn restore(
    State(app): State<App>,
    authz: crate::acl::Authz,
    uri: Uri,
    body: Body,
) -> Result<Response, HttpError> {
    authz.allow(authz.authorizer().snapshot())?;
    let q = Query::from_uri(&uri);
    q.check_dc(app.datacenter())?;
    let limit = RESTORE_LIMITS.max_compressed;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let text = format!("{e:?}");
        if text.contains("LengthLimit") || text.contains("length limit") {
            HttpError::too_large(format!("snapshot archive is larger than {limit} bytes"))
        } else {
            HttpError::bad_request(format!("Failed to read request body: {e}"))
        }
    })?;
    let state = tokio::task::spawn_blocking(move || {
        let v = archive::read_archive(&bytes, RESTORE_LIMITS)?;
        archive::decode_state(&v.state_bin)
    })
    .await
    .map_err(|e| HttpError::internal(e.to_string()))?
    .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let (_, outcome) = app
        .write(Command::Restore {
            state: Box::new(state),
        })
        .await?;
    if let Outcome::Error(e) = outcome {
        return Err(HttpError::internal(format!("restore refused: {e}")));
    }
    Ok(StatusCode::OK.into_response())
}
