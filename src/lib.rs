//! lambda-hat: local learning coefficient (LLC) sweeps with MCMC, planned as a DAG and run locally
//! or on SLURM. Data flows one way: CLI → config → plan → executor → worker → artifacts → reports.
//! See ARCHITECTURE.md in the repository root for the contract between the parts.
//!
//! The layering rule: imports follow the data downwards. From the bottom up: `numeric`,
//! `terminal`, `exit_code`, `invalid` < `posterior`, `diagnostics` < `samplers` < `config` <
//! `nn` < `data` < `train`, `analysis` < `plan`, `validate` < `store` < `spec`, `report` <
//! `exec`, `worker` < `cli`. (The samplers sit below config because each sampler defines its own
//! settings type, which config reads into the sweep.) A module uses only modules of lower layers, never its own layer or above, and no two
//! modules import each other; `tests/layering.rs` fails when an import breaks this.

// These docs are for the people who work on lambda-hat, and they link the private helpers a
// function's doc explains itself by: read them with `cargo doc --document-private-items`, where
// every such link resolves.
#![allow(rustdoc::private_intra_doc_links)]

pub mod analysis;
pub mod cli;
pub mod config;
pub mod data;
pub mod diagnostics;
pub mod exec;
pub mod exit_code;
pub mod invalid;
pub mod nn;
pub mod numeric;
pub mod plan;
pub mod posterior;
pub mod report;
pub mod samplers;
pub mod spec;
pub mod store;
pub mod terminal;
pub mod train;
pub mod validate;
pub mod worker;
