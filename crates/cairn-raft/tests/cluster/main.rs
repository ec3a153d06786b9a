//! Three-server Raft scenarios on cairn-rpc's in-process network, one file per theme.
//! Randomised tests print their seed; replay with `CAIRN_RAFT_SEED=<seed>`.

mod support;

mod admin;
mod bad_input;
mod catch_up;
mod election;
mod failures;
mod membership;
mod recovery;
