//! `cpchain testnet`: keys, one genesis and a config per node for a local network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use cpc_state::{Genesis, GenesisSideGroup, GenesisValidator, Params};
use cpc_types::{SecretKey, TOTAL_SUPPLY, UNITS_PER_CPC};
use serde::Serialize;

use crate::{config, keys};

/// Cooperation rewards an anchor of the testnet's side group pays at most.
const SIDE_REWARD_PER_ANCHOR: u64 = UNITS_PER_CPC;
/// The testnet side group's reward pool at genesis.
const SIDE_REWARD_POOL: u64 = 100_000 * UNITS_PER_CPC;

#[derive(Debug, Args)]
pub(crate) struct TestnetArgs {
    /// Validator nodes; 3f + 1 of them tolerate f faulty ones (4 tolerate one).
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Directory to write: node1 … nodeN homes, keys/, genesis.json and testnet.json.
    #[arg(long)]
    out: PathBuf,
    /// Chain id of the network.
    #[arg(long, default_value_t = 1)]
    chain_id: u32,
    /// P2P port of node 1; node i listens on this + i − 1 (loopback).
    #[arg(long, default_value_t = 7701)]
    p2p_port: u16,
    /// API port of node 1; node i serves on this + i − 1 (loopback).
    #[arg(long, default_value_t = 8701)]
    api_port: u16,
    /// Funded user accounts, keys in keys/user-N.key (1,000,000 CPC each).
    #[arg(long, default_value_t = 4)]
    users: usize,
    /// Least milliseconds between blocks.
    #[arg(long, default_value_t = 500)]
    block_interval_ms: u64,
    /// Committee seats; validators beyond them wait on standby and stand in elections.
    /// Defaults to every node, at most the genesis default of 4.
    #[arg(long)]
    committee: Option<u32>,
    /// Blocks per election term (the committee is elected anew at the end of each).
    #[arg(long, default_value_t = 120)]
    term_length: u64,
    /// Side-chain group of every node as a gateway, declared in genesis (owned by the
    /// foundation) and in each config; empty for none.
    #[arg(long, default_value = "local")]
    side_group: String,
    /// Write into an existing directory (its node data directories are removed).
    #[arg(long)]
    force: bool,
}

/// The side-chain group of the written network.
#[derive(Serialize)]
struct SideEntry {
    name: String,
    id: String,
}

/// One node of the written network.
#[derive(Serialize)]
struct NodeEntry {
    name: String,
    home: PathBuf,
    api: String,
    p2p: String,
    peer_id: String,
    validator: String,
}

#[derive(Serialize)]
struct Manifest {
    chain_id: u32,
    genesis: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    side_group: Option<SideEntry>,
    nodes: Vec<NodeEntry>,
    users: Vec<String>,
}

/// Replaces the one line of the config template that starts with `key =` inside
/// `[section]`.
fn set(config: &mut String, section: &str, key: &str, value: &str) -> Result<()> {
    let header = format!("[{section}]\n");
    let at = config
        .find(&header)
        .with_context(|| format!("template has no [{section}]"))?;
    let prefix = format!("\n{key} = ");
    let rel = config[at..]
        .find(&prefix)
        .with_context(|| format!("template has no {section}.{key}"))?;
    let start = at + rel + 1;
    let end = start + config[start..].find('\n').unwrap_or(config.len() - start);
    config.replace_range(start..end, &format!("{key} = {value}"));
    Ok(())
}

