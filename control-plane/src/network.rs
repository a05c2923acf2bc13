//! Node-to-node Raft RPC over HTTP: JSON bodies, a deadline per call from openraft's RPC
//! options, and an unreachable peer reported as such so that openraft backs off instead of
//! blocking the others.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, StatusCode};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::faults::Faults;
use crate::http::HttpClient;
use crate::types::{Node, NodeId, TypeConfig};

/// The header that names the sending node, so a receiver can apply fault injection.
pub const FROM_HEADER: &str = "x-flowmesh-node";

pub struct Network {
    pub(crate) client: HttpClient,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) me: NodeId,
    pub(crate) faults: Faults,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            client: self.client.clone(),
            token: self.token.clone(),
            me: self.me.to_string(),
            faults: self.faults.clone(),
        }
    }
}

pub struct Peer {
    target: NodeId,
    addr: String,
    client: HttpClient,
    token: Option<Arc<str>>,
    me: String,
    faults: Faults,
}

/// Why a call did not reach its peer.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the link to node {0} is cut (fault injection)")]
    Cut(NodeId),
    #[error(transparent)]
    Http(#[from] crate::http::Error),
    #[error("node {node} answered {status}: {body}")]
    Status {
        node: NodeId,
        status: StatusCode,
        body: String,
    },
    #[error("node {node} sent an answer that cannot be read: {message}")]
    Decode { node: NodeId, message: String },
}

impl Peer {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Node, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        if self.faults.is_cut(self.target).await {
            return Err(RPCError::Unreachable(Unreachable::new(&Failure::Cut(
                self.target,
            ))));
        }
        let url = format!("http://{}/raft/{path}", self.addr);
        let body = codec::encode(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let bearer = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("content-type", codec::RPC_CONTENT_TYPE),
            (FROM_HEADER, self.me.as_str()),
        ];
        if let Some(b) = &bearer {
            headers.push(("authorization", b.as_str()));
        }
        let reply = self
            .client
            .send(
                Method::POST,
                &url,
                &headers,
                Bytes::from(body),
                option.hard_ttl(),
            )
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&Failure::from(e))))?;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            // The peer refuses us (cut on its side, or shutting down): as good as unreachable.
            let failure = Failure::Status {
                node: self.target,
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body).into_owned(),
            };
            return Err(RPCError::Unreachable(Unreachable::new(&failure)));
        }
        if !reply.status.is_success() {
            let failure = Failure::Status {
                node: self.target,
                status: reply.status,
                body: String::from_utf8_lossy(&reply.body).into_owned(),
            };
            return Err(RPCError::Network(NetworkError::new(&failure)));
        }
        let result: Result<Resp, E> = codec::decode(&reply.body).map_err(|e| {
            RPCError::Network(NetworkError::new(&Failure::Decode {
                node: self.target,
                message: e.to_string(),
            }))
        })?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Node, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Node, RaftError<NodeId>>> {
        self.call("vote", &rpc, &option).await
    }
}
