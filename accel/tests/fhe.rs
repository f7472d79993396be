//! The TFHE matcher against the plaintext computation, and its refusals.
//!
//! One key set is shared by every test (generating a server key takes seconds). N stays
//! small: every driver costs about a hundred bootstraps.

use std::sync::{Mutex, OnceLock};

use cpc_accel::FheMatcher;
use cpc_accel::fhe::{
    Decryptor, Encryptor, FheConfig, GRID_MAX, KeySet, NO_DRIVER, Nearest, TfheMatcher,
    generate_keys, nearest_plain, search_plain,
};
use cpc_accel::matching::{FheError, FheJob, FheOutput, FheTask, KeyId, Progress};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Fixture {
    keys: KeySet,
    matcher: TfheMatcher,
    enc: Encryptor,
    dec: Decryptor,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let keys = generate_keys().unwrap();
        let matcher = TfheMatcher::new(FheConfig::default()).unwrap();
        let info = matcher.load_key(&keys.server_key).unwrap();
        assert_eq!(info.id, keys.key_id);
        assert_eq!(info.tag, hex::encode(keys.tag));
        Fixture {
            enc: Encryptor::from_bytes(&keys.public_key).unwrap(),
            dec: Decryptor::from_bytes(&keys.client_key).unwrap(),
            keys,
            matcher,
        }
    })
}

/// A second, independent key set (client and public key only: cheap).
fn other_public_key() -> Encryptor {
    let mut ck = tfhe::ClientKey::generate(cpc_accel::fhe::tfhe_config());
    tfhe::prelude::Tagged::tag_mut(&mut ck).set_data(&[7u8; 16]);
    let pk = tfhe::CompactPublicKey::new(&ck);
    let mut bytes = Vec::new();
    tfhe::safe_serialization::SerializationConfig::new(1 << 30)
        .serialize_into(&pk, &mut bytes)
        .unwrap();
    Encryptor::from_bytes(&bytes).unwrap()
}

fn nearest_job(f: &Fixture, rider: (u8, u8), drivers: &[(u8, u8, bool)]) -> FheJob {
    FheJob {
        key: f.keys.key_id,
        task: FheTask::Nearest {
            rider: f.enc.rider(rider.0, rider.1).unwrap(),
            drivers: drivers
                .iter()
                .map(|&(x, y, a)| f.enc.driver(x, y, a).unwrap())
                .collect(),
        },
    }
}

fn run_nearest(f: &Fixture, rider: (u8, u8), drivers: &[(u8, u8, bool)]) -> Nearest {
    let job = nearest_job(f, rider, drivers);
    f.matcher.validate(&job).unwrap();
    match f.matcher.run(&job, &|_| {}).unwrap() {
        FheOutput::Nearest { index, distance } => f.dec.nearest(&index, &distance).unwrap(),
        other => panic!("a nearest job answered {other:?}"),
    }
}

fn expect(rider: (u8, u8), drivers: &[(u8, u8, bool)]) -> Nearest {
    match nearest_plain(rider, drivers) {
        Some((i, d)) => Nearest {
            driver: Some(i as u8),
            distance: d,
        },
        None => Nearest {
            driver: None,
            distance: NO_DRIVER,
        },
    }
}

#[test]
fn nearest_matches_the_plaintext_on_random_positions() {
    let f = fixture();
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    for n in [1usize, 4] {
        let rider = (rng.gen_range(0..=GRID_MAX), rng.gen_range(0..=GRID_MAX));
        let drivers: Vec<_> = (0..n)
            .map(|_| {
                (
                    rng.gen_range(0..=GRID_MAX),
                    rng.gen_range(0..=GRID_MAX),
                    rng.gen_bool(0.75),
                )
            })
            .collect();
        assert_eq!(
            run_nearest(f, rider, &drivers),
            expect(rider, &drivers),
            "rider {rider:?}, drivers {drivers:?}"
        );
    }
}

