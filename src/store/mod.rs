//! The store on disk (`store_root`): output status, atomic writes, incomplete markers, the journal,
//! and the health of finished jobs.
//! Layout (ARCHITECTURE.md §3): `targets/tgt_*/{spec,meta}.json`, `targets/tgt_*/run_*/...`,
//! `logs/<rule>/<key>.log`, `.lambda-hat/{journal.jsonl,incomplete/,slurm/,lock}`.

pub mod atomic;
pub mod health;
pub mod incomplete;
pub mod integrity;
pub mod journal;
pub mod lock;
pub mod status;

pub use atomic::{write_atomic, write_json_atomic};
pub use health::StoreHealth;
pub use incomplete::IncompleteMarkers;
pub use journal::{Event, Journal};
pub use lock::{LockError, StoreLock};
pub use status::StoreStatus;