pub(crate) fn run(args: &TestnetArgs) -> Result<ExitCode> {
    if args.nodes == 0 || args.nodes > 100 {
        bail!("--nodes must be between 1 and 100");
    }
    let out = &args.out;
    if out.join("testnet.json").exists() {
        if !args.force {
            bail!(
                "{} holds a testnet; pass --force to replace it (its chain data is deleted)",
                out.display()
            );
        }
        for i in 1..=args.nodes.max(100) {
            let data = out.join(format!("node{i}/data"));
            if data.exists() {
                std::fs::remove_dir_all(&data)
                    .with_context(|| format!("cannot remove {}", data.display()))?;
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", out.display()))?;
    let p2p_port = |i: usize| usize::from(args.p2p_port) + i;
    let api_port = |i: usize| usize::from(args.api_port) + i;
    if p2p_port(args.nodes) > 65535 || api_port(args.nodes) > 65535 {
        bail!("ports run past 65535: lower --p2p-port or --api-port");
    }

    let validators: Vec<SecretKey> = (0..args.nodes)
        .map(|_| SecretKey::generate(rand_core::OsRng))
        .collect();
    let node_keys: Vec<SecretKey> = (0..args.nodes)
        .map(|_| SecretKey::generate(rand_core::OsRng))
        .collect();
    let users: Vec<SecretKey> = (0..args.users)
        .map(|_| SecretKey::generate(rand_core::OsRng))
        .collect();
    let foundation = SecretKey::generate(rand_core::OsRng);

    let deposit = 10_000 * UNITS_PER_CPC;
    let per_user = 1_000_000 * UNITS_PER_CPC;
    let per_validator = 100_000 * UNITS_PER_CPC;
    let mut allocations = BTreeMap::new();
    for u in &users {
        allocations.insert(u.address(), per_user);
    }
    for v in &validators {
        allocations.insert(v.address(), per_validator);
    }
    // The side group's reward pool, when there is one, comes out of the foundation's rest.
    let side_pool = if args.side_group.trim().is_empty() {
        0
    } else {
        SIDE_REWARD_POOL
    };
    let used: u64 = allocations.values().sum::<u64>() + deposit * args.nodes as u64 + side_pool;
    let rest = TOTAL_SUPPLY
        .checked_sub(used)
        .context("too many users and nodes for the supply")?;
    allocations.insert(foundation.address(), rest);
    let mut params = Params::with_foundation(foundation.address());
    params.committee_size = args
        .committee
        .unwrap_or((args.nodes as u32).min(params.committee_size));
    params.term_length = args.term_length;
    if params.committee_size == 0 || params.committee_size as usize > args.nodes {
        bail!("--committee must be between 1 and --nodes ({})", args.nodes);
    }
    // A committee of one or two has no reserved seat to give.
    params.reserved_seats = params.reserved_seats.min(params.committee_size / 4);
    let side_group = args.side_group.trim();
    let side_groups = if side_group.is_empty() {
        Vec::new()
    } else {
        let mut gateways: Vec<_> = validators.iter().map(SecretKey::public).collect();
        gateways.sort();
        vec![GenesisSideGroup {
            id: cpc_sidechain::Group::id_of(side_group),
            owner: foundation.address(),
            gateways,
            reward_per_anchor: SIDE_REWARD_PER_ANCHOR,
            reward_pool: side_pool,
        }]
    };
    let genesis = Genesis {
        chain_id: args.chain_id,
        timestamp_ms: cpc_api::now_ms(),
        params,
        allocations,
        validators: validators
            .iter()
            .enumerate()
            .map(|(i, v)| GenesisValidator {
                key: v.public(),
                vrf_key: v.public(),
                endpoint: format!("/ip4/127.0.0.1/tcp/{}", p2p_port(i)),
                deposit,
            })
            .collect(),
        side_groups,
    };
    genesis.validate()?;
    let genesis_json = serde_json::to_string_pretty(&genesis)? + "\n";
    std::fs::write(out.join("genesis.json"), &genesis_json).context("cannot write genesis.json")?;
    keys::write_key(&out.join("keys/foundation.key"), &foundation, true)?;
    for (i, u) in users.iter().enumerate() {
        keys::write_key(&out.join(format!("keys/user-{}.key", i + 1)), u, true)?;
    }

    let p2p_addr = |i: usize| format!("/ip4/127.0.0.1/tcp/{}", p2p_port(i));
    let mut nodes = Vec::new();
    for i in 0..args.nodes {
        let name = format!("node{}", i + 1);
        let home = out.join(&name);
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create {}", home.display()))?;
        keys::write_key(&home.join("keys/validator.key"), &validators[i], true)?;
        keys::write_key(&home.join("keys/node.key"), &node_keys[i], true)?;
        std::fs::write(home.join("genesis.json"), &genesis_json)
            .with_context(|| format!("cannot write {}/genesis.json", home.display()))?;
        let api = format!("127.0.0.1:{}", api_port(i));
        let bootnodes: Vec<String> = (0..args.nodes)
            .filter(|j| *j != i)
            .map(|j| format!("\"{}\"", p2p_addr(j)))
            .collect();
        let mut cfg = config::TEMPLATE.to_owned();
        set(&mut cfg, "api", "listen", &format!("\"{api}\""))?;
        set(&mut cfg, "p2p", "listen", &format!("\"{}\"", p2p_addr(i)))?;
        set(
            &mut cfg,
            "p2p",
            "bootnodes",
            &format!("[{}]", bootnodes.join(", ")),
        )?;
        set(
            &mut cfg,
            "consensus",
            "block_interval_ms",
            &args.block_interval_ms.to_string(),
        )?;
        if !side_group.is_empty() {
            set(
                &mut cfg,
                "sidechain",
                "group",
                &toml::Value::String(side_group.to_owned()).to_string(),
            )?;
            set(&mut cfg, "sidechain", "gateway", "true")?;
        }
        std::fs::write(home.join("config.toml"), cfg)
            .with_context(|| format!("cannot write {}/config.toml", home.display()))?;
        nodes.push(NodeEntry {
            name,
            home,
            api,
            p2p: p2p_addr(i),
            peer_id: cpc_p2p::peer_id(node_keys[i].to_bytes())?,
            validator: validators[i].address().to_string(),
        });
    }
    let manifest = Manifest {
        chain_id: args.chain_id,
        genesis: genesis.hash().to_string(),
        side_group: (!side_group.is_empty()).then(|| SideEntry {
            name: side_group.to_owned(),
            id: cpc_sidechain::Group::id_of(side_group).to_string(),
        }),
        nodes,
        users: users.iter().map(|u| u.address().to_string()).collect(),
    };
    std::fs::write(
        out.join("testnet.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )
    .context("cannot write testnet.json")?;

    println!(
        "wrote a {}-node testnet to {} (genesis {})",
        args.nodes,
        out.display(),
        manifest.genesis
    );
    for n in &manifest.nodes {
        println!(
            "  {:<7} API http://{:<16} p2p {}  validator {}",
            n.name, n.api, n.p2p, n.validator
        );
    }
    if let Some(s) = &manifest.side_group {
        println!(
            "  side-chain group {:?} ({}): every node is a gateway",
            s.name, s.id
        );
    }
    println!(
        "start each node with: cpchain start --home {}/nodeN",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_the_key_of_its_section_only() {
        let mut cfg = config::TEMPLATE.to_owned();
        set(&mut cfg, "p2p", "listen", "\"/ip4/127.0.0.1/tcp/1\"").unwrap();
        set(&mut cfg, "api", "listen", "\"127.0.0.1:2\"").unwrap();
        let parsed: config::NodeConfig = toml::from_str(&cfg).unwrap();
        assert_eq!(parsed.p2p.listen, "/ip4/127.0.0.1/tcp/1");
        assert_eq!(parsed.api.listen.to_string(), "127.0.0.1:2");
        assert!(set(&mut cfg, "p2p", "nope", "1").is_err());
    }
}