#[test]
fn ties_go_to_the_lowest_index_and_unavailable_drivers_never_win() {
    let f = fixture();
    // The closest driver is unavailable; four tie at distance 2. Five drivers: the last is
    // passed up the tree unmerged and meets the winner of the others only at the root.
    let drivers = [
        (10, 10, false),
        (12, 10, true),
        (10, 12, true),
        (8, 10, true),
        (10, 8, true),
    ];
    let got = run_nearest(f, (10, 10), &drivers);
    assert_eq!(
        got,
        Nearest {
            driver: Some(1),
            distance: 2
        }
    );
    assert_eq!(got, expect((10, 10), &drivers));
}

#[test]
fn no_available_driver_and_the_grid_corners() {
    let f = fixture();
    assert_eq!(
        run_nearest(f, (3, 4), &[(3, 4, false), (0, 0, false)]),
        Nearest {
            driver: None,
            distance: NO_DRIVER
        }
    );
    let far = [(GRID_MAX, GRID_MAX, true), (GRID_MAX, 0, true)];
    assert_eq!(run_nearest(f, (0, 0), &far), expect((0, 0), &far));
}

#[test]
fn search_matches_the_plaintext_and_reports_progress() {
    let f = fixture();
    let query = 0xdead_beef;
    let records = [1u32, query, u32::MAX, query];
    let job = FheJob {
        key: f.keys.key_id,
        task: FheTask::Search {
            query: f.enc.search_tag(query).unwrap(),
            records: records
                .iter()
                .map(|&r| f.enc.search_tag(r).unwrap())
                .collect(),
        },
    };
    let seen = Mutex::new(Vec::new());
    let out = f
        .matcher
        .run(&job, &|p| seen.lock().unwrap().push(p))
        .unwrap();
    let FheOutput::Search { matches } = out else {
        panic!("a search answered {out:?}")
    };
    assert_eq!(
        f.dec.search(&matches).unwrap(),
        search_plain(query, &records)
    );
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&Progress { done: 0, total: 4 }));
    assert_eq!(seen.last(), Some(&Progress { done: 4, total: 4 }));
    assert_eq!(seen.len(), 5);
}

fn refused(f: &Fixture, job: &FheJob) -> FheError {
    let err = f.matcher.validate(job).unwrap_err();
    // `run` applies the same checks before computing anything.
    let again = f.matcher.run(job, &|_| {}).unwrap_err();
    assert_eq!(err.to_string(), again.to_string());
    err
}

fn with_driver(f: &Fixture, bytes: Vec<u8>) -> FheJob {
    let mut job = nearest_job(f, (1, 1), &[(2, 2, true)]);
    if let FheTask::Nearest { drivers, .. } = &mut job.task {
        drivers.push(bytes);
    }
    job
}

