//! The store on disk (`store_root`): output status, atomic writes, incomplete markers, the journal,
//! and the health of finished jobs.
//! Layout (ARCHITECTURE.md §3): `targets/tgt_*/{spec,meta}.json`, `targets/tgt_*/run_*/...`,
//! `logs/<rule>/<key>.log`, `.lambda-hat/{journal.jsonl,incomplete/,slurm/,lock}`.

pub mod atomic;
pub mod benchmark;
pub mod health;
pub mod incomplete;
pub mod integrity;
pub mod journal;
pub mod lock;
pub mod record;
pub mod status;
pub mod sweeps;
pub mod touch;

pub use atomic::{write_atomic, write_json_atomic};
pub use health::StoreHealth;
pub use incomplete::IncompleteMarkers;
pub use journal::{Event, Journal};
pub use lock::{LockError, StoreLock};
pub use status::{StoreStatus, last_failures, output_hashes};

/// `<store>/.lambda-hat`: the store's own bookkeeping (journal, incomplete markers, lock, SLURM
/// scripts). Everyone asks here rather than spelling the path.
pub fn private_dir(store_root: &std::path::Path) -> std::path::PathBuf {
    store_root.join(".lambda-hat")
}

/// Whether a process of this host with this pid runs (Linux: its /proc entry exists). Used for
/// the pids the store's records name: incomplete markers and the lock's holder.
pub fn process_alive(pid: u64) -> bool {
    std::path::Path::new("/proc").join(pid.to_string()).exists()
}
