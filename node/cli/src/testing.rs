//! What the binary's unit tests share.

use std::path::Path;
use std::sync::Arc;

use cpc_accel::{DispatchConfig, Dispatcher};
use cpc_chain::{Chain, ChainConfig};
use cpc_state::{Genesis, GenesisValidator, Params};
use cpc_storage::StoreConfig;
use cpc_types::{Address, SecretKey, TOTAL_SUPPLY, UNITS_PER_CPC};

/// The genesis time of test chains.
pub(crate) const T0: u64 = 1_767_225_600_000;

/// A chain in `dir` with one validator, `validator`, which holds it; `owner` gets
/// `owned` base units and a foundation the rest.
pub(crate) fn chain(dir: &Path, validator: &SecretKey, owner: Address, owned: u64) -> Arc<Chain> {
    let foundation = SecretKey::from_bytes([200; 32]).address();
    let deposit = 10_000 * UNITS_PER_CPC;
    let allocations = [(owner, owned), (foundation, TOTAL_SUPPLY - owned - deposit)]
        .into_iter()
        .collect();
    let genesis = Genesis {
        chain_id: 3,
        timestamp_ms: T0,
        params: Params::with_foundation(foundation),
        allocations,
        validators: vec![GenesisValidator::new(validator.public(), deposit)],
        side_groups: Vec::new(),
    };
    let accel = Arc::new(Dispatcher::new(DispatchConfig::default()).unwrap());
    let store = StoreConfig {
        path: dir.join("db"),
        sync: false,
    };
    let config = ChainConfig {
        mempool: Default::default(),
    };
    Arc::new(Chain::open(genesis, &store, accel, Some(validator.clone()), config).unwrap())
}