#[test]
fn truncated_and_corrupt_ciphertexts_are_refused_by_name() {
    let f = fixture();
    let good = f.enc.driver(5, 6, true).unwrap();
    for cut in [0, 1, 16, good.len() / 2, good.len() - 1] {
        let err = refused(f, &with_driver(f, good[..cut].to_vec()));
        assert!(
            matches!(&err, FheError::Malformed(m) if m.starts_with("driver 1 ")),
            "cut at {cut}: {err}"
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let noise: Vec<u8> = (0..good.len()).map(|_| rng.r#gen()).collect();
    assert!(matches!(
        refused(f, &with_driver(f, noise)),
        FheError::Malformed(_)
    ));
    // A corrupt type name in the header.
    let mut renamed = good.clone();
    let at = renamed
        .windows(4)
        .position(|w| w == b"high")
        .expect("the header names the type");
    renamed[at] = b'H';
    assert!(matches!(
        refused(f, &with_driver(f, renamed)),
        FheError::Malformed(_)
    ));
    // Bytes after the ciphertext: one value per input, nothing smuggled behind it.
    let mut padded = good;
    padded.extend_from_slice(&[0; 8]);
    let err = refused(f, &with_driver(f, padded));
    assert!(
        matches!(&err, FheError::Malformed(m) if m.contains("8 bytes after")),
        "{err}"
    );
}

#[test]
fn ciphertexts_of_the_wrong_shape_are_refused() {
    let f = fixture();
    // A rider's two values where a driver's three are expected.
    let err = refused(f, &with_driver(f, f.enc.rider(1, 2).unwrap()));
    assert!(
        matches!(&err, FheError::Malformed(m) if m.starts_with("driver 1 ")),
        "{err}"
    );
    // A 32-bit search tag and a driver list in a search.
    let job = FheJob {
        key: f.keys.key_id,
        task: FheTask::Search {
            query: f.enc.search_tag(1).unwrap(),
            records: vec![f.enc.driver(1, 2, true).unwrap()],
        },
    };
    let err = refused(f, &job);
    assert!(
        matches!(&err, FheError::Malformed(m) if m.starts_with("record 0 ")),
        "{err}"
    );
    // Three values of the right count but the wrong types.
    let mut ck_list = tfhe::CompactCiphertextList::builder(&public_key(f));
    ck_list.push(1u8).push(2u8).push(3u8);
    let list = ser(&ck_list.build_packed());
    let err = refused(f, &with_driver(f, list));
    assert!(
        matches!(&err, FheError::Malformed(m) if m.contains("Uint8, Uint8, Uint8")),
        "{err}"
    );
}

fn public_key(f: &Fixture) -> tfhe::CompactPublicKey {
    tfhe::safe_serialization::DeserializationConfig::new(1 << 30)
        .disable_conformance()
        .deserialize_from(f.keys.public_key.as_slice())
        .unwrap()
}

fn ser<T: serde::Serialize + tfhe::Versionize + tfhe::named::Named>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    tfhe::safe_serialization::SerializationConfig::new(1 << 30)
        .serialize_into(v, &mut out)
        .unwrap();
    out
}

#[test]
fn ciphertexts_of_another_key_set_or_other_parameters_are_refused() {
    let f = fixture();
    let err = refused(
        f,
        &with_driver(f, other_public_key().driver(1, 2, true).unwrap()),
    );
    assert!(
        matches!(&err, FheError::WrongKey(m) if m.contains("driver 1 was encrypted under key set 0707")),
        "{err}"
    );
    // TFHE-rs's default parameters without a dedicated public-key set: another LWE
    // dimension.
    let ck = tfhe::ClientKey::generate(tfhe::ConfigBuilder::default());
    let pk = tfhe::CompactPublicKey::new(&ck);
    let mut list = tfhe::CompactCiphertextList::builder(&pk);
    list.push(1u8).push(2u8).push(true);
    let err = refused(f, &with_driver(f, ser(&list.build_packed())));
    assert!(matches!(&err, FheError::Malformed(_)), "{err}");
    // Unpacked lists skip TFHE-rs's sanitizing bootstrap; only packed ones are taken.
    let mut list = tfhe::CompactCiphertextList::builder(&public_key(f));
    list.push(1u8).push(2u8).push(true);
    let err = refused(f, &with_driver(f, ser(&list.build())));
    assert!(matches!(&err, FheError::Malformed(_)), "{err}");
    // The public key of other parameters cannot even be loaded by a participant.
    assert!(Encryptor::from_bytes(&ser(&pk)).is_err());
}

#[test]
fn jobs_are_bounded_and_need_a_loaded_key() {
    let f = fixture();
    let mut job = nearest_job(f, (1, 1), &[(1, 1, true)]);
    job.key = KeyId([0; 32]);
    assert!(matches!(refused(f, &job), FheError::UnknownKey(_)));
    let none = FheJob {
        key: f.keys.key_id,
        task: FheTask::Nearest {
            rider: f.enc.rider(1, 1).unwrap(),
            drivers: vec![],
        },
    };
    assert!(matches!(refused(f, &none), FheError::Malformed(_)));
    let driver = f.enc.driver(1, 1, true).unwrap();
    let many = FheJob {
        key: f.keys.key_id,
        task: FheTask::Nearest {
            rider: f.enc.rider(1, 1).unwrap(),
            drivers: vec![driver; 257],
        },
    };
    assert!(matches!(refused(f, &many), FheError::TooLarge(_)));
    assert!(f.enc.rider(GRID_MAX + 1, 0).is_err());
}

#[test]
fn server_keys_are_checked_and_the_cache_is_bounded() {
    let f = fixture();
    // Loading the same key again is a cache hit.
    let info = f.matcher.load_key(&f.keys.server_key).unwrap();
    assert_eq!(f.matcher.key_info(&info.id), Some(info.clone()));
    for bad in [
        &f.keys.server_key[..1000],
        &f.keys.public_key[..],
        &b"garbage"[..],
    ] {
        let m = TfheMatcher::new(FheConfig::default()).unwrap();
        assert!(matches!(m.load_key(bad), Err(FheError::Malformed(_))));
    }
    let small = TfheMatcher::new(FheConfig {
        max_key_bytes: 1000,
        ..FheConfig::default()
    })
    .unwrap();
    assert!(matches!(
        small.load_key(&f.keys.server_key),
        Err(FheError::TooLarge(_))
    ));
    // Room for one key: a second key evicts the first.
    let bounded = TfheMatcher::new(FheConfig {
        max_key_cache_bytes: info.loaded_bytes * 3 / 2,
        ..FheConfig::default()
    })
    .unwrap();
    bounded.load_key(&f.keys.server_key).unwrap();
    let second = generate_keys().unwrap();
    bounded.load_key(&second.server_key).unwrap();
    assert_eq!(bounded.key_info(&f.keys.key_id), None);
    assert!(bounded.key_info(&second.key_id).is_some());
    let info = bounded.info();
    assert_eq!(info.keys.len(), 1);
    assert!(info.key_cache_bytes <= info.max_key_cache_bytes);
    let tiny = TfheMatcher::new(FheConfig {
        max_key_cache_bytes: 1 << 20,
        ..FheConfig::default()
    })
    .unwrap();
    assert!(matches!(
        tiny.load_key(&f.keys.server_key),
        Err(FheError::TooLarge(_))
    ));
}

#[test]
fn results_decrypt_only_under_their_key_set() {
    let f = fixture();
    let job = nearest_job(f, (0, 0), &[(1, 0, true)]);
    let FheOutput::Nearest { index, distance } = f.matcher.run(&job, &|_| {}).unwrap() else {
        panic!("not a nearest answer")
    };
    let mut ck = tfhe::ClientKey::generate(cpc_accel::fhe::tfhe_config());
    tfhe::prelude::Tagged::tag_mut(&mut ck).set_data(&[7u8; 16]);
    let other = Decryptor::from_bytes(&ser(&ck)).unwrap();
    assert!(matches!(
        other.nearest(&index, &distance),
        Err(FheError::WrongKey(_))
    ));
    assert!(matches!(
        f.dec.nearest(&index[..index.len() / 2], &distance),
        Err(FheError::Malformed(_))
    ));
    // A boolean flag is not an 8-bit result.
    let flag = ser(&tfhe::FheBool::encrypt(true, &f_client(f)));
    assert!(f.dec.nearest(&flag, &distance).is_err());
    assert!(Decryptor::from_bytes(b"not a key").is_err());
    assert_eq!(
        f.dec.nearest(&index, &distance).unwrap(),
        Nearest {
            driver: Some(0),
            distance: 1
        }
    );
}

fn f_client(f: &Fixture) -> tfhe::ClientKey {
    tfhe::safe_serialization::DeserializationConfig::new(1 << 30)
        .disable_conformance()
        .deserialize_from(f.keys.client_key.as_slice())
        .unwrap()
}

use tfhe::prelude::FheEncrypt;
